"""2-D parts: superellipses / regular polygons / Fourier blobs, rasterised with PIL into masks.

A part lives in normalised coordinates ([-1, 1], y down). Shapes, object prototypes, garments,
sign pictograms and sketches are lists of parts; the prototypes are rendered once per process and
then warped per image (see ``_core.Sprites``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from ._core import F32


@dataclass(frozen=True)
class Part:
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    p: float = 2.0  # superellipse exponent (2 ellipse, large: rectangle, < 2: diamond / star)
    n: int = 0  # >= 3: a regular polygon with n corners instead of a curve
    taper: float = 0.0  # width scales with (1 + taper * y_local): trapezoids, tear drops
    coef: tuple = ()  # radial harmonics ((amplitude, phase), ...) for k = 1, 2, ...
    value: float = 1.0  # grey value / colour index; negative: cut this part out of the mask


def polygon(part: Part, m: int = 72) -> np.ndarray:
    """Vertices (m, 2) of the part outline, in normalised coordinates."""
    if part.n >= 3:
        t = np.linspace(0.0, 2 * np.pi, part.n, endpoint=False) - np.pi / 2
        x, y = np.cos(t), np.sin(t)
    else:
        t = np.linspace(0.0, 2 * np.pi, m, endpoint=False)
        c, s = np.cos(t), np.sin(t)
        e = 2.0 / part.p
        x = np.sign(c) * np.abs(c) ** e
        y = np.sign(s) * np.abs(s) ** e
        if part.coef:
            r = np.ones_like(t)
            for k, (a, ph) in enumerate(part.coef, start=1):
                r = r + a * np.cos(k * t + ph)
            r = np.maximum(r, 0.15)
            x, y = x * r, y * r
    x = x * (1.0 + part.taper * y)
    x, y = x * part.rx, y * part.ry
    ca, sa = np.cos(part.angle), np.sin(part.angle)
    return np.stack([part.cx + ca * x - sa * y, part.cy + sa * x + ca * y], axis=1)


def _to_px(points: np.ndarray, canvas: int) -> list[tuple[float, float]]:
    px = (points + 1.0) * 0.5 * canvas
    return list(zip(px[:, 0].tolist(), px[:, 1].tolist()))


def _reduce(im: Image.Image, ss: int) -> np.ndarray:
    return np.asarray(im.reduce(ss) if ss > 1 else im, dtype=F32) / F32(255.0)


def mask(parts, size: int, ss: int = 3, outline: float = 0.0, closed: bool = True) -> np.ndarray:
    """Anti-aliased union mask (size, size) float32 of ``parts``; parts with negative ``value`` cut.
    ``outline`` > 0 draws outlines of that width (normalised units) instead of filling."""
    canvas = size * ss
    im = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(im)
    for part in parts:
        pts = _to_px(polygon(part), canvas)
        fill = 0 if part.value < 0 else 255
        if outline > 0:
            width = max(1, int(round(outline * 0.5 * canvas)))
            draw.line(pts + pts[:1] if closed else pts, fill=fill, width=width, joint="curve")
        else:
            draw.polygon(pts, fill=fill)
    return _reduce(im, ss)


def polyline_mask(lines, size: int, width: float, ss: int = 3) -> np.ndarray:
    """Anti-aliased mask of open polylines (each an array (m, 2) in normalised coordinates)."""
    canvas = size * ss
    im = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(im)
    w = max(1, int(round(width * 0.5 * canvas)))
    for line in lines:
        pts = _to_px(np.asarray(line, dtype=np.float64), canvas)
        draw.line(pts, fill=255, width=w, joint="curve")
        r = w / 2.0
        for x, y in (pts[0], pts[-1]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return _reduce(im, ss)


def random_blob(rng, cx=0.0, cy=0.0, r=0.5, harmonics=4, roughness=0.25, aspect=0.3, p=None) -> Part:
    """A random smooth blob part: superellipse base with a few radial harmonics."""
    coef = tuple(
        (float(rng.normal(0.0, roughness / k**0.8)), float(rng.uniform(0, 2 * np.pi)))
        for k in range(1, harmonics + 1)
    )
    asp = float(np.exp(rng.uniform(-aspect, aspect)))
    return Part(
        cx, cy, r * asp, r / asp, float(rng.uniform(0, 2 * np.pi)),
        p=float(p if p is not None else rng.choice([1.4, 2.0, 2.0, 3.0, 5.0])), coef=coef,
    )


def jitter_part(part: Part, rng, pos=0.03, size=0.08, angle=0.1, coef=0.04) -> Part:
    """The same part with small random changes (intra-class variation)."""
    return replace(
        part,
        cx=part.cx + float(rng.normal(0, pos)),
        cy=part.cy + float(rng.normal(0, pos)),
        rx=part.rx * float(np.exp(rng.normal(0, size))),
        ry=part.ry * float(np.exp(rng.normal(0, size))),
        angle=part.angle + float(rng.normal(0, angle)),
        coef=tuple((a + float(rng.normal(0, coef)), ph) for a, ph in part.coef),
    )


def fit_parts(parts, margin: float = 0.92):
    """Scale and centre a part list so that its outline fits in [-margin, margin]^2."""
    pts = np.concatenate([polygon(p) for p in parts if p.value >= 0])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    scale = margin / max(float(np.max(hi - lo)) / 2, 1e-3)
    return [
        replace(p, cx=(p.cx - centre[0]) * scale, cy=(p.cy - centre[1]) * scale, rx=p.rx * scale, ry=p.ry * scale)
        for p in parts
    ]
