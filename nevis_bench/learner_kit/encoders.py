"""Frozen image encoders and the feature cache shared by the learners on frozen features.

An :class:`Encoder` maps a float batch ``(B, 3, S, S)`` in [-1, 1] (what
:func:`nevis_bench.data.loader.to_model_input` gives) to features ``(B, feature_dim)``. Its
``module`` applies the encoder's own normalisation internally (``mean``/``std`` on [0, 1] pixels),
is in eval mode and has ``requires_grad=False`` on every parameter.

Names understood by :func:`load_encoder`:

* a torchvision model (``resnet18``, ``resnet50``, ``vit_b_16``, ``convnext_tiny``,
  ``efficientnet_b0``) with its ImageNet weights, read from the torchvision cache
  (``torch.hub.get_dir()/checkpoints/<file>``) or from the file given as ``weights``. Nothing is
  ever downloaded: when the file is missing the error names the file and where to put it.
* ``random:<arch>``: a randomly initialised backbone (seed 0), e.g. ``random:small_convnet``,
  ``random:resnet18``; ``<arch>`` is any of :data:`nevis_bench.learner_kit.models.BACKBONES` or the torchvision
  names above. ``random:<arch>@<seed>`` picks another initialisation.
  ``random:tiny_resnet`` is a narrow ResNet (:class:`TinyResNet`) for tests of ResNet code on CPU.
* ``file:/path/to/ckpt.pt``: a checkpoint written by ``nevis-bench pretrain`` (or any name of a
  project backbone with ``weights=PATH``).

Input size: project backbones default to 32 pixels, torchvision models to 224; ``input_size``
overrides it (not for ViT, whose patch grid is fixed).

Feature cache (:func:`encode`): features per (encoder name, weights hash, task, task fingerprint,
split, preprocessing) under ``<data_dir>/features/``, written atomically and reused across runs.
The encoder's forward FLOPs are charged for every image whether or not the features came from the
cache: the cache saves wall time, not counted compute.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from nevis_bench.data.loader import center_square_resize, to_model_input
from nevis_bench.errors import InputError
from nevis_bench.learner_kit._torchvision_compat import ensure_torchvision
from nevis_bench.learner_kit.models import BACKBONES, make_backbone

CHECKPOINT_FORMAT = "nevis-bench-encoder/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PLAIN_MEAN = (0.5, 0.5, 0.5)  # identity on [-1, 1] inputs
PLAIN_STD = (0.5, 0.5, 0.5)
FEATURES_FORMAT = 1


class EncoderWeightsMissing(FileNotFoundError, InputError):
    """Pretrained weights are not available offline; the message says which file to place where."""


@dataclass
class Encoder:
    name: str
    module: nn.Module  # (B, 3, S, S) in [-1, 1] -> (B, feature_dim); eval mode, frozen
    feature_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_hash: str  # identifies the weights (file sha256, or "random-<arch>-<seed>")
    arch: str = ""


class NormalisedEncoder(nn.Module):
    """[-1, 1] input -> the backbone's own normalisation -> backbone features."""

    def __init__(self, backbone: nn.Module, mean, std):
        super().__init__()
        self.backbone = backbone
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # x01 = (x + 1) / 2; y = (x01 - mean) / std = x * scale + shift
        self.register_buffer("scale", 0.5 / std_t, persistent=False)
        self.register_buffer("shift", (0.5 - mean_t) / std_t, persistent=False)
        self.identity = tuple(mean) == PLAIN_MEAN and tuple(std) == PLAIN_STD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.identity:
            x = x * self.scale + self.shift
        return self.backbone(x)


# --------------------------------------------------------------------------- torchvision models


def _tv_resnet(tv, name):
    model = getattr(tv.models, name)(weights=None)
    dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, dim


def _tv_vit(tv, name):
    model = getattr(tv.models, name)(weights=None)
    dim = model.hidden_dim
    model.heads = nn.Identity()
    return model, dim


def _tv_convnext(tv, name):
    model = getattr(tv.models, name)(weights=None)
    dim = model.classifier[-1].in_features
    model.classifier[-1] = nn.Identity()
    return model, dim


def _tv_efficientnet(tv, name):
    model = getattr(tv.models, name)(weights=None)
    dim = model.classifier[-1].in_features
    model.classifier = nn.Identity()
    return model, dim


class TinyResNet(nn.Module):
    """A small CIFAR-style ResNet: torchvision basic blocks, one per stage, widths 16-32 by default.

    Same layout and attribute names as torchvision's ResNet (``conv1``, ``bn1``, ``layer1``..``layer4``,
    stages beyond ``len(widths)`` empty, no ``fc``), so code written for ResNets (e.g. structured
    pruning) runs on it; a test-sized stand-in for a pre-trained ResNet on CPU (few layers, because
    every convolution call has a fixed CPU overhead).
    """

    def __init__(self, widths=(16, 32)):
        super().__init__()
        ensure_torchvision()
        from torchvision.models.resnet import BasicBlock

        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes = widths[0]
        for i in range(4):
            if i >= len(widths):
                setattr(self, f"layer{i + 1}", nn.Sequential())
                continue
            planes, stride = widths[i], (1 if i == 0 else 2)
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride, down)))
            inplanes = planes
        self.feature_dim = inplanes

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


