"""Family ``ocr``: characters rendered from the TTF fonts that ship with matplotlib, real handwritten
digits from scikit-learn's bundled ``load_digits``, and random stroke glyphs.

The glyph prototypes (character x font x stroke width) are family-level and rendered once per
process; every digit task draws the same digit shapes (fonts) or the same real handwritten digits
(MNIST-like tasks), so digit tasks transfer. Per image: random affine (rotation, scale, shear, shift),
elastic wobble, and a task style (white-on-black, blurred low-res, binarised, colour over photo
patches, house-number plates with neighbouring digits, score sheets with staff lines, ...).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import _parts
from ._core import (
    F32, Sprites, blur, col, crops, elastic_field, grid, hsv_to_rgb, make_rng, random_affine,
    skimage_image, to_channels, lowpass_noise,
)

DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
EMNIST_BALANCED = DIGITS + UPPER + "abdefghnqrt"
SYMBOLS = (
    "♩♪♫♬♭♮♯" "←↑→↓↔↕↖↗↘↙" "∀∂∃∅∇∈∉∏∑√∝∞∟∠∧∨∩∪∫∴∼≈≠≡≤≥⊂⊃⊆⊇⊕⊗⊥⋅" "■□▲△▶▷▼▽◀◁◆◇○◎●◐◑"
    "★☆☀☁☂☃☎☐☑☒☛☞☯☺☻♀♂♠♣♥♦" "§¶†‡•‰′″‹›€£¥©®™" "@#$%&*+=?!<>~^"
)
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf",
    "cmti10.ttf",
)
STROKE_WIDTHS = (0, 1)


@functools.lru_cache(maxsize=1)
def font_paths() -> tuple[str, ...]:
    import matplotlib

    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = tuple(os.path.join(folder, f) for f in FONT_FILES if os.path.exists(os.path.join(folder, f)))
    if not paths:
        raise FileNotFoundError(f"no TTF fonts found in {folder} (they ship with matplotlib)")
    return paths


@functools.lru_cache(maxsize=None)
def _charmap(path: str) -> frozenset:
    from matplotlib import ft2font

    return frozenset(ft2font.FT2Font(path).get_charmap())


@functools.lru_cache(maxsize=None)
def _font(path: str, px: int):
    return ImageFont.truetype(path, px)


def fonts_for(ch: str) -> list[str]:
    return [p for p in font_paths() if ord(ch) in _charmap(p)]


def charset(style: str, num_classes: int) -> str:
    if style in ("digits", "digits_rotated"):
        base = DIGITS
    elif style == "letters":
        base = UPPER + LOWER
    elif style == "symbols":
        base = "".join(c for c in dict.fromkeys(SYMBOLS) if fonts_for(c))
    elif num_classes == 47:
        base = EMNIST_BALANCED
    else:
        base = DIGITS + UPPER + LOWER
    return base[:num_classes]


def render_glyph(ch: str, path: str, size: int, stroke: int = 0, fill: float = 0.8) -> np.ndarray:
    """One glyph as a float mask (size, size): rendered large, cropped to its ink, fitted into a box
    of ``fill * size`` (aspect kept) and centred."""
    big = 2 * size
    font = _font(path, int(big * 0.55))
    im = Image.new("L", (big, big), 0)
    ImageDraw.Draw(im).text((big // 2, big // 2), ch, fill=255, font=font, anchor="mm", stroke_width=stroke * size // 16, stroke_fill=255)
    arr = np.asarray(im)
    ys, xs = np.nonzero(arr > 16)
    if len(ys) == 0:
        return np.zeros((size, size), dtype=F32)
    crop = im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    h, w = crop.height, crop.width
    s = fill * size / max(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    small = crop.resize((nw, nh), Image.Resampling.BOX)
    out = Image.new("L", (size, size), 0)
    out.paste(small, ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(out, dtype=F32) / F32(255.0)


@functools.lru_cache(maxsize=64)
def glyph_protos(chars: str, size: int, fill: float = 0.8, fonts: int = 0) -> np.ndarray:
    """(len(chars), V, size, size) masks: every character in V font x stroke-width variants.
    ``fonts`` > 0 limits the fonts to that many (bold / sans first)."""
    paths = font_paths()
    variants = [(p, sw) for p in paths for sw in STROKE_WIDTHS]
    out = []
    for ch in chars:
        ok = set(fonts_for(ch))
        vs = [(p, sw) for p, sw in variants if p in ok] or [(paths[0], sw) for sw in STROKE_WIDTHS]
        if fonts:
            vs = vs[: 2 * fonts]
        masks = [render_glyph(ch, p, size, sw, fill) for p, sw in vs]
        out.append(masks)
    v = max(len(m) for m in out)
    arr = np.stack([[m[i % len(m)] for i in range(v)] for m in out]).astype(F32)
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=8)
def sklearn_digits(size: int, fill: float = 0.72):
    """scikit-learn's bundled 8x8 handwritten digits upscaled to stroke-like masks: (masks (N, size,
    size), labels (N,))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = d.images.astype(np.float64) / 16.0
    inner = max(8, int(round(size * fill)))
    out = np.zeros((len(imgs), size, size), dtype=F32)
    o = (size - inner) // 2
    for i, im in enumerate(imgs):
        up = Image.fromarray((im * 255).astype(np.uint8)).resize((inner, inner), Image.Resampling.BICUBIC)
        a = np.asarray(up, dtype=F32) / F32(255.0)
        out[i, o : o + inner, o : o + inner] = np.clip((a - 0.28) * 2.2, 0, 1)
    out.setflags(write=False)
    return out, d.target.astype(np.int64)


