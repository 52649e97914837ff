"""``knn``: k-nearest-neighbour classification of frozen-encoder features, one reference set per task.

Train: encode the train split (the one frozen-encoder path, :mod:`nevis_bench.learner_kit.features`:
any encoder, feature cache, encoder FLOPs charged), standardise every dimension with the train
split's mean and standard deviation (kept in the state per task key), and keep the standardised
features and labels as the task's reference set (no fitting).
Predict: the one kNN of the kit, :func:`nevis_bench.learner_kit.knn.knn_scores` (chunked squared
Euclidean distances on ``ctx.device``, the ``k`` nearest with ties to the lower reference index);
scores = the fraction of the neighbours voting for each class (single-label) or the mean of their
multi-hot labels (multi-label, a probability per class).

FLOPs, analytic (a matrix product and a top-k): 2 x N_query x N_ref x D at predict time
(inference); the vote is negligible.

Measured numbers and the full notes: docs/learners/knn.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from nevis_bench.learner_kit.features import EncoderConfig
from nevis_bench.learner_kit.knn import knn_scores
from nevis_bench.learners._per_task_features import PerTaskFeatureLearner
from nevis_bench.registry import LEARNERS


@dataclass
class KnnConfig(EncoderConfig):
    k: int = 5
    chunk: int = 1024  # queries scored at once (memory: chunk x references distances)

    def __post_init__(self):
        if self.k < 1 or self.chunk < 1:
            raise ValueError("k and chunk must be at least 1")


class KnnLearner(PerTaskFeatureLearner):
    name = "knn"

    def fit(self, x, y, kind, ctx):
        return {"x": x, "y": y}, 0, {"references": int(len(x))}

    def score(self, model, x, kind):
        return knn_scores(model["x"], model["y"], x, self.config.k, kind.num_classes, kind.multi_label,
                          chunk=self.config.chunk)


@LEARNERS.register("knn", KnnConfig, test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32})
def make_knn(config: KnnConfig) -> KnnLearner:
    """k-nearest neighbours on frozen-encoder features, one reference set per task."""
    return KnnLearner(config)
