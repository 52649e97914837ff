"""Make ``import torchvision`` work with the CPU build of torch.

PyPI's torchvision 0.28.0 wheel is linked against the CUDA build of torch. With the CPU build its C
extension does not load, and the Python package then fails at import time with
``RuntimeError: operator torchvision::nms does not exist``, because ``torchvision.ops`` registers
fake (meta) kernels for operators whose schemas the extension would have defined.

:func:`ensure_torchvision` defines the schemas of the two operators that torchvision touches at
import time (``nms`` and ``qnms``) with ``torch.library`` and gives ``nms`` a small pure-torch CPU
kernel, then imports torchvision. Models, ``transforms.v2`` and most ops work afterwards;
``torchvision.io`` image decoding and a few C++ ops (roi_pool, deform_conv2d) stay unavailable, so
this project decodes images with PIL.

When torchvision's own extension loads (a CUDA torch with its matching torchvision, or a CPU
torchvision build), the schemas already exist and this module changes nothing.
"""

from __future__ import annotations

import importlib.util
import os

import torch

_LIBRARY = None  # keeps the torch.library.Library alive for the life of the process


def _extension_loads() -> bool:
    """True when torchvision's compiled extension can be loaded by torch."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.startswith("_C") and name.endswith((".so", ".pyd")):
                try:
                    torch.ops.load_library(os.path.join(folder, name))
                    return True
                except OSError:
                    return False
    return False


def _nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of kept boxes in decreasing score order."""
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def _define_missing_operators() -> None:
    global _LIBRARY
    if _LIBRARY is not None:
        return
    try:
        torch.ops.torchvision.nms.default  # noqa: B018 - probing whether the schema exists
        return
    except (AttributeError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define(
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
    )
    library.impl("nms", _nms_cpu, "CPU")
    _LIBRARY = library


def ensure_torchvision():
    """Import and return torchvision, defining the missing operator schemas first if needed."""
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    if not _extension_loads():
        _define_missing_operators()
    import torchvision

    return torchvision