@functools.lru_cache(maxsize=8)
def stroke_glyphs(seed: int, count: int, size: int, variants: int = 6) -> np.ndarray:
    """Random stroke glyphs (count, variants, size, size) standing in for Chinese characters: each
    class is 3-8 strokes (horizontal, vertical, falling, rising, dots, hooks, frames) on a 5x5 grid;
    variants jitter the stroke ends and width (writers)."""
    out = np.zeros((count, variants, size, size), dtype=F32)
    g = np.linspace(-0.7, 0.7, 5)
    for c in range(count):
        rng = make_rng("stroke-glyph", seed, c)
        strokes = []
        for _ in range(int(rng.integers(3, 9))):
            kind = rng.integers(0, 7)
            i, j = rng.integers(0, 4, 2)
            x0, y0 = g[i], g[j]
            length = int(rng.integers(1, 5 - max(i, j))) if max(i, j) < 4 else 1
            d = 0.35 * length
            if kind == 0:
                pts = [(x0, y0), (x0 + d, y0)]
            elif kind == 1:
                pts = [(x0, y0), (x0, y0 + d)]
            elif kind == 2:
                pts = [(x0, y0), (x0 + d * 0.7, y0 + d)]
            elif kind == 3:
                pts = [(x0 + d * 0.7, y0), (x0, y0 + d)]
            elif kind == 4:
                pts = [(x0, y0), (x0 + 0.08, y0 + 0.1)]
            elif kind == 5:
                pts = [(x0, y0), (x0, y0 + d), (x0 - 0.15, y0 + d - 0.12)]
            else:
                pts = [(x0, y0), (x0 + d, y0), (x0 + d, y0 + d * 0.8), (x0, y0 + d * 0.8), (x0, y0)]
            strokes.append(np.asarray(pts, dtype=np.float64))
        for v in range(variants):
            vr = make_rng("stroke-variant", seed, c, v)
            shift = vr.normal(0, 0.05, 2)
            lines = [s + vr.normal(0, 0.055, s.shape) + shift * (s[:, 1:2] > 0) for s in strokes]
            out[c, v] = _parts.polyline_mask(lines, size, width=float(vr.uniform(0.07, 0.12)))
    out.setflags(write=False)
    return out


# ------------------------------------------------------------------------------------ task styles


@dataclass(frozen=True)
class OcrStyle:
    source: str = "font"  # font | sklearn | strokes
    rot: float = 0.15
    scale: tuple = (0.85, 1.05)
    shift: float = 0.08
    shear: float = 0.2
    elastic: float = 0.0
    colour: str = "white_on_black"  # white_on_black | black_on_white | photo | plate | random
    blur: float = 0.0
    lowres: int = 0
    binarize: bool = False
    staff: bool = False
    distractors: bool = False
    noise: float = 0.03
    fonts: int = 0
    extra: dict = field(default_factory=dict)


