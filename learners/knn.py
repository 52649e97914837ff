"""``knn``: k-nearest-neighbour classification of frozen-encoder features, one reference set per task.

Train: encode the train split (encoder FLOPs, see :mod:`nevis_bench.learners._latent`), standardise
each feature vector, and keep the features and labels as tensors in the state (no fitting).
Predict: Euclidean distances from each query to every reference (``torch.cdist``), the ``k``
nearest (ties broken by index), scores = the fraction of the neighbours with each label (single-label:
votes per class; multi-label: mean of the neighbours' multi-hot labels, a probability per class).

FLOPs (FlopCounterMode does not see ``cdist``, so they are counted analytically): the distance
computation is N_query x N_ref x D multiply-accumulates = 2 x N_query x N_ref x D FLOPs at predict
time (inference); the vote is negligible.

Measured numbers and the full notes: docs/learners/knn.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learners._latent import EncoderConfig, PerTaskFeatureLearner
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class KnnConfig(EncoderConfig):
    k: int = 5

    def __post_init__(self):
        if self.k < 1:
            raise ValueError("k must be at least 1")


def knn_scores(ref_x: torch.Tensor, ref_y: torch.Tensor, x: torch.Tensor, k: int, num_classes: int,
               multi_label: bool) -> tuple[torch.Tensor, int]:
    """(scores (N, K), analytic FLOPs of the distances)."""
    k = min(k, len(ref_x))
    distances = torch.cdist(x.double(), ref_x.double())
    # stable ordering: sort by (distance, index)
    order = torch.sort(distances, dim=1, stable=True).indices[:, :k]
    if multi_label:
        scores = ref_y.float()[order].mean(1)
    else:
        scores = F.one_hot(ref_y[order], num_classes).float().mean(1)
    return scores, 2 * len(x) * len(ref_x) * x.shape[1]


class KnnLearner(PerTaskFeatureLearner):
    name = "knn"

    def fit(self, x, y, task, ctx):
        return {"x": x.clone(), "y": y.clone()}, 0, {"references": int(len(x))}

    def score(self, model, x, task):
        return knn_scores(model["x"], model["y"], x, self.config.k, task.num_classes, task.kind == MULTI_LABEL)


@LEARNERS.register("knn", KnnConfig, test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32})
def make_knn(config: KnnConfig) -> KnnLearner:
    """k-nearest neighbours on frozen-encoder features, one reference set per task."""
    return KnnLearner(config)
