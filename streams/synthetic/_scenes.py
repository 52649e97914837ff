"""Family ``scene``: scene layouts from a family-level bank of scene categories.

A category fixes layout statistics: the kind of place (open country, mountains, city, forest, coast,
room), the horizon height, sky and ground colours, the ground texture, and which elements appear
(buildings with windows, trees, mountains, rocks / bushes, trunks, furniture), how many and how big.
Per image the horizon wobbles and the elements are placed at random, so a class is an arrangement
and colour statistics, not a template. Paintings (``wikipaintings``) use random layouts and make
the class a painting style (palette shift, posterisation, brush-stroke texture, outlines, blur).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._core import F32, band_noise, blur, col, grid, hsv_to_rgb, make_rng, to_channels

BANK = 512
KINDS = ("country", "mountains", "city", "forest", "coast", "room")
ELEMENTS = {"country": 3, "mountains": 2, "city": 0, "forest": 4, "coast": 3, "room": 5}  # default element kind
MAX_ELEMENTS = 6
PARENT = {"scenes8": "scenes15"}
STYLE_BANK = 64


@functools.lru_cache(maxsize=4)
def scene_bank(seed: int) -> dict:
    rng = make_rng("scene-bank", seed)
    n = BANK
    kind = np.arange(n) % len(KINDS)
    u = lambda lo, hi, shape=n: rng.uniform(lo, hi, shape)  # noqa: E731
    elem = np.array([ELEMENTS[KINDS[k]] for k in kind])
    swap = rng.random(n) < 0.3
    elem = np.where(swap, rng.integers(0, 6, n), elem)
    ground_h = np.where(kind == 5, u(0.02, 0.12), np.where(kind == 4, u(0.5, 0.62), u(0.02, 0.4)))
    return {
        "kind": kind,
        "elem": elem,
        "horizon": np.where(kind == 5, u(0.0, 0.5), u(-0.45, 0.35)),
        "wave": np.where(kind == 1, u(0.1, 0.3), u(0.0, 0.06)),
        "sky_top": hsv_to_rgb(u(0.52, 0.7), u(0.2, 0.8), u(0.45, 1.0)),
        "sky_bot": hsv_to_rgb(np.where(rng.random(n) < 0.2, u(0.0, 0.12), u(0.5, 0.62)), u(0.0, 0.5), u(0.7, 1.0)),
        "ground": hsv_to_rgb(u(0.05, 0.4), u(0.2, 0.8), u(0.2, 0.75)),
        "ground_h": ground_h,
        "tex_f": u(3.0, 16.0),
        "tex_c": u(0.05, 0.4),
        "count": rng.integers(1, MAX_ELEMENTS + 1, n),
        "size": u(0.12, 0.45),
        "ecol": hsv_to_rgb(u(0.0, 1.0), u(0.1, 0.8), u(0.15, 0.9)),
        "ecol2": hsv_to_rgb(u(0.0, 1.0), u(0.1, 0.8), u(0.2, 1.0)),
        "wall": hsv_to_rgb(u(0.0, 1.0), u(0.0, 0.4), u(0.45, 0.95)),
        "sun": (rng.random(n) < 0.25).astype(np.float64),
    }


@functools.lru_cache(maxsize=4)
def style_bank(seed: int) -> dict:
    rng = make_rng("painting-styles", seed)
    n = STYLE_BANK
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    return {
        "hue": u(-0.2, 0.2), "sat": np.exp(u(-1.2, 0.6)), "gamma": np.exp(u(-0.5, 0.5)),
        "tint": hsv_to_rgb(u(0, 1), u(0.0, 0.5), 1.0), "levels": rng.choice([0, 0, 3, 4, 6], n),
        "brush_f": u(4.0, 14.0), "brush_theta": u(0, np.pi), "brush_bw": u(0.15, 1.5), "brush_amp": u(0.0, 0.25),
        "outline": u(0.0, 1.0) * (rng.random(n) < 0.35), "blur": u(0.0, 1.2) * (rng.random(n) < 0.4),
    }


def render_scenes(p: dict, rng, size: int) -> np.ndarray:
    n = len(p["kind"])
    yy, xx = grid(size)
    jit = lambda c, a=0.15: np.clip(c * rng.normal(1.0, a, c.shape) * rng.uniform(0.75, 1.2, (n, 1)), 0, 1).astype(F32)  # noqa: E731
    horizon = p["horizon"] + rng.normal(0, 0.15, n)
    wave = p["wave"] * rng.uniform(0.5, 1.5, n)
    hx = col(horizon) + col(wave) * np.sin(np.pi * (xx[None] * col(rng.uniform(1.0, 3.0, n))) + col(rng.uniform(0, 6.3, n)))
    t = ((yy + 1) / 2)[None, ..., None]
    sky = jit(p["sky_top"])[:, None, None] * (1 - t) + jit(p["sky_bot"])[:, None, None] * t
    tex = band_noise(rng, n, size, p["tex_f"] * rng.uniform(0.7, 1.4, n), 0.5)
    ground = jit(p["ground"])[:, None, None] * (1 + col(p["tex_c"]) * tex)[..., None]
    below = np.clip((yy[None] - hx) * size * 0.5, 0, 1)[..., None]
    room = col(p["kind"] == 5)[..., None]
    wall = jit(p["wall"])[:, None, None] * (1 + 0.04 * tex[..., None])
    upper = np.where(room, wall, sky)
    img = upper * (1 - below) + ground * below
    # the sun
    sx, sy = rng.uniform(-0.8, 0.8, n), rng.uniform(-0.9, -0.5, n)
    sun = np.clip((0.1 - np.sqrt((xx - col(sx)) ** 2 + (yy - col(sy)) ** 2)) * size, 0, 1) * col((p["sun"] > 0.5) & (p["kind"] != 5))
    img += (np.asarray([1.0, 0.95, 0.7], F32) - img) * sun[..., None] * (1 - below)
    # water for coasts: between the horizon and the shore
    coast = p["kind"] == 4
    if coast.any():
        shore = hx + col(p["ground_h"] * 0.6)
        water = np.clip((yy[None] - hx) * size * 0.5, 0, 1) * np.clip((shore - yy[None]) * size * 0.5, 0, 1) * col(coast)
        waves = 0.85 + 0.15 * np.sin(yy[None] * 40.0 + col(rng.uniform(0, 6.3, n)))
        wcol = hsv_to_rgb(rng.uniform(0.5, 0.62, n), rng.uniform(0.4, 0.8, n), rng.uniform(0.4, 0.8, n))[:, None, None]
        img += (wcol * waves[..., None] - img) * water[..., None]
    # elements
    count = np.minimum(p["count"] + rng.integers(-2, 3, n), MAX_ELEMENTS)
    ecol, ecol2 = jit(p["ecol"], 0.2), jit(p["ecol2"], 0.2)
    for j in range(MAX_ELEMENTS):
        on = col(j < count)
        cx = rng.uniform(-1.0, 1.0, n)
        sz = p["size"] * rng.uniform(0.6, 1.4, n)
        base = horizon + rng.uniform(0.0, 0.25, n) * (p["kind"] != 5)
        dx = xx[None] - col(cx)
        dyb = yy[None] - col(base)
        e = p["elem"]
        m = np.zeros((n, size, size), F32)
        c2 = np.zeros((n, size, size), F32)  # second colour weight (windows, crowns, snow)
        sel = (e == 0)[:, None, None]  # buildings with windows
        hgt = col(sz * 2.2)
        bm = (np.abs(dx) < col(sz * 0.45)) & (dyb < 0) & (dyb > -hgt)
        win = (np.sin(dx * 45.0) > 0.3) & (np.sin(dyb * 45.0) > 0.3)
        m = np.where(sel & bm, 1.0, m)
        c2 = np.where(sel & bm & win, 0.7, c2)
        sel = (e == 1)[:, None, None]  # trees: trunk + crown
        trunk = (np.abs(dx) < col(sz * 0.08)) & (dyb < 0) & (dyb > -hgt * 0.45)
        crown = (dx / col(sz * 0.45)) ** 2 + ((dyb + hgt * 0.6) / col(sz * 0.55)) ** 2 < 1
        m = np.where(sel & (trunk | crown), 1.0, m)
        c2 = np.where(sel & crown, 1.0, c2)
        sel = (e == 2)[:, None, None]  # mountains with snow caps
        mt = (dyb < 0) & (-dyb < hgt * 0.8 - np.abs(dx) * 1.2)
        snow = mt & (-dyb > hgt * 0.8 - np.abs(dx) * 1.2 - col(sz * 0.25))
        m = np.where(sel & mt, 1.0, m)
        c2 = np.where(sel & snow, 0.8, c2)
        sel = (e == 3)[:, None, None]  # rocks / bushes
        blob = (dx / col(sz * 0.5)) ** 2 + ((dyb + col(sz * 0.15)) / col(sz * 0.3)) ** 2 < 1
        m = np.where(sel & blob, 1.0, m)
        sel = (e == 4)[:, None, None]  # trunks / poles across the frame
        pole = (np.abs(dx) < col(sz * 0.07)) & (dyb < 0.3)
        m = np.where(sel & pole, 1.0, m)
        sel = (e == 5)[:, None, None]  # furniture / windows / pictures on walls
        fy = col(base - sz * 0.9)
        furn = (np.abs(dx) < col(sz * 0.5)) & (np.abs(yy[None] - fy) < col(sz * 0.35))
        m = np.where(sel & furn, 1.0, m)
        c2 = np.where(sel & furn & (np.abs(dx) < col(sz * 0.4)) & (np.abs(yy[None] - fy) < col(sz * 0.25)), 0.5, c2)
        m = m * on
        colour = ecol[:, None, None] * (1 - c2[..., None]) + ecol2[:, None, None] * c2[..., None]
        img += (colour - img) * m[..., None]
    img = img * (1 + 0.03 * rng.normal(0, 1, img.shape)).astype(F32)
    return np.clip(img, 0, 1).astype(F32)


def paint_style(img: np.ndarray, st: dict, rng) -> np.ndarray:
    """Turn scenes into paintings of per-image styles ``st`` (per-image parameter arrays)."""
    n, size = img.shape[0], img.shape[1]
    mean = img.mean(axis=-1, keepdims=True)
    img = mean + (img - mean) * col(st["sat"])[..., None]
    # a crude hue rotation: mix channels cyclically
    h = col(st["hue"])[..., None]
    img = img * (1 - np.abs(h)) + np.where(h > 0, np.roll(img, 1, axis=-1), np.roll(img, -1, axis=-1)) * np.abs(h)
    img = np.clip(img, 0, 1) ** col(st["gamma"])[..., None] * st["tint"][:, None, None]
    strokes = band_noise(rng, n, size, st["brush_f"], 0.4, st["brush_theta"], st["brush_bw"])
    img = img * (1 + col(st["brush_amp"]) * strokes)[..., None]
    lv = col(st["levels"])[..., None]
    img = np.where(lv > 0, np.round(img * np.maximum(lv, 1)) / np.maximum(lv, 1), img)
    lum = img.mean(axis=-1)
    edge = np.abs(np.diff(lum, axis=1, append=lum[:, -1:])) + np.abs(np.diff(lum, axis=2, append=lum[:, :, -1:]))
    img = img * (1 - np.clip(edge * 3 * col(st["outline"]), 0, 0.8))[..., None]
    img = blur(np.clip(img, 0, 1), st["blur"] * size / 32.0)
    return img


@dataclass
class SceneTask:
    image_size: int
    channels: int
    seed: int
    classes: np.ndarray
    paintings: bool

    def render(self, labels, rng, split, **_):
        n = len(labels)
        bank = scene_bank(self.seed)
        if self.paintings:
            layout = rng.integers(0, BANK, n)
        else:
            layout = self.classes[labels]
        p = {k: v[layout] for k, v in bank.items()}
        img = render_scenes(p, rng, self.image_size)
        if self.paintings:
            sb = style_bank(self.seed)
            st = {k: v[self.classes[labels]] for k, v in sb.items()}
            img = paint_style(img, st, rng)
        img += rng.normal(0, 0.015, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> SceneTask:
    parent = PARENT.get(facts.key, facts.key)
    paintings = facts.key == "wikipaintings"
    size = STYLE_BANK if paintings else BANK
    rng = make_rng("scene-classes", seed, parent)
    classes = rng.permutation(size)[:num_classes] if num_classes <= size else np.arange(num_classes) % size
    return SceneTask(image_size, facts.channels, seed, classes, paintings)
