"""``linear_probe``: L2-regularised logistic regression on frozen-encoder features, one per task.

Train: encode the train split (the one frozen-encoder path, :mod:`nevis_bench.learner_kit.features`:
any encoder, feature cache, encoder FLOPs charged), standardise every dimension with the train
statistics (kept in the state per task key), and fit a logistic regression on ``ctx.device`` with
full-batch L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search, history 10, ``max_iter``
iterations at most): the objective of scikit-learn's ``LogisticRegression(C, solver="lbfgs")``,
mean loss + ||W||^2 / (2 C N) (the bias is not penalised). Deterministic: no random state is
involved (zero initialisation, full batches). float64 on CPU and CUDA, float32 elsewhere.

Single-label: one multinomial model over the task's classes, with the logits of classes absent
from the train split masked out (they score 0; one present class scores 1). Multi-label: one
binary model per class (jointly optimised: the objective is a sum of independent per-class terms);
a class whose train labels are all equal gets a constant score (its frequency).

FLOPs, analytic (L-BFGS is a few matrix products per evaluation): every function evaluation of
the line search computes the logits (N x D x K multiply-accumulates) and the weight gradient
(another N x D x K): 4 x evaluations x N x D x K FLOPs (train; ``func_evals`` as counted by
torch's L-BFGS). Prediction: 2 x N x D x K FLOPs.

Host syncs: L-BFGS reads the loss back after every function evaluation and tests its convergence
conditions on the host (torch's implementation); a fit is a few hundred evaluations on one
full-batch problem, not a per-batch loop.

Measured numbers and the full notes: docs/learners/linear_probe.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learner_kit.features import EncoderConfig
from nevis_bench.learners._per_task_features import PerTaskFeatureLearner
from nevis_bench.registry import LEARNERS

MASKED = -1e30


@dataclass
class LinearProbeConfig(EncoderConfig):
    C: float = 1.0
    max_iter: int = 200
    tolerance: float = 1e-4  # L-BFGS stops when the gradient's largest entry is below this

    def __post_init__(self):
        if self.C <= 0 or self.max_iter < 1 or self.tolerance <= 0:
            raise ValueError("C and tolerance must be positive and max_iter at least 1")


def solver_dtype(device) -> torch.dtype:
    return torch.float64 if torch.device(device).type in ("cpu", "cuda") else torch.float32


def fit_logistic(x: torch.Tensor, y: torch.Tensor, multi_label: bool, num_classes: int, C: float, max_iter: int,
                 tolerance: float, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(weights (K, D), bias (K,), function evaluations) of the L2-regularised logistic regression."""
    n, d = x.shape
    weight = torch.zeros(num_classes, d, dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=tolerance,
                                  tolerance_change=1e-12, history_size=10, line_search_fn="strong_wolfe")
    penalty = 1.0 / (2.0 * C * n)
    targets = y.to(x.dtype) if multi_label else y.long()

    def closure():
        optimizer.zero_grad(set_to_none=True)
        logits = x @ weight.T + bias
        if multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / n
        else:
            loss = F.cross_entropy(logits + mask, targets)
        loss = loss + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    evaluations = int(optimizer.state[weight].get("func_evals", 0))
    return weight.detach(), bias.detach(), evaluations


class LinearProbeLearner(PerTaskFeatureLearner):
    name = "linear_probe"

    def fit(self, x, y, kind, ctx):
        cfg = self.config
        x = x.to(solver_dtype(x.device))
        n, d = x.shape
        if kind.multi_label:
            frequency = y.float().mean(0)
            constant = torch.where((frequency == 0) | (frequency == 1), frequency.to(x.dtype),
                                   torch.full_like(frequency, -1.0, dtype=x.dtype))  # -1: fitted
            weight, bias, evaluations = fit_logistic(x, y, True, kind.num_classes, cfg.C, cfg.max_iter, cfg.tolerance)
            model = {"coef": weight, "bias": bias, "constant": constant}
        else:
            present = torch.bincount(y.long(), minlength=kind.num_classes) > 0
            mask = torch.zeros(kind.num_classes, dtype=x.dtype, device=x.device).masked_fill(~present, MASKED)
            weight, bias, evaluations = fit_logistic(x, y, False, kind.num_classes, cfg.C, cfg.max_iter,
                                                     cfg.tolerance, mask)
            model = {"coef": weight, "bias": bias, "mask": mask}
        flops = 4 * evaluations * n * d * kind.num_classes
        return model, flops, {"evaluations": evaluations}

    def score(self, model, x, kind):
        x = x.to(model["coef"].dtype)
        logits = x @ model["coef"].T + model["bias"]
        flops = 2 * len(x) * x.shape[1] * model["coef"].shape[0]
        if kind.multi_label:
            constant = model["constant"]
            return torch.where(constant >= 0, constant.expand_as(logits), torch.sigmoid(logits)), flops
        return torch.softmax(logits + model["mask"], dim=1), flops


@LEARNERS.register("linear_probe", LinearProbeConfig,
                   test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32, "max_iter": 20})
def make_linear_probe(config: LinearProbeConfig) -> LinearProbeLearner:
    """Logistic-regression probe (L-BFGS on the device) on frozen-encoder features, one per task."""
    return LinearProbeLearner(config)
