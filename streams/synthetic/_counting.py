"""Family ``counting``: how many objects are in the image, bucketed into the task's classes.

Class ``c`` holds images with ``c * bucket`` to ``c * bucket + bucket - 1`` objects: cars on a road
(TRANCOS), people on a shopping-mall floor (Mall), heads in a crowd (ShanghaiTech). Objects get
perspective (larger lower in the frame), random positions, colours and sizes, and may overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._core import F32, band_noise, col, grid, hsv_to_rgb, to_channels

STYLES = {"trancos": ("cars", 2), "mall_dataset": ("people", 2), "shanghaitech": ("heads", 4)}


def _ell(xx, yy, cx, cy, rx, ry, size):
    d = (np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) - 1.0) * np.minimum(rx, ry)
    return np.clip(0.5 - d * size / 2.0, 0, 1)


@dataclass
class CountTask:
    image_size: int
    channels: int
    kind: str
    bucket: int

    def render(self, labels, rng, split, **_):
        n, s = len(labels), self.image_size
        yy, xx = grid(s)
        counts = labels * self.bucket + rng.integers(0, self.bucket, n)
        tex = band_noise(rng, n, s, 10.0, 0.6)[..., None]
        if self.kind == "cars":
            road = np.full((n, 1, 1, 3), 0.3, F32) * col(rng.uniform(0.96, 1.04, n))[..., None]
            grass = hsv_to_rgb(rng.uniform(0.2, 0.35, n), 0.5, rng.uniform(0.3, 0.5, n))[:, None, None]
            edge = col(rng.uniform(0.84, 0.9, n))
            on_road = (np.abs(yy[None] - col(rng.normal(0, 0.05, n))) < edge)[..., None]
            img = np.where(on_road, road, grass) * (1 + 0.08 * tex)
            lanes = (np.abs(((yy[None] + 1) * 2.5) % 1.0 - 0.5) < 0.03) & (np.sin(xx[None] * 12) > 0)
            img = np.where(lanes[..., None], F32(0.85), img)
        elif self.kind == "people":
            floor = hsv_to_rgb(rng.uniform(0.05, 0.15, n), rng.uniform(0.05, 0.3, n), rng.uniform(0.76, 0.8, n))[:, None, None]
            tiles = ((np.floor((xx[None] + 1) * 4) + np.floor((yy[None] + 1) * 4)) % 2)[..., None] * F32(0.05)
            img = floor * (1 + 0.04 * tex) - tiles
        else:
            ground = hsv_to_rgb(rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.3, n), rng.uniform(0.62, 0.68, n))[:, None, None]
            img = ground * (1 + 0.06 * tex)
        img = np.ascontiguousarray(np.broadcast_to(img, (n, s, s, 3))).astype(F32)
        for j in range(int(counts.max(initial=0))):
            on = col(j < counts)
            y = rng.uniform(-0.9, 0.9, n)
            x = rng.uniform(-0.92, 0.92, n)
            persp = 0.8 + 0.2 * (y + 1)
            c = hsv_to_rgb(rng.random(n), rng.uniform(0.2, 0.8, n), rng.uniform(0.7, 1.0, n))[:, None, None]
            X, Y = col(x), col(y)
            p = col(persp)
            if self.kind == "cars":
                rx, ry = 0.11 * p, 0.06 * p
                body = np.clip(0.5 - (np.maximum(np.abs(xx - X) - rx, np.abs(yy - Y) - ry)) * s / 2, 0, 1) * on
                img += (c - img) * body[..., None]
                wind = np.clip(0.5 - (np.maximum(np.abs(xx - X - rx * 0.35) - rx * 0.2, np.abs(yy - Y) - ry * 0.7)) * s / 2, 0, 1) * on
                img += (F32(0.1) - img) * wind[..., None]
            elif self.kind == "people":
                body = _ell(xx, yy, X, Y, 0.07 * p, 0.1 * p, s) * on
                img += (c - img) * body[..., None]
                head = _ell(xx, yy, X, Y - 0.12 * p, 0.045 * p, 0.045 * p, s) * on
                hair = hsv_to_rgb(0.07, 0.5, rng.uniform(0.05, 0.4, n))[:, None, None]
                img += (hair - img) * head[..., None]
            else:
                head = _ell(xx, yy, X, Y, 0.06 * p, 0.065 * p, s) * on
                hair = hsv_to_rgb(0.07, 0.4, rng.uniform(0.05, 0.3, n))[:, None, None]
                img += (hair - img) * head[..., None]
                face = _ell(xx, yy, X, Y + 0.02 * p, 0.03 * p, 0.03 * p, s) * on * col(rng.random(n) < 0.5)
                img += (hsv_to_rgb(0.07, 0.4, 0.8) - img) * face[..., None]
        img += rng.normal(0, 0.025, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> CountTask:
    kind, bucket = STYLES.get(facts.key, ("people", 2))
    return CountTask(image_size, facts.channels, kind, bucket)
