"""Family ``viewpoint``: 3-D objects on a turntable, ray-cast per image (COIL / ALOI / NORB-like).

Each bank object is four coloured, striped ellipsoids with random sizes, placements and
orientations, so its silhouette and colours change with the viewing angle. An image is an
orthographic view at azimuth ``angle`` (degrees, rotation about the vertical axis) and a style's
elevation, lit by a directional light. The splits are viewpoint-based as in COIL: within every
``PERIOD`` degrees, train, dev, dev_test and test use disjoint angle ranges (``SPLIT_RANGES``), so
evaluation views are unseen angles between training views.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._core import F32, band_noise, col, grid, hsv_to_rgb, make_rng, to_channels

BANK = 256
PRIMS = 4
PERIOD = 30.0
SPLIT_RANGES = {"train": (0.0, 18.0), "dev": (18.0, 22.0), "dev_test": (22.0, 26.0), "test": (26.0, 30.0)}
PARENT = {"coil20": "coil100"}


def split_of_angle(angle) -> np.ndarray:
    """Which split an azimuth (degrees) belongs to, as an array of split names."""
    r = np.asarray(angle, dtype=np.float64) % PERIOD
    out = np.empty(r.shape, dtype=object)
    for name, (lo, hi) in SPLIT_RANGES.items():
        out[(r >= lo) & (r < hi)] = name
    return out


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@functools.lru_cache(maxsize=4)
def object_bank(seed: int) -> dict:
    """Per object and primitive: centre (3), radii (3), rotation (3, 3), colour (3), stripes."""
    rng = make_rng("viewpoint-bank", seed)
    radii = np.exp(rng.uniform(np.log(0.1), np.log(0.36), (BANK, PRIMS, 3)))
    radii[:, 0] = np.exp(rng.uniform(np.log(0.18), np.log(0.45), (BANK, 3)))  # a main body at the centre
    d = rng.normal(0, 1, (BANK, PRIMS, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    centres = d * (radii[:, :1].mean(-1, keepdims=True) * rng.uniform(0.8, 1.4, (BANK, PRIMS, 1)))
    centres[:, 0] = 0.0
    rots = np.stack([[_rotation(rng) for _ in range(PRIMS)] for _ in range(BANK)])
    hue = rng.random(BANK)[:, None] + rng.normal(0, 0.15, (BANK, PRIMS))
    colours = hsv_to_rgb(hue, rng.uniform(0.2, 0.9, (BANK, PRIMS)), rng.uniform(0.45, 1.0, (BANK, PRIMS)))
    stripes = np.where(rng.random((BANK, PRIMS)) < 0.5, rng.uniform(1.5, 4.0, (BANK, PRIMS)), 0.0)
    # fit every object into the unit sphere
    extent = np.max(np.linalg.norm(centres, axis=-1) + radii.max(axis=-1), axis=1)
    s = (0.85 / extent)[:, None, None]
    return {"c": centres * s, "r": radii * s, "q": rots, "rgb": colours, "stripes": stripes}


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def render_views(bank: dict, obj, azimuth_deg, elevation, light, size: int, scale=1.0, shift=(0.0, 0.0)):
    """Ray-cast views: RGB (N, S, S, 3) and coverage (N, S, S) of bank objects ``obj``."""
    n = len(obj)
    yy, xx = grid(size)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))
    u = (xx[None] - col(shift[0])) / col(scale)
    v = (yy[None] - col(shift[1])) / col(scale)
    rmat = _rot_x(np.asarray(elevation, dtype=np.float64)) @ _rot_y(np.deg2rad(azimuth_deg))  # obj -> cam
    rt = np.swapaxes(rmat, -1, -2)  # cam -> obj
    best_t = np.full((n, size, size), np.inf, dtype=F32)
    rgb = np.zeros((n, size, size, 3), dtype=F32)
    alpha = np.zeros((n, size, size), dtype=F32)
    edge = 2.0 * 2.0 / size
    for k in range(PRIMS):
        c = bank["c"][obj, k]
        r = bank["r"][obj, k]
        q = bank["q"][obj, k]
        dq = np.swapaxes(q, -1, -2) / r[..., :, None]  # D Q^T  (n, 3, 3)
        m = dq @ rt  # local <- cam
        a0 = -np.einsum("nij,nj->ni", dq, c)
        au, av, b = m[..., 0], m[..., 1], m[..., 2]
        lk = np.einsum("nij,nj->ni", dq, np.einsum("nij,nj->ni", rt, light))  # light in local (scaled)
        a = [col(a0[:, i]) + col(au[:, i]) * u + col(av[:, i]) * v for i in range(3)]
        bb = F32(1.0) / col((b * b).sum(-1))
        ab = a[0] * col(b[:, 0]) + a[1] * col(b[:, 1]) + a[2] * col(b[:, 2])
        aa = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
        inside = ab * ab * bb - aa + F32(1.0)  # = 1 - distance^2 of the ray from the centre (local)
        t = (-ab - np.sqrt(np.maximum(inside, 0.0) / bb)) * bb
        qh = [a[i] + t * col(b[:, i]) for i in range(3)]
        inv_r = 1.0 / r
        nlen = np.sqrt(sum((qh[i] * col(inv_r[:, i])) ** 2 for i in range(3))) + F32(1e-6)
        lam = np.maximum(sum(qh[i] * col(lk[:, i]) for i in range(3)) / nlen
                         / col(np.linalg.norm(light, axis=-1)), 0.0)
        shade = F32(0.4) + F32(0.7) * lam
        stripes = bank["stripes"][obj, k]
        pat = np.where(col(stripes > 0), F32(0.72) + F32(0.28) * np.sign(np.sin(np.pi * col(stripes) * qh[0] * 2.0)), F32(1.0))
        colour = bank["rgb"][obj, k][:, None, None, :] * (shade * pat)[..., None]
        cov = np.clip(inside / F32(edge / max(1e-3, float(np.median(r)))), 0.0, 1.0)
        front = (t < best_t) & (cov > 0)
        w = np.where(front, cov, 0.0)[..., None]
        rgb = rgb * (1 - w) + colour * w
        alpha = np.maximum(alpha, cov)
        best_t = np.where(front, t, best_t)
    return rgb, alpha


@dataclass
class ViewTask:
    key: str
    image_size: int
    channels: int
    seed: int
    objects: np.ndarray
    style: str

    def split_extras(self, split: str, n: int) -> dict:
        rng = make_rng("viewpoint-angles", self.seed, self.key, split)
        lo, hi = SPLIT_RANGES[split]
        angle = PERIOD * rng.integers(0, int(360 / PERIOD), n) + rng.uniform(lo, hi, n)
        return {"angle": angle}

    def render(self, labels, rng, split, angle=None, **_):
        n, s = len(labels), self.image_size
        bank = object_bank(self.seed)
        if self.style == "norb":
            elev = rng.choice(np.deg2rad([30, 35, 40, 45, 50, 55, 60, 65, 70]), n)
            light = np.stack([rng.uniform(-1, 1, n), -rng.uniform(0.3, 1, n), -rng.uniform(0.5, 1, n)], -1)
        elif self.style == "aloi":
            elev = np.full(n, np.deg2rad(20.0))
            light = np.stack([rng.uniform(-1, 1, n), -rng.uniform(0.0, 1, n), -rng.uniform(0.3, 1, n)], -1)
        else:
            elev = np.full(n, np.deg2rad(25.0))
            light = np.tile([0.3, -0.6, -0.75], (n, 1))
        scale = rng.uniform(0.95, 1.05, n)
        shift = rng.uniform(-0.03, 0.03, (2, n))
        rgb, alpha = render_views(bank, self.objects[labels], angle, elev, light, s, scale, shift)
        if self.style == "norb":
            bg = F32(0.5) + F32(0.05) * band_noise(rng, n, s, 3.0, 0.6)
            img = rgb * alpha[..., None] + bg[..., None] * (1 - alpha[..., None])
            img = img * col(rng.uniform(0.7, 1.2, n))[..., None]
        else:
            img = rgb * alpha[..., None] * col(rng.uniform(0.9, 1.1, n))[..., None]
        img = img + rng.normal(0, 0.015, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> ViewTask:
    parent = PARENT.get(facts.key, facts.key)
    perm = make_rng("viewpoint-classes", seed, parent).permutation(BANK)
    objects = perm[:num_classes] if num_classes <= BANK else np.arange(num_classes) % BANK
    style = {"aloi": "aloi", "norb": "norb"}.get(facts.key, "coil")
    return ViewTask(facts.key, image_size, facts.channels, seed, objects, style)
