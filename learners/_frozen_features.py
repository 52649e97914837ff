"""Frozen features for the learners that work on a fixed embedding (``curl``, ``leo``, ``warpgrad``).

A private stand-in for a pre-trained encoder: a ``nevis_bench.learner_kit.models`` backbone (default
``small_convnet``) initialised from a fixed seed, in eval mode, never trained. Features of a split
are computed with the evaluation preprocessing (central square crop, resize; no augmentation) and
every image's forward pass is charged to the caller (``ctx.flops.forward_examples``): train FLOPs
when the features feed training, inference FLOPs when they feed a predict event.

Features are L2-normalised and scaled by sqrt(D), so each dimension has roughly unit scale whatever
the random initialisation does to activation magnitudes (LEO also L2-normalises its embeddings).

Also here: :func:`counted`, which measures the FLOPs of an arbitrary computation (a custom train
step of several modules, an ELBO over gathered per-component heads) with ``FlopCounterMode`` once per
key (shapes) and caches the count in ``ctx.flops`` like the harness's own counts.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.data.loader import eval_batches
from nevis_bench.learner_kit.models import make_backbone
from nevis_bench.protocol import Predictions

_ENCODERS: dict[tuple[str, int], torch.nn.Module] = {}


def frozen_encoder(name: str = "small_convnet", seed: int = 0) -> torch.nn.Module:
    """The deterministic frozen encoder ``name`` initialised from ``seed`` (cached per process)."""
    key = (name, int(seed))
    if key not in _ENCODERS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            module = make_backbone(name)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        _ENCODERS[key] = module
    return _ENCODERS[key]


def encode_split(split, ctx, encoder: str = "small_convnet", seed: int = 0, input_size: int = 32,
                 batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(features (N, D) float32, labels tensor, FLOPs) of every example of ``split``, in order."""
    module = frozen_encoder(encoder, seed)
    feats, labels = [], []
    with torch.no_grad():
        for _, inputs, y in eval_batches(split, batch_size, input_size):
            f = module(inputs)
            feats.append(F.normalize(f, dim=1) * f.shape[1] ** 0.5)
            if y is not None:  # None on the split of a predict event
                labels.append(y)
    dim = module.feature_dim
    features = torch.cat(feats) if feats else torch.zeros(0, dim)
    flops = ctx.flops.forward_examples(module, (3, input_size, input_size), len(split), batch_size) if len(split) else 0
    return features.float(), (torch.cat(labels) if labels else torch.zeros(0)), int(flops)


def counted(ctx, key: tuple, fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn`` and return (its result, its FLOPs); FlopCounterMode runs only the first time per key.

    ``key`` must determine the FLOPs (it should name the computation and every shape involved).
    The count covers everything ``fn`` does, backward passes included.
    """
    return ctx.flops.measured(key, fn)


def scores_as_predictions(scores: np.ndarray, batch_size: int) -> Iterator[Predictions]:
    """Scores of a whole split (computed up front, FLOPs already counted) as batches of predictions."""
    for start in range(0, len(scores), batch_size):
        indices = np.arange(start, min(start + batch_size, len(scores)))
        yield Predictions(indices=indices, scores=scores[indices])