def _tiny_resnet():
    ensure_torchvision()
    model = TinyResNet()
    return model, model.feature_dim


TORCHVISION_ENCODERS: dict[str, Callable] = {
    "resnet18": _tv_resnet,
    "resnet34": _tv_resnet,
    "resnet50": _tv_resnet,
    "vit_b_16": _tv_vit,
    "convnext_tiny": _tv_convnext,
    "efficientnet_b0": _tv_efficientnet,
}


def torchvision_weights_file(name: str) -> tuple[str, pathlib.Path]:
    """(download URL, expected local path) of the ImageNet weights of a torchvision model."""
    tv = ensure_torchvision()
    url = tv.models.get_model_weights(name).DEFAULT.url
    return url, pathlib.Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    path = pathlib.Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _frozen(name, backbone, dim, input_size, mean, std, weights_hash, arch) -> Encoder:
    module = NormalisedEncoder(backbone, mean, std).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return Encoder(name, module, int(dim), int(input_size), tuple(mean), tuple(std), weights_hash, arch)


def _build_arch(arch: str):
    """(backbone, feature_dim, default input size, mean, std, is_torchvision) with fresh weights."""
    if arch in TORCHVISION_ENCODERS:
        tv = ensure_torchvision()
        backbone, dim = TORCHVISION_ENCODERS[arch](tv, arch)
        return backbone, dim, 224, IMAGENET_MEAN, IMAGENET_STD
    if arch == "tiny_resnet":
        backbone, dim = _tiny_resnet()
        return backbone, dim, 32, PLAIN_MEAN, PLAIN_STD
    if arch in BACKBONES:
        backbone = make_backbone(arch)
        return backbone, backbone.feature_dim, 32, PLAIN_MEAN, PLAIN_STD
    known = sorted(set(BACKBONES) | set(TORCHVISION_ENCODERS) | {"tiny_resnet"})
    raise ValueError(f"unknown encoder architecture {arch!r}; choose one of {', '.join(known)}")


def _check_size(arch: str, input_size: int) -> None:
    if arch.startswith("vit") and input_size != 224:
        raise ValueError(f"{arch} takes 224-pixel inputs only (got input_size={input_size})")


def _load_random(spec: str, input_size: int | None) -> Encoder:
    arch, _, seed_text = spec.partition("@")
    seed = int(seed_text) if seed_text else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone, dim, size, mean, std = _build_arch(arch)
    size = input_size or size
    _check_size(arch, size)
    name = f"random:{arch}" + (f"@{seed}" if seed_text else "")
    return _frozen(name, backbone, dim, size, mean, std, f"random-{arch}-{seed}", arch)


def _load_checkpoint(path: str, input_size: int | None, name: str | None = None) -> Encoder:
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise EncoderWeightsMissing(f"encoder checkpoint {str(file)!r} does not exist")
    data = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{file} is not an encoder checkpoint written by `nevis-bench pretrain`")
    backbone, dim, _, _, _ = _build_arch(data["arch"])
    backbone.load_state_dict(data["state_dict"])
    size = input_size or int(data["input_size"])
    return _frozen(
        name or f"file:{file}", backbone, dim, size, tuple(data["mean"]), tuple(data["std"]),
        file_sha256(file), data["arch"],
    )


