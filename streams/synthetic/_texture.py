"""Family ``texture``: procedural textures from a family-level parameter bank.

Every bank entry is one texture class: a kind (oriented grating, oriented band-pass noise, lattice,
blob / dot field, or a real material from scikit-image's bundled ``grass``, ``gravel``, ``brick`` and
``moon`` images), a scale (cycles per image), orientation and bandwidth, a point nonlinearity
(ridges, thresholds, square waves) and a two-colour palette. Tasks pick classes from the bank (their
subsets overlap) and apply a task-level zoom. Per image the phase / noise draw, crop position,
orientation and frequency jitter, contrast, brightness and pixel noise vary, so raw pixels only see
the mean colour; telling textures apart needs local filters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._core import F32, Sprites, affine, band_noise, col, hsv_to_rgb, make_rng, skimage_image, to_channels

BANK = 256
KINDS = ("grating", "noise", "lattice", "blobs", "material")
MATERIALS = ("grass.png", "gravel.png", "brick.png", "moon.png")
PARENT = {"kth_tips2_a": "kth_tips2_b", "kth_tips": "kth_tips2_b", "uiuc_texture": "umd"}
LAND = ((0.28, 0.55, 0.45), (0.22, 0.6, 0.3), (0.1, 0.5, 0.55), (0.08, 0.35, 0.65), (0.6, 0.5, 0.45),
        (0.0, 0.0, 0.55), (0.12, 0.25, 0.8), (0.33, 0.4, 0.25))  # hsv: fields, forest, soil, sand, water, urban, ...


@functools.lru_cache(maxsize=4)
def texture_bank(seed: int) -> dict:
    rng = make_rng("texture-bank", seed)
    n = BANK
    kind = np.arange(n) % len(KINDS)
    c0 = hsv_to_rgb(rng.random(n), rng.uniform(0.1, 0.8, n), rng.uniform(0.05, 0.55, n))
    c1 = hsv_to_rgb(rng.random(n), rng.uniform(0.05, 0.7, n), rng.uniform(0.5, 1.0, n))
    return {
        "kind": kind,
        "freq": np.exp(rng.uniform(np.log(2.0), np.log(11.0), n)),
        "theta": rng.uniform(0, np.pi, n),
        "theta_bw": np.where(rng.random(n) < 0.35, 10.0, rng.uniform(0.12, 0.5, n)),
        "bw": rng.uniform(0.2, 0.6, n),
        "lattice": rng.choice([np.pi / 2, np.pi / 3, np.pi / 4], n),
        "nonlin": rng.integers(0, 4, n),
        "thresh": rng.uniform(-0.6, 0.6, n),
        "contrast": rng.uniform(0.18, 0.35, n),
        "material": rng.integers(0, len(MATERIALS), n),
        "zoom": np.exp(rng.uniform(np.log(0.12), np.log(0.45), n)),
        "c0": c0,
        "c1": c1,
        "land": rng.integers(0, len(LAND), (n, 2)),
    }


@functools.lru_cache(maxsize=2)
def material_sprites(size: int = 256) -> Sprites:
    imgs = []
    for name in MATERIALS:
        im = skimage_image(name)[..., 0]
        arr = np.asarray(Image.fromarray((im * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BOX), dtype=F32) / 255.0
        arr = (arr - arr.mean()) / (arr.std() + 1e-6)
        imgs.append(arr)
    return Sprites(np.stack(imgs)[..., None], fill=0.0)


def render_textures(params: dict, cls: np.ndarray, rng, size: int, zoom: float = 1.0, landcover: bool = False):
    """Grey texture fields in [0, 1] (N, S, S) and their palettes (N, 2, 3) for bank classes ``cls``."""
    n = len(cls)
    p = {k: v[cls] for k, v in params.items()}
    freq = p["freq"] * zoom * np.exp(rng.normal(0, 0.07, n))
    if landcover:
        freq = freq * 0.45
    freq = np.minimum(freq, 0.42 * size)
    theta = p["theta"] + rng.normal(0, 0.1, n)
    field = np.empty((n, size, size), dtype=F32)
    from ._core import grid

    yy, xx = grid(size)
    for k, name in enumerate(KINDS):
        m = np.nonzero(p["kind"] == k)[0]
        if len(m) == 0:
            continue
        f, th = freq[m], theta[m]
        if name == "grating":
            t = col(np.cos(th)) * xx + col(np.sin(th)) * yy
            g = np.sin(np.pi * col(f) * t + col(rng.uniform(0, 2 * np.pi, len(m))))
            g = g + F32(0.35) * band_noise(rng, len(m), size, f, 0.35)
        elif name == "noise":
            g = band_noise(rng, len(m), size, f, p["bw"][m], th, p["theta_bw"][m])
        elif name == "lattice":
            t1 = col(np.cos(th)) * xx + col(np.sin(th)) * yy
            t2 = col(np.cos(th + p["lattice"][m])) * xx + col(np.sin(th + p["lattice"][m])) * yy
            ph = rng.uniform(0, 2 * np.pi, (2, len(m)))
            g = np.cos(np.pi * col(f) * t1 + col(ph[0])) + np.cos(np.pi * col(f) * t2 + col(ph[1]))
            g = g + F32(0.3) * band_noise(rng, len(m), size, f, 0.4)
        elif name == "blobs":
            g = band_noise(rng, len(m), size, f, 0.3)
        else:
            spr = material_sprites()
            z = p["zoom"][m] * np.exp(rng.normal(0, 0.08, len(m))) / zoom
            lim = np.maximum(1.0 - z, 0.0)
            a = affine(th, 1.0 / z, 0.0, 0.0)
            # source = inverse(out); then translate inside the material image
            a[:, 0, 2] = rng.uniform(-1, 1, len(m)) * lim
            a[:, 1, 2] = rng.uniform(-1, 1, len(m)) * lim
            g = spr.sample(p["material"][m], a, size)[..., 0]
        g = g - g.mean(axis=(1, 2), keepdims=True)
        g = g / (g.std(axis=(1, 2), keepdims=True) + F32(1e-6))
        field[m] = g
    nl = p["nonlin"]
    thr = col(p["thresh"])
    field = np.where(col(nl == 1), F32(1.6) * (np.abs(field) - F32(0.8)),
                     np.where(col(nl == 2), F32(2.0) * np.tanh(F32(3.0) * (field - thr)),
                              np.where(col(nl == 3), F32(1.5) * np.tanh(F32(2.0) * field), field)))
    contrast = p["contrast"] * rng.uniform(0.8, 1.2, n)
    v = np.clip(F32(0.5) + col(contrast) * field + col(rng.normal(0, 0.04, n)), 0, 1)
    if landcover:
        land = np.asarray(LAND, dtype=F32)
        c0 = hsv_to_rgb(land[p["land"][:, 0], 0], land[p["land"][:, 0], 1], land[p["land"][:, 0], 2])
        c1 = hsv_to_rgb(land[p["land"][:, 1], 0], land[p["land"][:, 1], 1] * 0.8, np.minimum(land[p["land"][:, 1], 2] * 1.3, 1))
        pal = np.stack([c0, c1], axis=1)
    else:
        pal = np.stack([p["c0"], p["c1"]], axis=1)
        # colour is only a weak cue: a third of the images take another bank texture's palette
        other = rng.integers(0, len(params["c0"]), n)
        swap = (rng.random(n) < 0.35)[:, None, None]
        pal = np.where(swap, np.stack([params["c0"][other], params["c1"][other]], axis=1), pal)
    return v, pal.astype(F32)


@dataclass
class TextureTask:
    image_size: int
    channels: int
    classes: np.ndarray
    zoom: float
    landcover: bool
    seed: int

    def render(self, labels, rng, split, **_):
        n, s = len(labels), self.image_size
        v, pal = render_textures(texture_bank(self.seed), self.classes[labels], rng, s, self.zoom, self.landcover)
        pal = pal * rng.normal(1.0, 0.05, (n, 1, 3)).astype(F32)
        img = pal[:, None, None, 0] + (pal[:, None, None, 1] - pal[:, None, None, 0]) * v[..., None]
        img = img + rng.normal(0, 0.02, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def bank_classes(seed: int, key: str, num_classes: int) -> np.ndarray:
    parent = PARENT.get(key, key)
    return make_rng("texture-classes", seed, parent).permutation(BANK)[:num_classes] if num_classes <= BANK else np.arange(num_classes) % BANK


def make_task(facts, num_classes: int, image_size: int, seed: int) -> TextureTask:
    rng = make_rng("texture-style", seed, facts.key)
    return TextureTask(
        image_size, facts.channels, bank_classes(seed, facts.key, num_classes),
        float(np.exp(rng.uniform(-0.2, 0.2))), facts.style == "landcover", seed,
    )
