"""Family ``xray``: grey chest-radiograph / mammogram / radar-like images; classes are findings.

A chest image has a torso, two lungs with curved ribs, a spine and heart shadow, diaphragm domes
and film noise; position, size, exposure and contrast vary per image. A family-level bank of lesion
types (patchy opacity, nodules, cavities, bilateral ground glass, effusion, masses, cardiomegaly,
interstitial streaks, pneumothorax, consolidation, calcifications, apical infiltrates) is shared by
all chest tasks: class 0 is normal and the other classes are lesion types (pneumonia and COVID
tasks share the opacity type). Lesion severity varies per image. Style ``mammo`` (DDSM) draws a
breast with glandular texture and round (benign) or spiculated (malignant) masses; style
``volcano`` draws speckled radar terrain with or without bright volcano rings.
The multi-label family reuses :func:`chest` and :func:`add_lesion` for findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._core import F32, band_noise, col, grid, lowpass_noise, make_rng

LESIONS = (
    "opacity", "nodules", "cavity", "ground_glass", "effusion", "mass", "cardiomegaly", "interstitial",
    "pneumothorax", "consolidation", "calcification", "apical", "edema", "emphysema", "fibrosis", "hernia",
)
TASK_LESIONS = {
    "pneumonia_chest_x_ray": ("opacity",),
    "tubercolosis": ("cavity",),
    "covid_19_x_ray": ("opacity", "ground_glass"),
    "synthetic_covid_19_chest_x_ray_dataset": ("ground_glass",),
}


def _soft(d, size, w=1.0):
    return np.clip(0.5 - d * size / (2.0 * w), 0.0, 1.0).astype(F32)


def chest(rng, n: int, size: int):
    """Normal chest images (N, S, S) and a per-image geometry dict for placing lesions."""
    yy, xx = grid(size)
    g = {
        "cx": rng.normal(0, 0.04, n), "cy": rng.normal(0.02, 0.04, n), "sc": rng.uniform(0.9, 1.08, n),
        "lung_rx": rng.uniform(0.22, 0.28, n), "lung_ry": rng.uniform(0.45, 0.55, n), "heart": rng.uniform(0.18, 0.24, n),
    }
    X = (xx[None] - col(g["cx"])) / col(g["sc"])
    Y = (yy[None] - col(g["cy"])) / col(g["sc"])
    g["X"], g["Y"] = X, Y
    body = _soft(np.sqrt((X / 0.88) ** 2 + ((Y - 0.15) / 1.15) ** 2) - 1.0, size, 3.0)
    img = F32(0.04) + F32(0.5) * body
    lungs = np.zeros_like(img)
    for side in (-1.0, 1.0):
        lx = side * 0.33
        dy = Y + 0.05
        taper = 1.0 - 0.35 * np.clip(-dy / col(g["lung_ry"]), 0, 1)
        d = np.sqrt(((X - lx) / (col(g["lung_rx"]) * taper)) ** 2 + (dy / col(g["lung_ry"])) ** 2) - 1.0
        lungs = np.maximum(lungs, _soft(d * 0.3, size, 2.5))
    g["lungs"] = lungs
    img = img - F32(0.32) * lungs
    ribs_y = Y + 0.35 * (np.abs(X) - 0.25) ** 2
    ribs = np.clip((np.sin(2 * np.pi * col(rng.uniform(5.0, 6.5, n)) * ribs_y + col(rng.uniform(0, 6.3, n))) - 0.55) * 3.0, 0, 1)
    img = img + F32(0.1) * ribs * lungs
    heart = _soft(np.sqrt(((X - 0.1) / col(g["heart"] * 1.3)) ** 2 + ((Y - 0.28) / col(g["heart"])) ** 2) - 1.0, size, 5.0)
    g["heart_m"] = heart
    img = img + F32(0.2) * heart * lungs
    spine = _soft(np.abs(X) - 0.06, size, 1.5) * body
    mediastinum = _soft(np.abs(X) - 0.13, size, 4.0) * body * (Y < 0.45)
    img = img + F32(0.08) * spine + F32(0.1) * mediastinum
    img = img + F32(0.03) * band_noise(rng, n, size, 6.0, 0.8)
    return img, g


def add_lesion(img, g, kind: str, rng, idx, size: int, severity):
    """Add lesion ``kind`` to images ``idx`` (in place) with per-image ``severity`` in [0, 1]."""
    if len(idx) == 0:
        return
    X, Y, lungs = g["X"][idx], g["Y"][idx], g["lungs"][idx]
    n = len(idx)
    sev = col(severity)
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    cx = side * 0.33 + rng.normal(0, 0.06, n)
    if kind in ("opacity", "consolidation", "apical"):
        cy = {"opacity": rng.uniform(0.0, 0.3, n), "consolidation": rng.uniform(-0.25, 0.3, n), "apical": rng.uniform(-0.45, -0.3, n)}[kind]
        r = rng.uniform(0.12, 0.24, n) if kind != "apical" else rng.uniform(0.08, 0.14, n)
        blob = _soft(np.sqrt((X - col(cx)) ** 2 + (Y - col(cy)) ** 2) / col(r) - 1.0, size, 6.0 if kind == "opacity" else 2.0)
        texture = 1.0 + 0.4 * lowpass_noise(rng, n, size, 5.0) if kind == "opacity" else 1.0
        add = F32(0.38 if kind != "consolidation" else 0.42) * blob * texture * lungs
    elif kind == "nodules" or kind == "calcification":
        add = np.zeros_like(X)
        k = 6 if kind == "nodules" else 3
        for _ in range(k):
            px = rng.choice([-1.0, 1.0], n) * rng.uniform(0.15, 0.5, n)
            py = rng.uniform(-0.4, 0.35, n)
            r = rng.uniform(0.03, 0.05, n) if kind == "nodules" else rng.uniform(0.015, 0.025, n)
            on = col(rng.random(n) < 0.75)
            add = add + on * _soft(np.sqrt((X - col(px)) ** 2 + (Y - col(py)) ** 2) - col(r), size, 1.0)
        add = F32(0.3 if kind == "nodules" else 0.5) * np.minimum(add, 1.0) * lungs
    elif kind == "cavity":
        cy = rng.uniform(-0.4, -0.15, n)
        r = rng.uniform(0.07, 0.12, n)
        d = np.sqrt((X - col(cx)) ** 2 + (Y - col(cy)) ** 2)
        ring = _soft(np.abs(d - col(r)) - 0.025, size, 1.5)
        hole = _soft(d - col(r) * 0.8, size, 1.5)
        add = (F32(0.35) * ring - F32(0.15) * hole) * lungs
    elif kind == "ground_glass":
        add = np.zeros_like(X)
        for s in (-1.0, 1.0):
            px = s * rng.uniform(0.42, 0.52, n)
            py = rng.uniform(0.0, 0.35, n)
            add = add + _soft(np.sqrt((X - col(px)) ** 2 + ((Y - col(py)) * 0.7) ** 2) - 0.2, size, 8.0)
        add = F32(0.15) * np.minimum(add, 1.0) * (1.0 + 0.3 * lowpass_noise(rng, n, size, 6.0)) * lungs
    elif kind == "effusion":
        level = rng.uniform(0.15, 0.35, n)
        meniscus = Y - col(level) + 0.4 * (np.abs(X) - 0.33) ** 2 * col(side * 0 + 1)
        add = F32(0.35) * _soft(-meniscus, size, 2.0) * lungs * (side[:, None, None] * X > 0)
    elif kind == "mass":
        cy = rng.uniform(-0.3, 0.25, n)
        r = rng.uniform(0.09, 0.15, n)
        add = F32(0.32) * _soft(np.sqrt((X - col(cx)) ** 2 + (Y - col(cy)) ** 2) - col(r), size, 1.2) * lungs
    elif kind == "cardiomegaly":
        big = _soft(np.sqrt(((X - 0.1) / col(g["heart"][idx] * 1.7)) ** 2 + ((Y - 0.22) / col(g["heart"][idx] * 1.35)) ** 2) - 1.0, size, 2.0)
        add = F32(0.25) * np.maximum(big - g["heart_m"][idx], 0.0) * lungs
    elif kind == "interstitial":
        streak = band_noise(rng, n, size, 9.0, 0.3, np.full(n, np.pi / 2), 0.35)
        add = F32(0.12) * np.clip(streak, 0, None) * lungs
    elif kind == "edema":  # bilateral haze around the hila ("butterfly")
        add = np.zeros_like(X)
        for s_ in (-1.0, 1.0):
            add = add + _soft(np.sqrt(((X - s_ * 0.2) / 0.2) ** 2 + ((Y - 0.05) / 0.3) ** 2) - 1.0, size, 6.0)
        add = F32(0.2) * np.minimum(add, 1.0) * lungs
    elif kind == "emphysema":  # hyperlucent, enlarged lungs
        add = F32(-0.12) * lungs
    elif kind == "fibrosis":  # reticular lines at the lung bases
        net = np.abs(band_noise(rng, n, size, 10.0, 0.3)) < 0.35
        add = F32(0.18) * net * lungs * np.clip((Y - 0.05) * 4.0, 0, 1)
    elif kind == "hernia":  # a round opacity behind the heart at the base
        add = F32(0.3) * _soft(np.sqrt((X + 0.05) ** 2 + (Y - 0.42) ** 2) - 0.09, size, 1.5)
    else:  # pneumothorax: a dark rim without lung markings
        rim = np.clip((side[:, None, None] * X - 0.45) * 8.0, 0, 1)
        add = F32(-0.15) * rim * lungs
    img[idx] += add * sev


# ------------------------------------------------------------------------------------ other styles


def mammogram(rng, n, size, cls):
    """Breast images with normal tissue (0), round masses (1) or spiculated masses (2+)."""
    yy, xx = grid(size)
    flip = col(np.where(rng.random(n) < 0.5, -1.0, 1.0))
    X = xx[None] * flip
    r = rng.uniform(1.2, 1.5, n)
    d = np.sqrt(((X + 1.0) / col(r)) ** 2 + (yy[None] / col(r * 0.8)) ** 2) - 1.0
    breast = _soft(d, size, 2.0)
    gland = np.clip(0.5 + 0.25 * band_noise(rng, n, size, rng.uniform(5, 9, n), 0.5, np.zeros(n), 0.6), 0, 1)
    dens = col(rng.uniform(0.3, 0.8, n))
    img = breast * (F32(0.25) + F32(0.35) * dens * gland * np.clip(1.0 - (X + 1.0) * 0.4, 0, 1))
    cx, cy = rng.uniform(-0.7, 0.0, n), rng.uniform(-0.4, 0.4, n)
    rad = rng.uniform(0.1, 0.17, n)
    dx, dy = X - col(cx), yy[None] - col(cy)
    rr = np.sqrt(dx**2 + dy**2)
    th = np.arctan2(dy, dx)
    round_m = _soft(rr - col(rad), size, 1.0)
    spikes = np.clip(np.cos(th * col(rng.integers(7, 12, n)) + col(rng.uniform(0, 6.3, n))) - 0.6, 0, None) * 2.5
    spic = _soft(rr - col(rad) * (0.7 + 0.9 * spikes), size, 1.0)
    sev = col(rng.uniform(0.5, 1.0, n))
    img = img + F32(0.38) * sev * breast * np.where(col(cls == 1), round_m, np.where(col(cls >= 2), spic, 0.0))
    return img


def radar(rng, n, size, cls):
    """Speckled radar terrain; class 1 (and above) has a volcano: a bright ring with a dark pit."""
    yy, xx = grid(size)
    terrain = 0.35 + 0.08 * lowpass_noise(rng, n, size, 3.0) + 0.05 * band_noise(rng, n, size, 10.0, 0.5)
    speckle = rng.gamma(8.0, 1.0 / 8.0, (n, size, size)).astype(F32)
    img = terrain * speckle
    cx, cy = rng.uniform(-0.6, 0.6, (2, n))
    r = rng.uniform(0.1, 0.22, n)
    d = np.sqrt((xx[None] - col(cx)) ** 2 + (yy[None] - col(cy)) ** 2) / col(r)
    flank = np.exp(-((d - 1.0) ** 2) / 0.08) * (1.0 + 0.5 * (xx[None] - col(cx)) / col(r))
    pit = np.exp(-(d**2) / 0.15)
    volcano = (0.45 * flank - 0.2 * pit) * col(rng.uniform(0.7, 1.0, n))
    decoy = 0.2 * np.exp(-(d**2) / 0.25) * col(rng.random(n) < 0.3)  # bright blobs without a ring
    img = img + np.where(col(cls >= 1), volcano, decoy)
    return img


@dataclass
class XrayTask:
    image_size: int
    channels: int
    style: str
    lesions: tuple

    def render(self, labels, rng, split, **_):
        n, s = len(labels), self.image_size
        if self.style == "volcano":
            img = radar(rng, n, s, labels)
        elif self.style == "mammo":
            img = mammogram(rng, n, s, labels)
        else:
            img, g = chest(rng, n, s)
            sev = rng.uniform(0.6, 1.0, n)
            for c, kind in enumerate(self.lesions, start=1):
                add_lesion(img, g, kind, rng, np.nonzero(labels == c)[0], s, sev[labels == c])
        img = img * col(rng.uniform(0.85, 1.15, n)) + col(rng.normal(0, 0.03, n))
        img = img + rng.normal(0, 0.02, img.shape).astype(F32)
        out = np.clip(img, 0, 1).astype(F32)[..., None]
        return out if self.channels == 1 else np.repeat(out, 3, axis=-1)


def task_lesions(seed: int, key: str, count: int) -> tuple:
    fixed = TASK_LESIONS.get(key)
    if fixed and len(fixed) >= count:
        return tuple(fixed[:count])
    perm = [LESIONS[i] for i in make_rng("xray-lesions", seed, key).permutation(len(LESIONS))]
    chosen = list(fixed or ())
    chosen += [k for k in perm if k not in chosen]
    return tuple(chosen[i % len(chosen)] for i in range(count))


def make_task(facts, num_classes: int, image_size: int, seed: int) -> XrayTask:
    style = "volcano" if facts.style == "volcano" else ("mammo" if facts.key == "ddsm" else "chest")
    return XrayTask(image_size, facts.channels, style, task_lesions(seed, facts.key, max(num_classes - 1, 0)))