STYLES = {
    "mnist": OcrStyle(source="sklearn", rot=0.2, elastic=0.035),
    "mnist_rot": OcrStyle(source="sklearn", rot=np.pi, elastic=0.035),
    "mnist_m": OcrStyle(source="sklearn", rot=0.2, elastic=0.035, colour="photo", noise=0.02),
    "usps": OcrStyle(scale=(1.0, 1.2), shift=0.04, elastic=0.05, blur=0.9, fonts=8),
    "semeion": OcrStyle(scale=(1.0, 1.2), shift=0.04, elastic=0.05, lowres=16, binarize=True, noise=0.0, fonts=8),
    "svhn": OcrStyle(scale=(0.7, 0.9), rot=0.12, colour="plate", distractors=True, blur=0.6, fonts=6),
    "emnist_balanced": OcrStyle(elastic=0.05, shear=0.3, blur=0.4),
    "chars74k": OcrStyle(colour="random", scale=(0.75, 1.0), blur=0.4),
    "notmnist": OcrStyle(scale=(0.9, 1.15), rot=0.05, noise=0.02),
    "cvc_muscima": OcrStyle(colour="black_on_white", staff=True, elastic=0.03, rot=0.08),
    "casia_hwdb1_1": OcrStyle(source="strokes", colour="black_on_white", elastic=0.06, rot=0.15, scale=(0.8, 1.05), shift=0.1),
}
DEFAULT_BY_STYLE = {
    "digits": OcrStyle(elastic=0.04),
    "digits_rotated": OcrStyle(rot=np.pi, elastic=0.04),
    "letters": OcrStyle(scale=(0.9, 1.15)),
    "alphanumeric": OcrStyle(elastic=0.04),
    "symbols": OcrStyle(colour="black_on_white", staff=True),
    "strokes": OcrStyle(source="strokes", colour="black_on_white", elastic=0.04),
}


