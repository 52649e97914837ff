"""Family ``quality``: the distortion level of a reference image, bucketed into the task's classes.

As in TID2008 / TID2013, a small family-level set of reference images (crops of scikit-image's
bundled photographs and rendered scenes) is distorted by one of several distortion types (additive
noise, blur, block artefacts, contrast loss, colour quantisation, brightness shift; TID2013 adds
saturation loss and structured noise) at a strength that the class sets: class 0 is the mildest,
the last class the strongest. Both tasks share the references and the distortion types.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._core import F32, band_noise, blur, col, make_rng, skimage_image, to_channels

REFERENCES = 24
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "motorcycle_left.png")
TYPES = {
    "tid2008": ("noise", "blur", "blocks", "contrast", "quantise", "brightness"),
    "tid2013": ("noise", "blur", "blocks", "contrast", "quantise", "brightness", "saturation", "pattern"),
}


@functools.lru_cache(maxsize=8)
def references(seed: int, size: int) -> np.ndarray:
    rng = make_rng("quality-references", seed)
    out = []
    for r in range(REFERENCES):
        if r % 4 == 3:  # a rendered scene
            from ._scenes import BANK, render_scenes, scene_bank

            b = scene_bank(seed)
            k = int(rng.integers(0, BANK))
            out.append(render_scenes({key: v[[k]] for key, v in b.items()}, rng, size)[0])
            continue
        img = skimage_image(PHOTOS[r % len(PHOTOS)])
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.35, 0.7))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = (img[y0 : y0 + side, x0 : x0 + side] * 255).astype(np.uint8)
        if crop.shape[-1] == 1:
            crop = np.repeat(crop, 3, axis=-1)
        small = Image.fromarray(crop).resize((size, size), Image.Resampling.BOX)
        out.append(np.asarray(small, dtype=F32) / 255.0)
    arr = np.stack(out).astype(F32)
    arr.setflags(write=False)
    return arr


def distort(img: np.ndarray, kind: str, s: np.ndarray, rng) -> np.ndarray:
    n, size = img.shape[0], img.shape[1]
    sc = col(s)[..., None]
    if kind == "noise":
        return img + rng.normal(0, 1, img.shape).astype(F32) * (F32(0.02) + F32(0.2) * sc)
    if kind == "blur":
        return blur(img, (0.3 + 2.2 * s) * size / 32.0)
    if kind == "blocks":
        b = max(2, size // 8)
        m = size // b
        blocks = img[:, : m * b, : m * b].reshape(n, m, b, m, b, 3).mean(axis=(2, 4))
        up = np.repeat(np.repeat(blocks, b, axis=1), b, axis=2)
        out = img.copy()
        out[:, : m * b, : m * b] = img[:, : m * b, : m * b] * (1 - sc) + up * sc
        return out
    if kind == "contrast":
        mean = img.mean(axis=(1, 2, 3), keepdims=True)
        return mean + (img - mean) * (F32(1.0) - F32(0.85) * sc)
    if kind == "quantise":
        levels = col(np.round(2 + 30 * (1 - s) ** 2))[..., None]
        return np.round(img * levels) / levels
    if kind == "brightness":
        sign = col(np.where(rng.random(n) < 0.5, -1.0, 1.0))[..., None]
        return img + sign * F32(0.4) * sc
    if kind == "saturation":
        grey = img.mean(axis=-1, keepdims=True)
        return img + (grey - img) * sc
    # structured (pattern) noise
    pat = band_noise(rng, n, size, 8.0, 0.3, rng.uniform(0, np.pi, n), 0.2)[..., None]
    return img + pat * F32(0.25) * sc


@dataclass
class QualityTask:
    image_size: int
    channels: int
    seed: int
    num_classes: int
    types: tuple

    def render(self, labels, rng, split, **_):
        n = len(labels)
        refs = references(self.seed, self.image_size)
        img = refs[rng.integers(0, REFERENCES, n)].copy()
        strength = (labels + rng.uniform(0.15, 0.85, n)) / self.num_classes
        kinds = rng.integers(0, len(self.types), n)
        for k, name in enumerate(self.types):
            m = np.nonzero(kinds == k)[0]
            if len(m):
                img[m] = distort(img[m], name, strength[m], rng)
        img += rng.normal(0, 0.01, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1).astype(F32), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> QualityTask:
    return QualityTask(image_size, facts.channels, seed, num_classes, TYPES.get(facts.key, TYPES["tid2013"]))
