"""``ncm``: nearest class mean on frozen-encoder features, one set of means per task.

Train: encode the train split (encoder FLOPs), standardise each feature vector, and store the mean
feature of every class (single-label; classes without train examples get no mean and score 0) as
tensors. Multi-label: per class, the mean of the examples that have it and of those that do not.
Predict: single-label scores = softmax over the classes with a mean of minus the squared Euclidean
distance; multi-label: sigmoid(d_negative^2 - d_positive^2) per class.

FLOPs, analytic (no module runs): class means = N x D additions (train); distances =
N_query x (number of means) x D multiply-accumulates = 2x FLOPs (inference).

Measured numbers and the full notes: docs/learners/ncm.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nevis_bench.learners._latent import EncoderConfig, PerTaskFeatureLearner
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class NcmConfig(EncoderConfig):
    pass


def _mean(x: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    return x[select].mean(0) if bool(select.any()) else torch.zeros(x.shape[1])


class NcmLearner(PerTaskFeatureLearner):
    name = "ncm"

    def fit(self, x, y, task, ctx):
        if task.kind == MULTI_LABEL:
            positive = torch.stack([_mean(x, y[:, c] > 0.5) for c in range(task.num_classes)])
            negative = torch.stack([_mean(x, y[:, c] <= 0.5) for c in range(task.num_classes)])
            return {"positive": positive, "negative": negative}, x.numel(), {}
        classes = torch.unique(y)
        means = torch.stack([x[y == c].mean(0) for c in classes])
        return {"classes": classes, "means": means}, x.numel(), {"classes": int(len(classes))}

    def score(self, model, x, task):
        if task.kind == MULTI_LABEL:
            d_pos = torch.cdist(x, model["positive"]) ** 2
            d_neg = torch.cdist(x, model["negative"]) ** 2
            return torch.sigmoid(d_neg - d_pos), 2 * 2 * len(x) * task.num_classes * x.shape[1]
        d = torch.cdist(x.double(), model["means"].double()) ** 2
        scores = torch.zeros(len(x), task.num_classes, dtype=torch.float64)
        scores[:, model["classes"]] = torch.softmax(-d, dim=1)
        return scores, 2 * len(x) * len(model["means"]) * x.shape[1]


@LEARNERS.register("ncm", NcmConfig, test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32})
def make_ncm(config: NcmConfig) -> NcmLearner:
    """Nearest class mean on frozen-encoder features, one set of means per task."""
    return NcmLearner(config)