@dataclass
class OcrTask:
    image_size: int
    channels: int
    style: OcrStyle
    sprites: Sprites
    variants: int
    pool: tuple | None  # sklearn: (per-class index table, per-class counts) of the real digits
    photos: np.ndarray | None

    def _masks(self, labels, rng, st, shift=0.0, scale=None):
        n, s = len(labels), self.image_size
        if self.pool is not None:
            table, counts = self.pool
            pick = (rng.random(n) * counts[labels]).astype(np.int64)
            idx = table[labels, pick]
        else:
            idx = labels * self.variants + rng.integers(0, self.variants, n)
        a = random_affine(rng, n, rot=st.rot, scale=scale or st.scale, shift=st.shift, shear=st.shear, aspect=0.1)
        if shift:
            a[:, 0, 2] += F32(shift) * a[:, 0, 0]
        disp = elastic_field(rng, n, s, st.elastic) if st.elastic else None
        return self.sprites.sample(idx, a, s, disp)[..., 0]

    def render(self, labels, rng, split, **_):
        st, n, s = self.style, len(labels), self.image_size
        m = self._masks(labels, rng, st)
        if st.distractors:
            for side in (-1.0, 1.0):
                other = rng.integers(0, len(self.pool[1]) if self.pool is not None else self.sprites.shape[0] // self.variants, n)
                m2 = self._masks(other, rng, st, shift=side * 1.25)
                m = np.maximum(m, m2 * col(rng.random(n) < 0.7))
        if st.lowres:
            m = _lowres(m, st.lowres)
        if st.binarize:
            m = (m > 0.45).astype(F32)
            if st.lowres:
                m = _lowres(m, st.lowres, nearest=True)
        m = m[..., None]
        yy, xx = grid(s)
        if st.colour == "white_on_black":
            level = rng.uniform(0.75, 1.0, (n, 1, 1, 1)).astype(F32)
            img = np.repeat(m * level, 3, axis=-1)
        elif st.colour == "black_on_white":
            paper = rng.uniform(0.82, 1.0, (n, 1, 1, 1)).astype(F32) + F32(0.03) * lowpass_noise(rng, n, s, 3.0)[..., None]
            ink = rng.uniform(0.0, 0.25, (n, 1, 1, 1)).astype(F32)
            if st.staff:
                gap = F32(0.22)
                off = rng.uniform(-1, 1, n).astype(F32)
                ph = ((yy[None] - col(off)) / gap) % 1.0
                staff = (np.minimum(ph, 1 - ph) * gap < F32(1.0 / s)).astype(F32) * col(rng.random(n) < 0.8)
                m = np.maximum(m, staff[..., None] * F32(0.8))
            img = np.repeat(paper * (1 - m) + ink * m, 3, axis=-1)
        elif st.colour == "photo":  # MNIST-M: |photo patch - digit|
            patch = crops(rng, self.photos, n, s)
            img = np.abs(patch - m)
        else:  # plate (house numbers) or random: coloured glyph on a coloured, textured ground
            h = rng.random(n)
            bg = hsv_to_rgb(h, rng.uniform(0.0, 0.7, n), rng.uniform(0.2, 1.0, n))
            fgv = rng.uniform(0.0, 1.0, n)
            fgv = np.where(np.abs(fgv - bg.max(axis=-1)) < 0.35, (fgv + 0.5) % 1.0, fgv)
            fg = hsv_to_rgb(h + rng.uniform(0.3, 0.7, n), rng.uniform(0.0, 0.8, n), fgv)
            tex = F32(1.0) + F32(0.12) * lowpass_noise(rng, n, s, 4.0)[..., None]
            shade = F32(1.0) + F32(0.2) * (col(rng.uniform(-1, 1, n)) * xx + col(rng.uniform(-1, 1, n)) * yy)[..., None]
            img = (bg[:, None, None, :] * tex * (1 - m) + fg[:, None, None, :] * m) * shade
        if st.blur:
            img = blur(img, rng.uniform(0.3, 1.0, n) * st.blur * s / 32.0)
        if st.noise:
            img = img + rng.normal(0, st.noise, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def _lowres(m: np.ndarray, res: int, nearest: bool = False) -> np.ndarray:
    """Down- then up-sample (N, S, S) masks through a res x res grid (blocky when ``nearest``)."""
    n, s, _ = m.shape
    if s <= res:
        return m
    idx = (np.arange(res) * s) // res
    edges = np.append(idx, s)
    small = np.add.reduceat(np.add.reduceat(m, edges[:-1], axis=1), edges[:-1], axis=2)
    small /= np.diff(edges)[None, :, None] * np.diff(edges)[None, None, :]
    up = (np.arange(s) * res) // s
    big = small[:, up][:, :, up]
    if nearest:
        return big
    from ._core import box_blur3

    return box_blur3(big[..., None])[..., 0]


@functools.lru_cache(maxsize=4)
def photo_bank(image_size: int) -> np.ndarray:
    """Colour photo crops (bundled scikit-image samples) for MNIST-M style backgrounds."""
    out = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "color.png"):
        img = skimage_image(name)
        if img.shape[-1] == 1:
            continue
        im = Image.fromarray((img * 255).astype(np.uint8))
        for zoom in (4, 6):
            w = image_size * zoom
            h = max(2 * image_size, int(round(im.height * w / im.width)))
            out.append(np.asarray(im.resize((w, h), Image.Resampling.BOX), dtype=F32)[: 2 * image_size * 2, : 4 * image_size] / 255.0)
    hmin = min(o.shape[0] for o in out)
    wmin = min(o.shape[1] for o in out)
    arr = np.stack([o[:hmin, :wmin] for o in out]).astype(F32)
    arr.setflags(write=False)
    return arr


def make_task(facts, num_classes: int, image_size: int, seed: int) -> OcrTask:
    st = STYLES.get(facts.key) or DEFAULT_BY_STYLE.get(facts.style) or OcrStyle()
    proto = max(24, image_size * 2)
    pool = photos = None
    if st.source == "sklearn" and num_classes <= 10:
        masks, target = sklearn_digits(proto)
        sprites = Sprites(masks[..., None], fill=0.0)
        lists = [np.nonzero(target == c)[0] for c in range(num_classes)]
        counts = np.array([len(x) for x in lists], dtype=np.int64)
        table = np.stack([np.resize(x, counts.max()) for x in lists]).astype(np.int64)
        pool = (table, counts)
        variants = 1
    elif st.source == "strokes" or facts.style == "strokes":
        bank = stroke_glyphs(seed, max(256, num_classes), proto)
        ids = make_rng("stroke-classes", seed, facts.key).permutation(bank.shape[0])[:num_classes]
        g = bank[ids]
        variants = g.shape[1]
        sprites = Sprites(g.reshape(-1, proto, proto, 1), fill=0.0)
    else:
        chars = charset(facts.style if facts.style else "alphanumeric", num_classes)
        if len(chars) < num_classes:  # pad the label space with stroke glyphs
            extra = stroke_glyphs(seed, num_classes - len(chars), proto)
        else:
            extra = None
        g = glyph_protos(chars, proto, 0.8, st.fonts)
        variants = g.shape[1]
        if extra is not None:
            reps = np.resize(np.arange(extra.shape[1]), variants)
            g = np.concatenate([g, extra[:, reps]])
        sprites = Sprites(g.reshape(-1, proto, proto, 1), fill=0.0)
    if st.colour == "photo":
        photos = photo_bank(image_size)
    return OcrTask(image_size, facts.channels, st, sprites, variants, pool, photos)
