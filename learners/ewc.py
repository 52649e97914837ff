"""``ewc``: online Elastic Weight Consolidation (Schwarz et al. 2018; Chaudhry et al. 2018).

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017; the online
variant of Schwarz et al., "Progress & Compress", ICML 2018 (one running Fisher ``F <- gamma F +
F_t`` and one anchor, the parameters after the last task) and Chaudhry et al., "Riemannian Walk"
(EWC++), ECCV 2018. After each task, the diagonal empirical Fisher ``F_t`` (the mean squared
gradient of the task loss of single examples, true labels, eval mode) is estimated on up to
``fisher_examples`` training examples; its forward/backward passes are counted in that event's
``flops_train``. While training a later task the loss adds
``(lambda / 2) * sum_i Fn_i (theta_i - theta*_i)^2`` over every parameter with a Fisher entry (the
backbone, and a head that is trained again: a shared class-incremental head or a repeated task).

Normalised penalty [deviation]: ``Fn = F / max(F)`` (every entry in [0, 1]). The penalty's
curvature is then at most ``lambda``, so SGD on it alone is stable whenever ``learning_rate * lambda``
is below ``2`` (plain), ``2 (1 + m)`` (heavy ball) or ``(2 + 2m) / (1 + 2m)`` = 1.36 (Nesterov with
momentum m = 0.9, the recipe's): the default ``lambda`` 10 with the default peak learning rate 0.05
gives 0.5, so the default strength never diverges whatever the scale of the raw Fisher (which varies
by orders of magnitude between tasks and streams). (A first default of 30 gave 1.5, above the
Nesterov bound.) Held
parameters: the Fisher and the anchor (two backbone-sized copies) count in ``peak_parameter_count``.
Notes and numbers: docs/learners/ewc.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nevis_bench.data.loader import center_square_resize, to_model_input
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import RecipeConfig, to_device
from nevis_bench.learners import _replay as rp
from nevis_bench.registry import LEARNERS


@dataclass
class EWCConfig(RecipeConfig, rp.HeadConfig):
    ewc_lambda: float = 10.0  # strength, on the max-normalised Fisher (learning_rate * ewc_lambda < 1.36 is stable)
    gamma: float = 1.0  # decay of the running Fisher (online EWC); 1 keeps every task's Fisher at full weight
    fisher_examples: int = 200  # training examples of a task the Fisher is estimated on (at most)

    def __post_init__(self):
        super().__post_init__()
        self.check_scores()
        if self.ewc_lambda < 0 or not 0 <= self.gamma <= 1 or self.fisher_examples < 1:
            raise ValueError("ewc_lambda >= 0, 0 <= gamma <= 1 and fisher_examples >= 1 are required")


def named_parameters(net: rp.MultiHeadNet) -> dict[str, torch.nn.Parameter]:
    """The network's parameters under names that do not depend on the heads' order."""
    named = {f"backbone.{n}": p for n, p in net.backbone.named_parameters()}
    for name in net.names:
        named.update({f"head/{name}.{n}": p for n, p in net.head(name).named_parameters()})
    return named


class EWCLearner:
    name = "ewc"

    def __init__(self, config: EWCConfig):
        self.config = config

    def init(self):
        return rp.initial_state(fisher={}, anchor={})

    def penalty(self, params: list, fisher: list, anchor: list) -> torch.Tensor:
        return 0.5 * self.config.ewc_lambda * sum((f * (p - a) ** 2).sum() for p, f, a in zip(params, fisher, anchor))

    def fisher(self, net, task, ctx) -> tuple[dict[str, torch.Tensor], float]:
        """The diagonal empirical Fisher of ``task`` at ``net`` (CPU tensors by name) and its FLOPs."""
        cfg = self.config
        split = ctx.data.split(task.key, "train")
        rng = np.random.default_rng(ctx.rng_seed("fisher"))
        count = min(cfg.fisher_examples, len(split))
        chosen = np.sort(rng.choice(len(split), count, replace=False))
        kind = task_kind(task)
        net.eval()
        named = named_parameters(net)
        totals = {n: torch.zeros_like(p) for n, p in named.items()}
        images, labels = split.take(chosen)
        targets = kind.targets(labels)
        for i in range(count):
            x = center_square_resize(to_model_input(images[i:i + 1]), cfg.input_size)
            net.zero_grad(set_to_none=True)
            kind.loss(net(to_device(x, ctx.device, cfg)), targets[i:i + 1].to(ctx.device)).backward()
            for n, p in named.items():
                if p.grad is not None:
                    totals[n] += p.grad.detach() ** 2
        net.zero_grad(set_to_none=True)
        flops = count * ctx.flops.train_step(net, (1, 3, cfg.input_size, cfg.input_size), kind.target_shape(1),
                                             kind.loss, kind.target_dtype, kind.loss_key)
        net.train()
        return {n: (t / count).cpu() for n, t in totals.items() if n.startswith("backbone.") or t.any()}, float(flops)

    def train(self, event, state, ctx):
        task = event.task
        cfg = self.config

        def make_step(net, task, counter):
            named = named_parameters(net)
            # the backbone and the head this task trains (old heads are not trained: no penalty on them)
            keys = [n for n in state["fisher"] if n in named
                    and (n.startswith("backbone.") or n.startswith(f"head/{net.current}."))]
            if not keys or cfg.ewc_lambda == 0:
                return {}
            scale = max(float(state["fisher"][n].max()) for n in keys)
            scale = scale if scale > 0 else 1.0
            params = [named[n] for n in keys]
            fisher = [(state["fisher"][n] / scale).to(ctx.device) for n in keys]
            anchor = [state["anchor"][n].to(ctx.device) for n in keys]
            kind = task_kind(task, cfg.label_smoothing)

            def loss(x, y):
                current = kind.loss(net(x), y)
                penalty = self.penalty(params, fisher, anchor)
                return current + penalty, {"current": current.detach(), "penalty": penalty.detach()}

            return {"loss": loss}  # the penalty is elementwise: fit's count of the plain step

        new_state, result, net = rp.train_event(self, event, state, ctx, make_step=make_step)
        fisher_t, flops = self.fisher(net, task, ctx)
        fisher = {n: cfg.gamma * f for n, f in state["fisher"].items()}
        for n, f in fisher_t.items():
            fisher[n] = fisher[n] + f if n in fisher else f
        named = named_parameters(net)
        anchor = {**state["anchor"], **{n: named[n].detach().cpu().clone() for n in fisher_t}}
        new_state = {**new_state, "fisher": fisher, "anchor": anchor}
        usage = rp.with_extra_flops(result.usage(*rp.network_parameters(new_state), fisher, anchor), flops,
                                    fisher_examples=min(cfg.fisher_examples, len(ctx.data.split(task.key, "train"))))
        return new_state, usage

    def predict(self, event, state, ctx):
        return rp.predict_event(self.name, self.config, event, state, ctx, held=(state["fisher"], state["anchor"]))


@LEARNERS.register("ewc", EWCConfig, test_overrides={"max_steps": 12, "min_steps": 4, "fisher_examples": 8})
def make_ewc(config: EWCConfig) -> EWCLearner:
    """Online EWC: a max-normalised diagonal Fisher penalty towards the last task's parameters (Schwarz et al. 2018)."""
    return EWCLearner(config)
