"""Pieces shared by the learners on frozen-encoder features (latent_replay, knn, ncm, linear_probe).

Encoders come from :mod:`nevis_bench.learner_kit.encoders` (``encoder`` name, optional ``encoder_weights`` path,
``encoder_input_size`` 0 = the encoder's default). Features come from :func:`nevis_bench.learner_kit.encoders.encode`
(feature cache under ``<data_dir>/features/``); the encoder's forward FLOPs are charged for every
image encoded: train-split features are ``flops_train``, the predicted split's are ``flops_inference``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nevis_bench.learner_kit.encoders import Encoder, encode, load_encoder
from nevis_bench.learner_kit.models import parameter_bytes, parameter_count
from nevis_bench.protocol import MULTI_LABEL, Predictions

_ENCODERS: dict[tuple, Encoder] = {}


@dataclass
class EncoderConfig:
    encoder: str = "random:small_convnet"
    encoder_weights: str = ""  # a path; "" = the encoder's own (torchvision cache, checkpoint, none)
    encoder_input_size: int = 0  # 0 = the encoder's default
    encode_batch_size: int = 256


def get_encoder(config: EncoderConfig) -> Encoder:
    """The frozen encoder of ``config`` (loaded once per process; it is never trained)."""
    key = (config.encoder, config.encoder_weights or None, config.encoder_input_size or None)
    if key not in _ENCODERS:
        _ENCODERS[key] = load_encoder(config.encoder, config.encoder_weights or None, config.encoder_input_size or None)
    return _ENCODERS[key]


def features(config: EncoderConfig, task_key: str, split: str, ctx) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(features (N, D), labels tensor, encoder FLOPs) of one split."""
    encoder = get_encoder(config)
    feats, flops = encode(encoder, (task_key, split), ctx, config.encode_batch_size)
    data = ctx.data.split(task_key, split)
    if not data.labelled:  # the split of a predict event
        return feats, None, flops
    labels = data.labels
    labels = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32 if labels.ndim == 2 else np.int64))
    return feats, labels, flops


def encoder_usage(config: EncoderConfig, extra_params: int = 0, extra_bytes: int = 0) -> dict[str, int]:
    module = get_encoder(config).module
    return {
        "peak_parameter_count": parameter_count(module) + int(extra_params),
        "peak_parameter_bytes": parameter_bytes(module) + int(extra_bytes),
    }


def tensors_size(*tensors: torch.Tensor) -> tuple[int, int]:
    """(elements, bytes) of stored tensors (e.g. kNN references) for the parameter peaks."""
    return sum(t.numel() for t in tensors), sum(t.numel() * t.element_size() for t in tensors)


def as_predictions(task, scores: torch.Tensor, batch: int = 256):
    """Predictions in batches from a (N, K) score tensor (probabilities for multi-label)."""
    scores = scores.double().cpu().numpy()
    if task.kind == MULTI_LABEL:
        scores = np.clip(scores, 0.0, 1.0)
    return [Predictions(indices=np.arange(s, min(s + batch, len(scores))), scores=scores[s:s + batch])
            for s in range(0, len(scores), batch)]


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-example standardisation over the feature dimension (stateless)."""
    return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6)


class PerTaskFeatureLearner:
    """A model per task key fitted on frozen train features (kNN, NCM, linear probe).

    Subclasses define ``fit(x, y, task, ctx) -> (model: dict of tensors, fit_flops, info)`` and
    ``score(model, x, task) -> (scores (N, K), flops)``. Train FLOPs = encoder forwards over the
    train split + ``fit_flops``; inference FLOPs = encoder forwards over the predicted split +
    scoring FLOPs.
    """

    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    name = "?"

    def __init__(self, config):
        self.config = config

    def init(self):
        return {"models": {}}

    def fit(self, x, y, task, ctx):  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, model, x, task):  # pragma: no cover - abstract
        raise NotImplementedError

    def train(self, event, state, ctx):
        from nevis_bench.protocol import ResourceUsage

        x, y, encode_flops = features(self.config, event.task.key, event.train_split, ctx)
        model, fit_flops, info = self.fit(standardise(x), y, event.task, ctx)
        elements, nbytes = tensors_size(*[v for v in model.values() if isinstance(v, torch.Tensor)])
        usage = ResourceUsage(
            flops_train=float(encode_flops + fit_flops),
            info={**info, "encoder_flops": float(encode_flops), "fit_flops": float(fit_flops)},
            **encoder_usage(self.config, elements, nbytes),
        )
        return {"models": {**state["models"], event.task.key: model}}, usage

    def predict(self, event, state, ctx):
        from nevis_bench.protocol import ResourceUsage

        model = state["models"].get(event.task.key)
        if model is None:
            raise RuntimeError(f"{self.name}: task {event.task.key!r} was never trained")
        x, _, encode_flops = features(self.config, event.task.key, event.split, ctx)
        scores, flops = self.score(model, standardise(x), event.task)
        elements, nbytes = tensors_size(*[v for v in model.values() if isinstance(v, torch.Tensor)])
        usage = ResourceUsage(flops_inference=float(encode_flops + flops), **encoder_usage(self.config, elements, nbytes))
        return as_predictions(event.task, scores), usage
