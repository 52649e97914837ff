"""Procedural image generators for the synthetic NEVIS stand-in tasks.

:func:`generate_task` turns a dataset's facts (``streams/catalog.py``: family, style, channels, kind)
into the four stored splits. Every family keeps a FAMILY-level bank derived from the data seed alone
(glyph prototypes, texture parameters, object body plans, 3-D objects, identities, scene layouts,
lesion types, tissue types), and a task picks classes from that bank and a rendering style from its
key, so tasks of one family share structure and transfer between them is real:

=============  =====================================================================================
family         classes / bank
=============  =====================================================================================
ocr            characters rendered from matplotlib's TTF fonts (digits, letters, alphanumerics,
               symbols, random stroke glyphs); MNIST-like tasks use scikit-learn's real digits
texture        oriented gratings, band-pass noise, lattices, dot fields and scikit-image materials
shape          part-based silhouettes, sketches (outlines), traffic-sign-like boards, garments
object         part-composed objects (body plan x colours / patterns) on backgrounds
viewpoint      ray-cast 3-D objects made of ellipsoids on a turntable; splits use disjoint angles
face           identities with fixed geometry; pose, lighting and expression vary per image
scene          layouts: horizon, sky / ground, buildings, trees, mountains, water, rooms
xray           chest / mammography-like grey images, class = lesion type; ``volcano``: radar spots
medical        colour tissue patches (H&E-like) and skin lesions
counting       how many objects (cars, people, heads), bucketed into the classes
quality        distortion level (blur, noise, block artefacts, ...) of reference images
multi_label    which bank objects / face attributes / x-ray findings are present (multi-hot)
=============  =====================================================================================

Output is deterministic: the same arguments give byte-identical arrays in any process.
Bump :data:`GENERATOR_VERSION` whenever the bytes for some arguments change.
"""

from __future__ import annotations

import importlib

import numpy as np

from nevis_bench.protocol import MULTI_LABEL, SINGLE_LABEL

from ._core import CHUNK, SPLITS, balanced_labels, make_rng, to_uint8

GENERATOR_VERSION = 2

_FAMILY_MODULES = {
    "ocr": "_ocr",
    "texture": "_texture",
    "shape": "_shapes",
    "object": "_objects",
    "viewpoint": "_viewpoint",
    "face": "_faces",
    "scene": "_scenes",
    "xray": "_xray",
    "medical": "_medical",
    "counting": "_counting",
    "quality": "_quality",
    "multi_label": "_multilabel",
}
FAMILIES = tuple(_FAMILY_MODULES)


def _family_module(family: str):
    try:
        name = _FAMILY_MODULES[family]
    except KeyError:
        raise ValueError(f"unknown synthetic generator family {family!r}; known: {', '.join(FAMILIES)}") from None
    return importlib.import_module(f"{__package__}.{name}")


def make_family_task(facts, num_classes: int, image_size: int, seed: int = 0):
    """The family's task object (bank subset and rendering style) for ``facts``."""
    return _family_module(facts.family).make_task(facts, num_classes, image_size, seed)


def generate_task(facts, num_classes: int, sizes: dict, image_size: int, seed: int = 0) -> dict:
    """Generate the four splits of a synthetic task.

    Returns ``{"train": (images, labels), "dev": ..., "dev_test": ..., "test": ...}`` where images are
    uint8 (N, image_size, image_size, facts.channels) and labels are int64 (N,) in [0, num_classes)
    for single-label tasks or float32 (N, num_classes) multi-hot with at least one positive for
    multi-label tasks. ``sizes[split]`` gives N per split.
    """
    if facts.channels not in (1, 3):
        raise ValueError(f"{facts.key}: channels must be 1 or 3, not {facts.channels}")
    if facts.kind not in (SINGLE_LABEL, MULTI_LABEL):
        raise ValueError(f"{facts.key}: unknown task kind {facts.kind!r}")
    if num_classes < 1 or image_size < 8:
        raise ValueError(f"{facts.key}: need num_classes >= 1 and image_size >= 8")
    task = make_family_task(facts, num_classes, image_size, seed)
    multi = facts.kind == MULTI_LABEL
    if multi and not hasattr(task, "sample_labels"):
        raise ValueError(f"{facts.key}: family {facts.family!r} cannot make multi-label tasks")
    out = {}
    for split in SPLITS:
        n = int(sizes[split])
        rng = make_rng("split", seed, facts.key, facts.family, facts.style, num_classes, split)
        if multi:
            labels = task.sample_labels(rng, n)
        elif hasattr(task, "sample_labels"):
            labels = task.sample_labels(rng, n)
        else:
            labels = balanced_labels(rng, num_classes, n)
        extras = task.split_extras(split, n) if hasattr(task, "split_extras") else {}
        images = np.empty((n, image_size, image_size, facts.channels), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            chunk = {k: v[start : start + CHUNK] for k, v in extras.items()}
            part = task.render(labels[start : start + CHUNK], rng, split, **chunk)
            images[start : start + CHUNK] = to_uint8(part)
        labels = labels.astype(np.float32) if multi else labels.astype(np.int64)
        out[split] = (images, labels)
    return out


def viewpoint_angles(facts, num_classes: int, sizes: dict, image_size: int, seed: int = 0) -> dict:
    """The viewing angles (degrees) used for each split of a ``viewpoint`` task, as generated."""
    if facts.family != "viewpoint":
        raise ValueError(f"{facts.key} is not a viewpoint task")
    task = make_family_task(facts, num_classes, image_size, seed)
    return {split: task.split_extras(split, int(sizes[split]))["angle"] for split in SPLITS}
