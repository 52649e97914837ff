"""``ncm``: nearest class mean on frozen-encoder features, one set of means per task.

Train: encode the train split (the one frozen-encoder path, :mod:`nevis_bench.learner_kit.features`),
standardise every dimension with the train statistics (kept in the state per task key), and store
the mean feature of every class on ``ctx.device`` (single-label; a class without train examples has
no mean and scores 0). Multi-label: per class, the mean of the examples that have it and the mean
of those that do not (an empty group's mean is the zero vector, the standardised data's centre).
Predict: single-label scores = softmax over the classes with a mean of minus the squared Euclidean
distance to each mean; multi-label: sigmoid(d_negative^2 - d_positive^2) per class.

FLOPs, analytic (no module runs): class means = one (K x N) x (N x D) product = 2 N K D FLOPs
(train); distances = 2 x N_query x (number of means) x D (inference).

Measured numbers and the full notes: docs/learners/ncm.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learner_kit.features import EncoderConfig
from nevis_bench.learners._per_task_features import PerTaskFeatureLearner
from nevis_bench.registry import LEARNERS


@dataclass
class NcmConfig(EncoderConfig):
    pass


def group_means(x: torch.Tensor, membership: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(means (K, D), counts (K,)) of the rows of ``x`` in each of K groups (``membership`` (N, K) 0/1);
    an empty group's mean is 0. No host sync."""
    membership = membership.to(x.dtype)
    counts = membership.sum(0)
    return (membership.T @ x) / counts.clamp_min(1.0)[:, None], counts


def squared_distances(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    return (x.pow(2).sum(1, keepdim=True) - 2.0 * x @ means.T + means.pow(2).sum(1)).clamp_min(0.0)


class NcmLearner(PerTaskFeatureLearner):
    name = "ncm"

    def fit(self, x, y, kind, ctx):
        x = x.float()
        n, d = x.shape
        flops = 2 * n * kind.num_classes * d
        if kind.multi_label:
            positive, _ = group_means(x, y > 0.5)
            negative, _ = group_means(x, y <= 0.5)
            return {"positive": positive, "negative": negative}, flops, {}
        means, counts = group_means(x, F.one_hot(y.long(), kind.num_classes))
        return {"means": means, "present": counts > 0}, flops, {}

    def score(self, model, x, kind):
        x = x.float()
        if kind.multi_label:
            d_pos = squared_distances(x, model["positive"])
            d_neg = squared_distances(x, model["negative"])
            return torch.sigmoid(d_neg - d_pos), 2 * 2 * len(x) * kind.num_classes * x.shape[1]
        present = model["present"]
        logits = (-squared_distances(x, model["means"].float())).masked_fill(~present, float("-inf"))
        scores = torch.softmax(logits, dim=1).nan_to_num(0.0)  # absent classes: exp(-inf) = 0
        return scores, 2 * len(x) * kind.num_classes * x.shape[1]


@LEARNERS.register("ncm", NcmConfig, test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32})
def make_ncm(config: NcmConfig) -> NcmLearner:
    """Nearest class mean on frozen-encoder features, one set of means per task."""
    return NcmLearner(config)
