"""Family ``shape``: silhouettes, sketches, traffic-sign-like boards and garment-like shapes.

Silhouettes and sketches are the object bank's classes (``_objects``) seen as filled masks or as
part outlines, so they share body plans with the object tasks (Caltech-101 silhouettes are exactly
the Caltech-101 stand-in classes). Signs come from a family-level sign bank (board shape x colour
scheme x pictogram) that both traffic-sign tasks draw from; garments are ten parametric garment
plans (the Fashion-MNIST classes) with per-variant proportions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from . import _objects, _ocr, _parts
from ._core import (
    F32, Sprites, band_noise, blur, col, composite, crops, elastic_field, grid, make_rng,
    random_affine, to_channels,
)

SIL_PARENT = {"caltech_101_silhouettes": "caltech101", "sketch_dataset": "sketch_dataset", "mpeg7": "mpeg7"}


# ------------------------------------------------------------------------------------ silhouettes / sketches


@functools.lru_cache(maxsize=1600)
def sketch_protos(seed: int, cid: int, size: int) -> np.ndarray:
    """(POSES, size, size) outline drawings of an object-bank class (every part's outline)."""
    parts, roles, _, _ = _objects.class_spec(seed, cid)
    rng = make_rng("sketch-poses", seed, cid)
    out = np.zeros((_objects.POSES, size, size), dtype=F32)
    for v in range(_objects.POSES):
        ps = list(parts) if v == 0 else [_parts.jitter_part(p, rng, pos=0.025, size=0.04, angle=0.15, coef=0.0) for p in parts]
        ps = [replace(p, value=1.0) for p, r in zip(_parts.fit_parts(ps, margin=0.9), roles)]
        out[v] = _parts.mask(ps, size, outline=0.06)
    out.setflags(write=False)
    return out


# ------------------------------------------------------------------------------------ signs

BOARDS = ("circle", "triangle", "yield", "octagon", "square", "diamond", "rectangle")
SCHEMES = (  # (board fill, border, pictogram colour)
    ((1.0, 1.0, 1.0), (0.85, 0.05, 0.05), (0.05, 0.05, 0.05)),
    ((0.1, 0.3, 0.8), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
    ((0.95, 0.8, 0.1), (0.05, 0.05, 0.05), (0.05, 0.05, 0.05)),
    ((0.85, 0.05, 0.05), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
    ((1.0, 1.0, 1.0), (0.05, 0.05, 0.05), (0.05, 0.05, 0.05)),
    ((0.05, 0.5, 0.2), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
)
SIGN_BANK = 160


def _board_part(board: str) -> _parts.Part:
    P = _parts.Part
    return {
        "circle": P(0, 0, 0.92, 0.92),
        "triangle": P(0, 0.12, 1.05, 1.05, 0.0, n=3),
        "yield": P(0, -0.12, 1.05, 1.05, np.pi, n=3),
        "octagon": P(0, 0, 0.95, 0.95, np.pi / 8, n=8),
        "square": P(0, 0, 0.85, 0.85, p=12.0),
        "diamond": P(0, 0, 0.95, 0.95, np.pi / 4, n=4),
        "rectangle": P(0, 0, 0.92, 0.6, p=12.0),
    }[board]


@functools.lru_cache(maxsize=2048)
def sign_proto(seed: int, sid: int, size: int) -> np.ndarray:
    """RGBA (size, size, 4) of bank sign ``sid``: board, border, pictogram."""
    rng = make_rng("sign", seed, sid)
    board = BOARDS[sid % len(BOARDS)]
    fill, border, ink = (np.asarray(c, dtype=F32) for c in SCHEMES[int(rng.integers(0, len(SCHEMES)))])
    outer = _board_part(board)
    inner = replace(outer, rx=outer.rx * 0.78, ry=outer.ry * 0.78, cy=outer.cy * 0.78)
    m_out = _parts.mask([outer], size)
    m_in = _parts.mask([inner], size)
    kind = int(rng.integers(0, 5))
    if kind == 0:  # a number (speed limits)
        txt = str(int(rng.integers(1, 13)) * 10)
        g = _ocr.glyph_protos(txt, size, 0.5, 2)
        # lay the digits side by side
        n = len(txt)
        pic = np.zeros((size, size), dtype=F32)
        w = size // (n + 1)
        for i in range(n):
            small = np.asarray(Image.fromarray((g[i, 1] * 255).astype(np.uint8)).resize((w * 2, w * 2)), dtype=F32) / 255.0
            x0 = size // 2 - n * w // 2 + i * w - w // 2
            y0 = size // 2 - w
            xs, ys = slice(max(0, x0), x0 + 2 * w), slice(y0, y0 + 2 * w)
            pic[ys, xs] = np.maximum(pic[ys, xs], small[:, : pic[ys, xs].shape[1]])
    elif kind == 1:  # arrows
        a = float(rng.choice([0, np.pi / 2, np.pi, -np.pi / 2, np.pi / 4, -np.pi / 4]))
        shaft = np.array([[-0.4, 0.0], [0.25, 0.0]])
        head = np.array([[0.05, -0.2], [0.35, 0.0], [0.05, 0.2]])
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[c, -s], [s, c]])
        lines = [shaft @ rot.T, head @ rot.T]
        if rng.random() < 0.4:
            lines.append(np.array([[-0.4, 0.0], [-0.4, 0.35]]) @ rot.T)
        pic = _parts.polyline_mask(lines, size, width=0.13)
    elif kind == 2:  # a silhouette from the object bank
        cid = int(rng.integers(0, _objects.BANK_SIZE))
        proto = _objects.class_protos(seed, cid, size)[0, ..., 3].astype(F32) / 255.0
        pic = np.asarray(Image.fromarray((proto * 255).astype(np.uint8)).resize((size * 5 // 9, size * 5 // 9), Image.Resampling.BOX), dtype=F32) / 255.0
        pad = (size - pic.shape[0]) // 2
        pic = np.pad(pic, ((pad, size - pic.shape[0] - pad), (pad, size - pic.shape[1] - pad)))
    elif kind == 3:  # a letter or symbol
        ch = str(rng.choice(list("PSHTXE!?") + list("↑↰⚠✕")))
        if not _ocr.fonts_for(ch):
            ch = "P"
        pic = _ocr.glyph_protos(ch, size, 0.5, 2)[0, 1]
    else:  # bars / crosses / no-entry
        ang = float(rng.choice([0.0, np.pi / 4, np.pi / 2]))
        P = _parts.Part
        parts = [P(0, 0, 0.5, 0.12, ang, p=10.0)]
        if rng.random() < 0.5:
            parts.append(P(0, 0, 0.5, 0.12, ang + np.pi / 2, p=10.0))
        pic = _parts.mask(parts, size)
    pic = pic * m_in
    rgb = border[None, None] * (1 - m_in[..., None]) + fill[None, None] * m_in[..., None]
    rgb = rgb * (1 - pic[..., None]) + ink[None, None] * pic[..., None]
    out = np.concatenate([rgb, m_out[..., None]], axis=-1)
    res = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
    res.setflags(write=False)
    return res


# ------------------------------------------------------------------------------------ garments

GARMENTS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def _garment_parts(kind: str, rng):
    P, u = _parts.Part, rng.uniform
    if kind in ("t-shirt", "pullover", "coat", "shirt"):
        long = kind != "t-shirt"
        w, h = u(0.34, 0.42), u(0.5, 0.62) + (0.12 if kind == "coat" else 0.0)
        parts = [P(0, 0.08, w, h, p=8.0, taper=u(-0.1, 0.1), value=u(0.5, 1.0))]
        sl = (u(0.42, 0.55), u(0.1, 0.13)) if long else (u(0.16, 0.22), u(0.1, 0.14))
        for s in (-1, 1):
            cx = s * (w + sl[0] * (0.55 if long else 0.6))
            cy = -h * 0.45 + (sl[0] * 0.55 if long else 0.1)
            parts.append(P(cx, cy, sl[1], sl[0], s * -(0.35 if long else 0.9), p=6.0, value=parts[0].value))
        parts.append(P(0, 0.08 - h, u(0.08, 0.14), 0.06, value=-1.0))  # neck opening
        if kind in ("coat", "shirt"):
            parts.append(P(0, 0.1, 0.012, h * 0.9, p=8.0, value=-1.0))  # opening / button line
        return parts
    if kind == "trouser":
        w = u(0.12, 0.17)
        return [P(0, -0.72, 0.32, 0.09, p=10.0, value=u(0.4, 0.9)), P(-0.17, 0.1, w, 0.8, 0.06, p=8.0, value=0.7), P(0.17, 0.1, w, 0.8, -0.06, p=8.0, value=0.7)]
    if kind == "dress":
        return [P(0, 0.15, u(0.32, 0.45), 0.75, p=4.0, taper=u(0.5, 0.9), value=u(0.4, 1.0)), P(0, -0.55, 0.2, 0.2, p=6.0, value=0.8)]
    if kind == "sandal":
        parts = [P(0, 0.35, 0.85, u(0.06, 0.1), p=6.0, value=0.7)]
        for x in np.linspace(-0.5, 0.5, int(rng.integers(2, 5))):
            parts.append(P(float(x), 0.12, 0.04, 0.25, float(u(-0.6, 0.6)), p=6.0, value=0.9))
        return parts
    if kind == "sneaker":
        return [P(0, 0.3, 0.85, 0.1, p=6.0, value=0.95), P(-0.05, 0.08, 0.75, u(0.22, 0.3), p=3.0, taper=0.0, value=u(0.3, 0.8)), P(0.45, 0.05, 0.25, 0.2, value=0.6)]
    if kind == "bag":
        w = u(0.6, 0.8)
        return [P(0, 0.2, w, u(0.45, 0.55), p=6.0, taper=u(-0.2, 0.0), value=u(0.3, 0.9)), P(0, -0.4, w * 0.45, 0.35, value=0.7), P(0, -0.4, w * 0.35, 0.27, value=-1.0)]
    # ankle boot
    return [P(-0.15, -0.15, 0.3, 0.55, p=6.0, value=u(0.2, 0.6)), P(0.15, 0.35, 0.7, 0.2, p=5.0, value=0.4), P(0.05, 0.58, 0.8, 0.05, p=8.0, value=0.15)]


@functools.lru_cache(maxsize=16)
def garment_protos(seed: int, size: int, variants: int = 8) -> np.ndarray:
    """(10, variants, size, size) grey garment images (0 = background)."""
    out = np.zeros((len(GARMENTS), variants, size, size), dtype=F32)
    for c, kind in enumerate(GARMENTS):
        for v in range(variants):
            rng = make_rng("garment", seed, c, v)
            parts = _parts.fit_parts(_garment_parts(kind, rng), margin=0.88)
            img = np.zeros((size, size), dtype=F32)
            alpha = np.zeros((size, size), dtype=F32)
            for p in parts:
                m = _parts.mask([replace(p, value=1.0)], size)
                if p.value < 0:
                    alpha *= 1 - m
                    img *= 1 - m
                else:
                    img = img * (1 - m) + p.value * m
                    alpha = np.maximum(alpha, m)
            out[c, v] = img * alpha
    out.setflags(write=False)
    return out


# ------------------------------------------------------------------------------------ the task


@dataclass
class ShapeTask:
    image_size: int
    channels: int
    mode: str
    sprites: Sprites
    variants: int
    backgrounds: np.ndarray | None = None
    invert: bool = False

    def render(self, labels, rng, split, **_):
        n, s, mode = len(labels), self.image_size, self.mode
        idx = labels * self.variants + rng.integers(0, self.variants, n)
        yy, xx = grid(s)
        if mode == "signs":
            a = random_affine(rng, n, rot=0.15, scale=(0.6, 0.95), shift=0.1, shear=0.15, aspect=0.15)
            rgba = self.sprites.sample(idx, a, s)
            img = crops(rng, self.backgrounds, n, s)
            composite(img, rgba)
            img = img * rng.uniform(0.25, 1.25, (n, 1, 1, 1)).astype(F32) + rng.uniform(-0.05, 0.15, (n, 1, 1, 1)).astype(F32)
            img = blur(img, rng.uniform(0.0, 1.2, n) * s / 32.0)
            img += rng.normal(0, 0.03, img.shape).astype(F32)
            return to_channels(np.clip(img, 0, 1), self.channels)
        if mode == "garments":
            a = random_affine(rng, n, rot=0.04, scale=(0.88, 1.02), shift=0.04, aspect=0.08)
            g = self.sprites.sample(idx, a, s)[..., 0]
            body = (g > 0.02).astype(F32)
            kind = rng.integers(0, 3, n)
            stripes = 0.5 + 0.5 * np.sin(2 * np.pi * col(rng.uniform(3, 8, n)) * (col(np.cos(rng.uniform(0, np.pi, n))) * xx + col(np.sin(rng.uniform(0, np.pi, n))) * yy))
            tex = band_noise(rng, n, s, 6.0, 0.6) * F32(0.5) + F32(0.5)
            pat = np.where(col(kind == 0), F32(1.0), np.where(col(kind == 1), F32(0.75) + F32(0.25) * stripes, F32(0.75) + F32(0.25) * tex))
            img = g * pat * col(rng.uniform(0.55, 1.0, n))
            img = img + body * rng.normal(0, 0.04, img.shape).astype(F32)
            return to_channels(np.clip(img, 0, 1)[..., None], self.channels)
        # silhouettes and sketches
        rot = np.pi / 3 if mode == "silhouette_rot" else 0.2
        a = random_affine(rng, n, rot=rot, scale=(0.7, 1.05), shift=0.12, shear=0.2, aspect=0.2, flip=True)
        disp = elastic_field(rng, n, s, 0.06 if mode == "sketch" else 0.03)
        m = self.sprites.sample(idx, a, s, disp)[..., 0]
        if mode == "sketch":
            m = np.clip(m * col(rng.uniform(1.0, 1.8, n)), 0, 1)
        img = 1.0 - m if self.invert else m
        img = img + rng.normal(0, 0.02, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1)[..., None], self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> ShapeTask:
    key, style = facts.key, facts.style
    proto = _objects.object_proto_size(image_size)
    if style == "signs":
        order = make_rng("sign-classes", seed).permutation(SIGN_BANK)  # family-level order: tasks overlap
        offset = int(make_rng("sign-offset", seed, key).integers(0, 40))
        ids = order[(offset + np.arange(num_classes)) % SIGN_BANK]
        protos = np.stack([sign_proto(seed, int(i), proto) for i in ids]).astype(F32) / 255.0
        return ShapeTask(image_size, facts.channels, "signs", Sprites(protos, 0.0), 1, _objects.background_bank(seed, image_size))
    if style == "garments":
        g = garment_protos(seed, proto)
        ids = np.arange(num_classes) % len(GARMENTS)
        return ShapeTask(image_size, facts.channels, "garments", Sprites(g[ids].reshape(-1, proto, proto, 1), 0.0), g.shape[1])
    ids = _objects.bank_classes(seed, SIL_PARENT.get(key, key), num_classes)
    if style == "sketch":
        masks = np.stack([sketch_protos(seed, int(c), proto) for c in ids])
        return ShapeTask(image_size, facts.channels, "sketch", Sprites(masks.reshape(-1, proto, proto, 1), 0.0), _objects.POSES, invert=True)
    masks = np.stack([_objects.class_protos(seed, int(c), proto)[..., 3] for c in ids]).astype(F32) / 255.0
    mode = "silhouette_rot" if key == "mpeg7" else "silhouette"
    return ShapeTask(image_size, facts.channels, mode, Sprites(masks.reshape(-1, proto, proto, 1), 0.0), _objects.POSES, invert=key != "mpeg7")
