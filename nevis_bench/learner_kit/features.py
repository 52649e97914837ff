"""The one frozen-encoder path of the learners on fixed features (knn, ncm, linear_probe,
latent_replay, curl, leo, warpgrad).

* **Encoder.** :class:`EncoderConfig` names any encoder :func:`nevis_bench.learner_kit.encoders.load_encoder`
  knows: torchvision ImageNet weights (``resnet18``, ...), ``random:<arch>`` or ``file:PATH``. A
  ``random:<arch>`` encoder without ``@<seed>`` takes its initialisation from the run seed, so runs
  with other seeds are other draws of the random features (``random:<arch>@<n>`` pins one).
* **Features** of a split come from :func:`nevis_bench.learner_kit.encoders.encode`: the on-disk
  feature cache under ``<data_dir>/features/``, computed on ``ctx.device``. The encoder's forward
  FLOPs are charged for every image, cached or not: train-split features are train FLOPs, the
  predicted split's are inference FLOPs (the caller puts them in the right phase).
* **Standardisation.** Random and pre-trained features are far from centred: a random
  ``small_convnet``'s features of every COIL-100 image sit at cosine >= 0.98 with their mean, which
  stalls models trained on them. :func:`fit_standardiser` takes per-dimension mean and standard
  deviation of a task's train features; the learner keeps them in its state (plain tensors) and
  applies the same statistics to every split of that task with :func:`standardised`.
* **Accounting.** :func:`held_parameters` is a frozen-feature learner's ``peak_parameter_*``: the frozen
  encoder (held whether or not it is in the state) plus everything else it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nevis_bench.learner_kit.encoders import Encoder, encode, load_encoder
from nevis_bench.learner_kit.models import parameter_usage

_LOADED: dict[tuple, Encoder] = {}
STANDARDISE_EPS = 1e-6


@dataclass
class EncoderConfig:
    encoder: str = "random:small_convnet"  # random:<arch> takes the run seed unless it ends in @<seed>
    encoder_weights: str = ""  # a path; "" = the encoder's own (torchvision cache, checkpoint, none)
    encoder_input_size: int = 0  # 0 = the encoder's default
    encode_batch_size: int = 256


def encoder_name(config: EncoderConfig, seed: int) -> str:
    """The encoder a run with ``seed`` uses: ``random:<arch>`` gets ``@<seed>``."""
    if config.encoder.startswith("random:") and "@" not in config.encoder:
        return f"{config.encoder}@{int(seed)}"
    return config.encoder


def frozen_encoder(config: EncoderConfig, seed: int) -> Encoder:
    """The frozen encoder of ``config`` for a run with ``seed`` (loaded once per process, never trained)."""
    name = encoder_name(config, seed)
    key = (name, config.encoder_weights or None, config.encoder_input_size or None)
    if key not in _LOADED:
        _LOADED[key] = load_encoder(name, config.encoder_weights or None, config.encoder_input_size or None)
    return _LOADED[key]


def split_features(config: EncoderConfig, ctx, task_key: str, split: str
                   ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(features (N, D) float32 on the CPU, labels tensor or None when the split is unlabelled, encoder FLOPs).

    Labels are class indices (int64) or multi-hot rows (float32)."""
    encoder = frozen_encoder(config, ctx.seed)
    feats, flops = encode(encoder, (task_key, split), ctx, config.encode_batch_size)
    data = ctx.data.split(task_key, split)
    if not data.labelled:  # the split of a predict event
        return feats, None, flops
    labels = torch.as_tensor(data.labels)
    labels = labels.float() if labels.ndim == 2 else labels.long()
    return feats, labels, flops


def fit_standardiser(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-dimension mean and standard deviation of (train) features: plain tensors for the state."""
    mean = features.mean(0)
    std = features.std(0, unbiased=False) if len(features) > 1 else torch.ones_like(mean)
    return {"mean": mean.clone(), "std": std.clamp_min(STANDARDISE_EPS).clone()}


def standardised(features: torch.Tensor, stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """``features`` centred and scaled with statistics from :func:`fit_standardiser`."""
    mean, std = stats["mean"].to(features.device), stats["std"].to(features.device)
    return (features - mean) / std


def held_parameters(config: EncoderConfig, seed: int, *held) -> dict[str, int]:
    """``peak_parameter_count`` / ``peak_parameter_bytes`` of the frozen encoder and of ``held`` (modules,
    state dicts, tensors: :func:`~nevis_bench.learner_kit.models.parameter_usage`)."""
    return parameter_usage(frozen_encoder(config, seed).module, *held)
