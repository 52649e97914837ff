"""A model per task key fitted on frozen-encoder features: the base of ``knn``, ``ncm`` and ``linear_probe``.

Everything encoder-related goes through the one frozen-encoder path,
:mod:`nevis_bench.learner_kit.features`: any encoder (``random:<arch>`` seeded by the run seed,
torchvision weights, ``file:PATH``), the on-disk feature cache, and per-dimension standardisation
whose train statistics are kept in the state per task key (``state["standardisers"][key]``) and
applied to every split of that task.

Subclasses define ``fit(x, y, kind, ctx) -> (model: dict of tensors, fit_flops, info)`` and
``score(model, x, kind) -> (scores (N, K) tensor, flops)``; ``x`` is the standardised features on
``ctx.device`` and ``kind`` the task's :class:`~nevis_bench.learner_kit.tasks.TaskKind`. Models are
stored as CPU tensors (plain data for checkpoints) and moved to ``ctx.device`` to score.

Compute: train FLOPs = encoder forwards over the train split + ``fit_flops``; inference FLOPs =
encoder forwards over the predicted split + scoring FLOPs. Parameters
(:func:`~nevis_bench.learner_kit.models.parameter_usage`): the frozen encoder plus every stored
model of every task key (kNN references, class means, probe weights).
"""

from __future__ import annotations

import torch

from nevis_bench.learner_kit.features import (
    fit_standardiser, held_parameters, split_features, standardised,
)
from nevis_bench.learner_kit.tasks import TaskKind, task_kind
from nevis_bench.protocol import ResourceUsage


def to_state(model: dict) -> dict:
    """Detached CPU copies of a model's tensors (plain data for the state)."""
    return {k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v for k, v in model.items()}


def to_device(model: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model.items()}


class PerTaskFeatureLearner:
    """One model per task key on standardised frozen features (see the module docstring)."""

    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    name = "?"

    def __init__(self, config):
        self.config = config

    def init(self):
        return {"models": {}, "standardisers": {}}

    def fit(self, x: torch.Tensor, y: torch.Tensor, kind: TaskKind, ctx):  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, model: dict, x: torch.Tensor, kind: TaskKind):  # pragma: no cover - abstract
        raise NotImplementedError

    def train(self, event, state, ctx):
        task = event.task
        x, y, encode_flops = split_features(self.config, ctx, task.key, event.train_split)
        stats = fit_standardiser(x)
        x = standardised(x.to(ctx.device), stats)
        model, fit_flops, info = self.fit(x, y.to(ctx.device), task_kind(task), ctx)
        state = {"models": {**state["models"], task.key: to_state(model)},
                 "standardisers": {**state["standardisers"], task.key: stats}}
        usage = ResourceUsage(
            flops_train=float(encode_flops + fit_flops),
            info={**info, "encoder_flops": float(encode_flops), "fit_flops": float(fit_flops)},
            **held_parameters(self.config, ctx.seed, state["models"]),
        )
        return state, usage

    def predict(self, event, state, ctx):
        task = event.task
        model = state["models"].get(task.key)
        if model is None:
            raise RuntimeError(f"{self.name}: task {task.key!r} was never trained")
        x, _, encode_flops = split_features(self.config, ctx, task.key, event.split)
        x = standardised(x.to(ctx.device), state["standardisers"][task.key])
        kind = task_kind(task)
        scores, flops = self.score(to_device(model, ctx.device), x, kind)
        usage = ResourceUsage(flops_inference=float(encode_flops + flops),
                              **held_parameters(self.config, ctx.seed, state["models"]))
        return kind.predictions(scores), usage
