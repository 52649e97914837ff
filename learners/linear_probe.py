"""``linear_probe``: logistic regression (scikit-learn) on frozen-encoder features, one per task.

Train: encode the train split (encoder FLOPs), standardise each feature vector, fit
``sklearn.linear_model.LogisticRegression`` (L-BFGS, ``C``, ``max_iter``; deterministic: no random
state is involved) and store the fitted coefficients, intercepts and class ids as tensors in the
state. Single-label: one multinomial model over the classes present in the train split (other classes
score 0; one present class scores 1). Multi-label: one binary model per class; a class whose train
labels are all equal gets a constant score (its frequency).

FLOPs (FlopCounterMode cannot see scikit-learn, so they are analytic): every L-BFGS iteration
evaluates the logits (N x D x C multiply-accumulates) and the gradient (another N x D x C), so
training costs iterations x N x D x C x 2 MACs = 4 x iterations x N x D x C FLOPs (``n_iter_`` as
reported by scikit-learn; extra line-search evaluations are not reported by it and not counted).
Prediction: N x D x C MACs = 2 x N x D x C FLOPs.

Measured numbers and the full notes: docs/learners/linear_probe.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from nevis_bench.learners._latent import EncoderConfig, PerTaskFeatureLearner
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class LinearProbeConfig(EncoderConfig):
    C: float = 1.0
    max_iter: int = 200

    def __post_init__(self):
        if self.C <= 0 or self.max_iter < 1:
            raise ValueError("C must be positive and max_iter at least 1")


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


class LinearProbeLearner(PerTaskFeatureLearner):
    name = "linear_probe"

    def fit(self, x, y, task, ctx):
        cfg = self.config
        n, d = x.shape
        xs = x.double().numpy()
        if task.kind == MULTI_LABEL:
            coef = torch.zeros(task.num_classes, d, dtype=torch.float64)
            bias = torch.zeros(task.num_classes, dtype=torch.float64)
            constant = torch.full((task.num_classes,), -1.0, dtype=torch.float64)  # -1: fitted
            iterations = 0
            for c in range(task.num_classes):
                target = (y[:, c] > 0.5).numpy().astype(np.int64)
                if target.min() == target.max():
                    constant[c] = float(target.mean())
                    continue
                model = _fit(xs, target, cfg.C, cfg.max_iter)
                coef[c] = torch.from_numpy(model.coef_[0])
                bias[c] = float(model.intercept_[0])
                iterations += int(np.max(model.n_iter_))
            flops = 4 * iterations * n * d  # one output per binary model
            return {"coef": coef, "bias": bias, "constant": constant}, flops, {"iterations": iterations}
        labels = y.numpy()
        classes = np.unique(labels)
        if len(classes) == 1:
            return {"classes": torch.from_numpy(classes), "coef": torch.zeros(1, d, dtype=torch.float64),
                    "bias": torch.zeros(1, dtype=torch.float64)}, 0, {"iterations": 0}
        model = _fit(xs, labels, cfg.C, cfg.max_iter)
        coef, bias = torch.from_numpy(model.coef_.copy()), torch.from_numpy(model.intercept_.copy())
        if len(classes) == 2:  # binary: sklearn keeps one row for class 1
            coef, bias = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros_like(bias), bias])
        iterations = int(np.max(model.n_iter_))
        flops = 4 * iterations * n * d * len(classes)
        return ({"classes": torch.from_numpy(classes), "coef": coef, "bias": bias}, flops,
                {"iterations": iterations, "classes": int(len(classes))})

    def score(self, model, x, task):
        x = x.double()
        logits = x @ model["coef"].T + model["bias"]
        flops = 2 * len(x) * x.shape[1] * model["coef"].shape[0]
        if task.kind == MULTI_LABEL:
            constant = model["constant"]
            scores = torch.where(constant >= 0, constant.expand_as(logits), torch.sigmoid(logits))
            return scores, flops
        scores = torch.zeros(len(x), task.num_classes, dtype=torch.float64)
        scores[:, model["classes"]] = torch.softmax(logits, dim=1)
        return scores, flops


@LEARNERS.register("linear_probe", LinearProbeConfig,
                   test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32, "max_iter": 20})
def make_linear_probe(config: LinearProbeConfig) -> LinearProbeLearner:
    """Logistic-regression probe (scikit-learn) on frozen-encoder features, one per task."""
    return LinearProbeLearner(config)
