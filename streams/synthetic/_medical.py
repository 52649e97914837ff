"""Family ``medical``: colour tissue patches (H&E-like histology) and dermoscopy-like skin lesions.

Tissue: a family-level bank of tissue types, each a mixture of eosin-pink stroma with oriented
fibres, haematoxylin-purple nuclei (density, size, clustering), fat cells (white cells with thin
membranes), mucus (pale blue), lumina (white holes) and debris; stain colours vary per image (the
usual H&E batch variation). Skin: a bank of lesion types on skin-tone backgrounds (size, border
irregularity, colour variegation, texture); the melanoma task uses nevus / melanoma / keratosis-like
types. Tasks pick types from the banks, so tissue tasks share their cell and stroma textures.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._core import F32, band_noise, col, grid, hsv_to_rgb, lowpass_noise, make_rng, to_channels

TISSUE_BANK = 32
SKIN_BANK = 16


@functools.lru_cache(maxsize=4)
def tissue_bank(seed: int) -> dict:
    rng = make_rng("tissue-bank", seed)
    n = TISSUE_BANK
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    on = lambda p: (rng.random(n) < p).astype(np.float64)  # noqa: E731
    return {
        "stroma": u(0.3, 1.0), "fibre": u(0.0, 0.5) * on(0.6), "fibre_f": u(5.0, 12.0), "fibre_bw": u(0.2, 0.8),
        "nuc_q": u(0.4, 2.2), "nuc_f": u(7.0, 14.0), "nuc_cluster": u(0.0, 1.0), "nuc_dark": u(0.5, 1.0),
        "fat": u(0.5, 1.0) * on(0.2), "fat_f": u(3.0, 6.0), "mucus": u(0.4, 1.0) * on(0.15),
        "lumen": u(0.3, 1.0) * on(0.3), "debris": u(0.3, 1.0) * on(0.2), "pale": u(0.0, 0.4),
    }


def render_tissue(p: dict, rng, size: int) -> np.ndarray:
    n = len(p["stroma"])
    eosin = hsv_to_rgb(rng.normal(0.93, 0.02, n), rng.uniform(0.3, 0.55, n), rng.uniform(0.8, 0.95, n))[:, None, None]
    haem = hsv_to_rgb(rng.normal(0.75, 0.03, n), rng.uniform(0.4, 0.7, n), rng.uniform(0.3, 0.5, n))[:, None, None]
    white = np.full((n, 1, 1, 3), 0.95, F32)
    fibres = band_noise(rng, n, size, p["fibre_f"], 0.4, rng.uniform(0, np.pi, n), p["fibre_bw"])
    base = 1.0 - col(p["pale"]) * 0.5 + col(p["fibre"]) * 0.5 * fibres
    img = white + (eosin - white) * (col(p["stroma"]) * np.clip(base, 0, 1.3))[..., None]
    if (p["fat"] > 0).any():
        cells = band_noise(rng, n, size, p["fat_f"], 0.35)
        membrane = np.clip(1.0 - np.abs(cells) * 4.0, 0, 1)
        fat = col(p["fat"])[..., None]
        img = img * (1 - fat) + (white * (1 - membrane[..., None]) + eosin * membrane[..., None]) * fat
    if (p["mucus"] > 0).any():
        muc = np.clip(0.5 + 0.5 * lowpass_noise(rng, n, size, 3.0), 0, 1)[..., None] * col(p["mucus"])[..., None]
        img = img * (1 - muc) + np.asarray([0.75, 0.8, 0.9], F32) * muc
    if (p["lumen"] > 0).any():
        hole = np.clip((lowpass_noise(rng, n, size, 2.5) - 0.8) * 4.0, 0, 1)[..., None] * col(p["lumen"])[..., None]
        img = img * (1 - hole) + white * hole
    # nuclei: thresholded blob noise, optionally clustered by a low-frequency envelope
    z = band_noise(rng, n, size, np.minimum(p["nuc_f"], 0.42 * size), 0.3)
    env = lowpass_noise(rng, n, size, 2.0)
    z = z + col(p["nuc_cluster"]) * env
    nuc = np.clip((z - col(p["nuc_q"])) * 3.0, 0, 1)[..., None] * col(p["nuc_dark"])[..., None]
    img = img * (1 - nuc) + haem * nuc
    if (p["debris"] > 0).any():
        deb = (rng.random((n, size, size)) < 0.04).astype(F32)[..., None] * col(p["debris"])[..., None]
        img = img * (1 - deb * 0.6) + haem * deb * 0.6
    return img


@functools.lru_cache(maxsize=4)
def skin_bank(seed: int) -> dict:
    rng = make_rng("skin-bank", seed)
    n = SKIN_BANK
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    b = {
        "radius": u(0.2, 0.6), "irregular": u(0.0, 0.35), "variegate": u(0.0, 0.8), "dark": u(0.15, 0.6),
        "hue": u(0.02, 0.1), "blue": u(0.0, 0.5) * (rng.random(n) < 0.4), "texture": u(0.0, 0.4), "edge": u(1.0, 6.0),
    }
    # the first three: nevus (small, round, uniform), melanoma (large, irregular, variegated, blue-grey),
    # seborrheic keratosis (light, waxy, textured, sharp border)
    for k, v in {"radius": (0.3, 0.5, 0.38), "irregular": (0.04, 0.3, 0.1), "variegate": (0.1, 0.8, 0.2),
                 "dark": (0.3, 0.2, 0.55), "blue": (0.0, 0.4, 0.0), "texture": (0.05, 0.15, 0.45), "edge": (3.0, 1.5, 1.0)}.items():
        b[k][:3] = v
    return b


def render_skin(p: dict, rng, size: int) -> np.ndarray:
    n = len(p["radius"])
    yy, xx = grid(size)
    skin = hsv_to_rgb(rng.uniform(0.03, 0.08, n), rng.uniform(0.2, 0.5, n), rng.uniform(0.6, 0.95, n))[:, None, None]
    img = skin * (1 + 0.05 * lowpass_noise(rng, n, size, 6.0))[..., None]
    cx, cy = rng.normal(0, 0.08, (2, n))
    dx, dy = xx[None] - col(cx), yy[None] - col(cy)
    th = np.arctan2(dy, dx)
    rr = np.sqrt(dx**2 + dy**2)
    radius = p["radius"] * rng.uniform(0.65, 1.35, n)
    bound = np.ones_like(th)
    for k in range(2, 7):
        bound = bound + col(p["irregular"] * rng.normal(0, 1, n) / k**0.5) * np.cos(k * th + col(rng.uniform(0, 6.3, n)))
    d = rr / (col(radius) * np.maximum(bound, 0.3)) - 1.0
    m = np.clip(-d * col(p["edge"]) * size / 8.0, 0, 1)[..., None]
    dark = np.clip(p["dark"] * rng.uniform(0.6, 1.4, n), 0, 0.85)
    lesion = hsv_to_rgb(col(p["hue"] + rng.normal(0, 0.02, n)), col(rng.uniform(0.45, 0.75, n)), 1.0) * (1 - col(dark))[..., None]
    var = lowpass_noise(rng, n, size, 4.0)[..., None]
    lesion = lesion * (1 + col(p["variegate"])[..., None] * 0.5 * var)
    blue = np.clip(var, 0, 1) * col(p["blue"])[..., None]
    lesion = lesion * (1 - blue) + np.asarray([0.35, 0.4, 0.5], F32) * blue
    tex = band_noise(rng, n, size, 10.0, 0.5)[..., None] * col(p["texture"])[..., None]
    lesion = lesion * (1 + tex)
    img = img * (1 - m) + lesion * m
    # a few hairs
    for _ in range(3):
        a = rng.uniform(0, np.pi, n)
        off = rng.uniform(-1, 1, n)
        line = np.abs(np.cos(col(a)) * yy[None] - np.sin(col(a)) * xx[None] - col(off))
        hair = np.clip(1.0 - line * size / 1.2, 0, 1) * col(rng.random(n) < 0.4)
        img = img * (1 - 0.7 * hair[..., None])
    return img


@dataclass
class MedicalTask:
    image_size: int
    channels: int
    seed: int
    skin: bool
    params: dict  # per class parameter arrays

    def render(self, labels, rng, split, **_):
        n = len(labels)
        if self.skin:
            img = render_skin({k: v[labels] for k, v in self.params.items()}, rng, self.image_size)
        else:
            p = {k: v[labels] * (rng.normal(1.0, 0.15, n) if k not in ("fat", "mucus", "lumen", "debris") else 1.0) for k, v in self.params.items()}
            img = render_tissue(p, rng, self.image_size)
        img = img * rng.normal(1.0, 0.06, (n, 1, 1, 3)).astype(F32)
        img = img + rng.normal(0, 0.02, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1).astype(F32), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> MedicalTask:
    skin = facts.style == "skin"
    size = SKIN_BANK if skin else TISSUE_BANK
    if skin:
        order = np.concatenate([np.arange(3), 3 + make_rng("skin-classes", seed, facts.key).permutation(size - 3)])
    else:
        order = make_rng("tissue-classes", seed, facts.key).permutation(size)
    classes = order[np.arange(num_classes) % size]
    bank = skin_bank(seed) if skin else tissue_bank(seed)
    params = {k: np.array(v[classes]) for k, v in bank.items()}
    if facts.key == "patchcamelyon" and num_classes >= 2:  # tumour: the same tissue with dense, large, dark nuclei
        for k in params:
            params[k][1] = params[k][0]
        params["nuc_q"][1] = params["nuc_q"][0] - 0.5
        params["nuc_f"][1] = params["nuc_f"][0] * 0.8
        params["nuc_cluster"][1] = min(params["nuc_cluster"][0] + 0.4, 1.2)
    return MedicalTask(image_size, facts.channels, seed, skin, params)