def _load_torchvision(arch: str, weights: str | None, input_size: int | None) -> Encoder:
    url, expected = torchvision_weights_file(arch)
    file = pathlib.Path(weights).expanduser() if weights else expected
    if not file.is_file():
        raise EncoderWeightsMissing(
            f"ImageNet weights for encoder {arch!r} are not available offline: place the file "
            f"{expected.name!r} (from {url}) at {expected}, or pass its path as weights "
            "(--encoder-weights PATH). nevis-bench never downloads weights."
        )
    data = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return _load_checkpoint(str(file), input_size, name=arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        backbone, dim, size, mean, std = _build_arch(arch)
    # the classifier was removed from the module: drop its weights from the torchvision state dict
    own = backbone.state_dict()
    backbone.load_state_dict({k: v for k, v in data.items() if k in own})
    size = input_size or size
    _check_size(arch, size)
    return _frozen(arch, backbone, dim, size, mean, std, file_sha256(file), arch)


def load_encoder(name: str, weights: str | None = None, input_size: int | None = None) -> Encoder:
    """The frozen encoder called ``name`` (see the module docstring for the names)."""
    if name.startswith("random:"):
        if weights:
            raise ValueError("a random:<arch> encoder takes no weights")
        return _load_random(name[len("random:"):], input_size)
    if name.startswith("file:"):
        return _load_checkpoint(name[len("file:"):], input_size)
    if name in TORCHVISION_ENCODERS:
        return _load_torchvision(name, weights, input_size)
    if name in BACKBONES:
        if not weights:
            raise EncoderWeightsMissing(
                f"encoder {name!r} is a project backbone: give a checkpoint from `nevis-bench pretrain` "
                f"(weights=PATH / --encoder-weights PATH, or name file:PATH), or use random:{name}"
            )
        return _load_checkpoint(weights, input_size, name=name)
    raise ValueError(
        f"unknown encoder {name!r}; choose one of {', '.join(sorted(ENCODERS))}, random:<arch> or file:<path>"
    )


ENCODERS: dict[str, Callable[..., Encoder]] = {
    **{name: (lambda weights=None, input_size=None, _n=name: load_encoder(_n, weights, input_size))
       for name in TORCHVISION_ENCODERS},
    **{f"random:{arch}": (lambda weights=None, input_size=None, _a=arch: load_encoder(f"random:{_a}", None, input_size))
       for arch in sorted(set(BACKBONES) | set(TORCHVISION_ENCODERS) | {"tiny_resnet"})},
}


def save_encoder_checkpoint(path: str | os.PathLike, arch: str, backbone: nn.Module, input_size: int,
                            mean=PLAIN_MEAN, std=PLAIN_STD, extra: dict | None = None) -> None:
    """Write a checkpoint that :func:`load_encoder` reads (``file:PATH``); atomic."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": CHECKPOINT_FORMAT, "arch": arch, "input_size": int(input_size),
        "mean": list(mean), "std": list(std),
        "state_dict": {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()},
        "info": dict(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(data, tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- features


def preprocessing_key(encoder: Encoder) -> str:
    return f"center_square_resize{encoder.input_size}-bilinear-antialias"


@torch.no_grad()
def features_of(encoder: Encoder, images: np.ndarray, device=None, batch_size: int = 256) -> torch.Tensor:
    """Features (N, D) float32 CPU of uint8 NHWC images with the evaluation preprocessing (no cache)."""
    device = device or torch.device("cpu")
    module = encoder.module.to(device).eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = center_square_resize(to_model_input(np.asarray(images[start:start + batch_size])), encoder.input_size)
        out.append(module(x.to(device)).float().cpu())
    if not out:
        return torch.zeros(0, encoder.feature_dim)
    return torch.cat(out)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


def _split_identity(split, ctx) -> tuple[str, str, object]:
    """(task folder, split name, SplitData) for ``(task_key, split_name)`` or a SplitData."""
    if isinstance(split, tuple):
        task_key, split_name = split
        folder = ctx.data.cache_folder(task_key)
        return f"{_safe(task_key)}/{folder}", split_name, ctx.data.split(task_key, split_name)
    digest = hashlib.sha256()
    if split.labelled:
        labels = np.ascontiguousarray(split.labels)
        digest.update(str(labels.shape).encode() + labels.tobytes())
    images = split.images
    digest.update(str(images.shape).encode())
    flat = np.ascontiguousarray(images).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, 1 << 24):
        digest.update(flat[start:start + (1 << 24)])
    return "by-content", digest.hexdigest()[:24], split


def features_dir(ctx) -> pathlib.Path:
    return ctx.data.features_root


def encode(encoder: Encoder, split, ctx, batch_size: int = 256) -> tuple[torch.Tensor, float]:
    """Features of a split and the encoder FLOPs charged for them.

    ``split``: ``(task_key, split_name)`` (cached under the task's cache fingerprint) or a
    ``SplitData`` (cached under a hash of its content). Returns ``(features float32 (N, D), flops)``;
    ``flops`` is the forward cost of every image (counted with ``ctx.flops.forward_examples``),
    charged whether or not the features came from the cache.
    """
    folder, split_name, data = _split_identity(split, ctx)
    n = len(data)
    flops = float(ctx.flops.forward_examples(
        encoder.module, (3, encoder.input_size, encoder.input_size), n, batch_size
    )) if n else 0.0
    file = (features_dir(ctx) / _safe(encoder.name) / encoder.weights_hash[:24] / folder
            / f"{_safe(split_name)}-{preprocessing_key(encoder)}-v{FEATURES_FORMAT}.npy")
    if file.exists():
        try:
            array = np.load(file)
            if array.shape == (n, encoder.feature_dim):
                return torch.from_numpy(array.astype(np.float32, copy=False)), flops
        except (OSError, ValueError):
            pass  # unreadable: recompute and overwrite
    features = features_of(encoder, data.images if n else np.zeros((0, 1, 1, 3), np.uint8), ctx.device, batch_size)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp.npy")
    os.close(fd)
    np.save(tmp, features.numpy())
    os.replace(tmp, file)
    return features, flops
