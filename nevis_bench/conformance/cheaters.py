"""Learners that try to break the protocol; the harness must refuse every one of them.

:class:`CheatingLearner` is an honest nearest-class-mean learner on 8x8 grey pixels until its
``leak`` makes it read what its event does not hand it:

* ``predict_labels``: the labels of the split it is asked to predict (scoring itself perfectly);
* ``predict_ids``: the example ids of that split (an id can name the class);
* ``test_labels`` / ``dev_test_labels``: held-out splits of its task, during training;
* ``other_task``: another task of the stream (``other_task`` names it), during training.

With ``leak=None`` it runs to the end, so a refusal is due to the leak alone.
:class:`UnderReportingLearner` is honest about data and reports a hundredth of the FLOPs it
spends; the FLOP audit must catch it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.protocol import MULTI_LABEL, Predictions, ResourceUsage

LEAKS = ("predict_labels", "predict_ids", "test_labels", "dev_test_labels", "other_task")


def _pixels(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2).mean(1, keepdim=True) / 255.0
    return F.adaptive_avg_pool2d(x, 8).flatten(1)


class CheatingLearner:
    checkpoints_within_event = False

    def __init__(self, leak: str | None = None, other_task: str = ""):
        if leak is not None and leak not in LEAKS:
            raise ValueError(f"unknown leak {leak!r}; leaks: {', '.join(LEAKS)}")
        self.leak = leak
        self.other_task = other_task

    def init(self):
        return {"means": {}}

    def train(self, event, state, ctx):
        key = event.task.key
        if self.leak in ("test_labels", "dev_test_labels"):
            ctx.data.split(key, self.leak.removesuffix("_labels")).labels
        if self.leak == "other_task":
            ctx.data.split(self.other_task, "train").labels
        split = ctx.data.split(key, event.train_split)
        x = _pixels(split.images)
        labels = np.asarray(split.labels)
        if event.task.kind == MULTI_LABEL:
            y = torch.from_numpy(labels.astype(np.float32))
        else:
            y = F.one_hot(torch.from_numpy(labels.astype(np.int64)), event.task.num_classes).float()
        means = (y.T @ x) / y.sum(0).clamp_min(1).unsqueeze(1)
        state["means"][key] = means
        return state, ResourceUsage(flops_train=2.0 * x.shape[0] * x.shape[1] * y.shape[1])

    def predict(self, event, state, ctx):
        split = ctx.data.split(event.task.key, event.split)
        if self.leak == "predict_labels":
            labels = np.asarray(split.labels)
            scores = np.eye(event.task.num_classes)[labels] if labels.ndim == 1 else labels.astype(np.float64)
            return [Predictions(np.arange(len(labels)), scores)], ResourceUsage(flops_inference=1.0)
        if self.leak == "predict_ids":
            split.ids
        x = _pixels(split.images)
        means = state["means"][event.task.key]
        # -|x - m|^2 up to a per-row constant, as a matmul the FLOP counter sees
        scores = torch.softmax(2 * x @ means.T - means.square().sum(1), dim=1).numpy()
        usage = ResourceUsage(flops_inference=2.0 * x.shape[0] * x.shape[1] * means.shape[0])
        return [Predictions(np.arange(len(split)), scores)], usage


class UnderReportingLearner(CheatingLearner):
    """Trains a linear layer with torch (FLOPs the counter sees) and reports 1% of them."""

    def train(self, event, state, ctx):
        split = ctx.data.split(event.task.key, event.train_split)
        x = _pixels(split.images)
        layer = torch.nn.Linear(x.shape[1], 256)
        for _ in range(20):
            layer(x).square().mean().backward()
        state, usage = super().train(event, state, ctx)
        honest = 20 * 3 * 2.0 * x.shape[0] * x.shape[1] * 256
        return state, ResourceUsage(flops_train=0.01 * honest + usage.flops_train)
