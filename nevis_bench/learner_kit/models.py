"""Backbones and heads that the baseline learners build on.

Every backbone maps a float image batch ``(B, 3, S, S)`` in [-1, 1] to features ``(B, feature_dim)``.

* ``small_convnet``: 4 conv blocks (32-64-128-256, batch norm, ReLU, max-pool) + global mean pool;
  0.39 M parameters; the CPU default.
* ``cifar_resnet18`` / ``cifar_resnet34``: the reference's CIFAR-style ResNets (3x3 stride-1 stem,
  no max-pool, basic blocks 2-2-2-2 / 3-4-6-3, widths 64-512, global mean pool), built from
  torchvision's ResNet with the stem replaced. GPU models (the reference trains ResNet34 at 64x64).
* ``resnet18``: torchvision's ResNet18 as is (7x7/2 stem + max-pool).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nevis_bench.learner_kit._torchvision_compat import ensure_torchvision


class SmallConvNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.feature_dim = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def _torchvision_resnet(depth: int, cifar_stem: bool) -> nn.Module:
    torchvision = ensure_torchvision()
    model = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34}[depth](weights=None)
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model


BACKBONES: dict[str, Callable[[], nn.Module]] = {
    "small_convnet": SmallConvNet,
    "cifar_resnet18": lambda: _torchvision_resnet(18, cifar_stem=True),
    "cifar_resnet34": lambda: _torchvision_resnet(34, cifar_stem=True),
    "resnet18": lambda: _torchvision_resnet(18, cifar_stem=False),
}


def make_backbone(name: str) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]()


class Classifier(nn.Module):
    """A backbone and one linear head; what a train step optimises."""

    def __init__(self, backbone: nn.Module, head: nn.Linear):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


# Batch-norm statistics and counters are stored state, not parameters (they count in ``state_bytes``).
_NOT_PARAMETERS = ("running_mean", "running_var", "num_batches_tracked")


def _held(item) -> tuple[int, int]:
    if item is None:
        return 0, 0
    if isinstance(item, nn.Module):
        return parameter_count(item), parameter_bytes(item)
    if isinstance(item, torch.Tensor):
        return item.numel(), item.numel() * item.element_size()
    if isinstance(item, dict):
        count = size = 0
        for key, value in item.items():
            if isinstance(key, str) and key.rsplit(".", 1)[-1] in _NOT_PARAMETERS:
                continue
            c, b = _held(value)
            count, size = count + c, size + b
        return count, size
    if isinstance(item, (list, tuple)):
        pairs = [_held(v) for v in item]
        return sum(c for c, _ in pairs), sum(b for _, b in pairs)
    return 0, 0


def parameter_usage(*held) -> dict[str, int]:
    """``peak_parameter_count`` / ``peak_parameter_bytes`` of everything a learner holds after an event.

    The one definition every learner reports by: every parameter of every model it keeps, model zoos
    included (one model per task, stored trials, teachers it holds, frozen encoders, stored reference
    features of a kNN). ``held``: modules, state dicts (nested dicts/lists of them) or tensors;
    batch-norm running statistics are not parameters. Everything stored, buffers included, is
    measured separately by the harness as ``state_bytes``.
    """
    count, size = _held(list(held))
    return {"peak_parameter_count": int(count), "peak_parameter_bytes": int(size)}
