"""Shared numpy machinery of the synthetic generator families.

Everything here is deterministic: random numbers come only from ``numpy.random.Generator`` objects
seeded with :func:`stable_seed` (SHA-256 of strings, never Python's salted ``hash``), and the numeric
work is elementwise numpy (no BLAS reductions whose order could depend on the thread count).
Images are float32 in [0, 1] with shape (N, S, S, C) until :func:`to_uint8`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os

import numpy as np

F32 = np.float32
SPLITS = ("train", "dev", "dev_test", "test")
CHUNK = 512  # images rendered per vectorised batch (keeps temporaries in cache; fixed for determinism)


# ----------------------------------------------------------------------------------------- seeds


def stable_seed(*parts) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")


def make_rng(*parts) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


def balanced_labels(rng: np.random.Generator, num_classes: int, n: int) -> np.ndarray:
    """``n`` labels, every class as often as possible (n // C or n // C + 1 times), shuffled."""
    reps = -(-n // num_classes)
    base = np.tile(np.arange(num_classes, dtype=np.int64), reps)
    extra = rng.permutation(num_classes)
    labels = np.concatenate([base[: (n // num_classes) * num_classes], extra[: n % num_classes]])
    return rng.permutation(labels).astype(np.int64)


def pick_subset(rng: np.random.Generator, bank_size: int, k: int) -> np.ndarray:
    """``k`` distinct indices into a bank (with wrap-around if the bank is smaller than ``k``)."""
    if k <= bank_size:
        return rng.permutation(bank_size)[:k]
    return np.concatenate([rng.permutation(bank_size) for _ in range(-(-k // bank_size))])[:k]


# ----------------------------------------------------------------------------------------- grids


@functools.lru_cache(maxsize=32)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1]: (yy, xx), each (size, size), y pointing down."""
    c = ((np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0).astype(F32)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


def col(a) -> np.ndarray:
    """(N,) -> (N, 1, 1) float32 for broadcasting against (N, S, S) fields."""
    return np.asarray(a, dtype=F32).reshape(-1, 1, 1)


def coverage(d: np.ndarray, size: int, soft: float = 1.0) -> np.ndarray:
    """Anti-aliased coverage of a region given a signed distance ``d`` (negative inside, normalised units)."""
    w = F32(2.0 * soft / size)
    return np.clip(F32(0.5) - d / w, 0.0, 1.0)


def ellipse_d(dx, dy, rx, ry) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (good near the boundary)."""
    k = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    return (k - 1.0) * np.minimum(rx, ry)


def rotate(dx, dy, theta):
    c, s = np.cos(theta), np.sin(theta)
    return c * dx + s * dy, -s * dx + c * dy


def smooth01(x) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ----------------------------------------------------------------------------------------- output


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * F32(255.0)), 0, 255).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return (F32(0.299) * rgb[..., 0:1] + F32(0.587) * rgb[..., 1:2] + F32(0.114) * rgb[..., 2:3]).astype(F32)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    if images.shape[-1] == channels:
        return images
    if channels == 1:
        return luminance(images)
    return np.repeat(images, 3, axis=-1)


def hsv_to_rgb(h, s, v) -> np.ndarray:
    """Vectorised HSV -> RGB; inputs broadcast, output (..., 3) float32."""
    h = np.asarray(h, dtype=F32) % 1.0
    s = np.asarray(s, dtype=F32)
    v = np.asarray(v, dtype=F32)
    k = lambda n: (n + h * 6.0) % 6.0  # noqa: E731
    f = lambda n: v - v * s * np.clip(np.minimum(k(n), 4.0 - k(n)), 0.0, 1.0)  # noqa: E731
    return np.stack(np.broadcast_arrays(f(5.0), f(3.0), f(1.0)), axis=-1).astype(F32)


def random_colours(rng, n, s=(0.3, 0.9), v=(0.3, 0.95), hue=None) -> np.ndarray:
    h = rng.random(n) if hue is None else hue
    return hsv_to_rgb(h, rng.uniform(*s, n), rng.uniform(*v, n))


# ----------------------------------------------------------------------------------------- warps


def affine(theta, scale, tx, ty, shear=0.0, aspect=1.0, flip=None) -> np.ndarray:
    """(N, 2, 3) maps from output coordinates to source coordinates for a forward transform
    ``out = t + scale * R(theta) @ Shear @ diag(aspect * flip, 1 / aspect) @ src`` (normalised coords)."""
    theta, scale, tx, ty, shear, aspect = np.broadcast_arrays(
        *[np.asarray(v, dtype=np.float64) for v in (theta, scale, tx, ty, shear, aspect)]
    )
    sign = np.ones_like(theta) if flip is None else np.where(np.asarray(flip), -1.0, 1.0)
    c, s = np.cos(theta), np.sin(theta)
    ax, ay = aspect * sign, 1.0 / aspect
    # R @ [[1, shear], [0, 1]] @ diag(ax, ay), times scale
    a = scale * c * ax
    b = scale * (c * shear - s) * ay
    cc = scale * s * ax
    d = scale * (s * shear + c) * ay
    det = a * d - b * cc
    inv = np.empty(theta.shape + (2, 3))
    inv[..., 0, 0], inv[..., 0, 1] = d / det, -b / det
    inv[..., 1, 0], inv[..., 1, 1] = -cc / det, a / det
    inv[..., 0, 2] = -(inv[..., 0, 0] * tx + inv[..., 0, 1] * ty)
    inv[..., 1, 2] = -(inv[..., 1, 0] * tx + inv[..., 1, 1] * ty)
    return inv.astype(F32)


def random_affine(rng, n, rot=0.0, scale=(1.0, 1.0), shift=0.0, shear=0.0, aspect=0.0, flip=False):
    """Random affine maps: rotation uniform in +-rot (radians), log-uniform scale, shifts in +-shift."""
    theta = rng.uniform(-rot, rot, n) if rot else np.zeros(n)
    sc = np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]), n))
    tx, ty = rng.uniform(-shift, shift, (2, n)) if shift else (np.zeros(n), np.zeros(n))
    sh = rng.uniform(-shear, shear, n) if shear else np.zeros(n)
    asp = np.exp(rng.uniform(-aspect, aspect, n)) if aspect else np.ones(n)
    fl = rng.random(n) < 0.5 if flip else None
    return affine(theta, sc, tx, ty, sh, asp, fl)


def elastic_field(rng, n, size, amplitude, cells=4) -> np.ndarray:
    """A smooth random displacement field (N, S, S, 2) in normalised units, from a coarse grid."""
    coarse = rng.normal(0.0, 1.0, (n, cells, cells, 2)).astype(F32) * F32(amplitude)
    return upsample_linear(coarse, size)


@functools.lru_cache(maxsize=32)
def _lerp_index(size: int, cells: int):
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    lo = np.clip(np.floor(pos).astype(np.int64), 0, max(cells - 2, 0))
    hi = np.minimum(lo + 1, cells - 1)
    return lo, hi, (pos - lo).astype(F32)


def upsample_linear(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of (N, g, g, C) grids to (N, size, size, C), corner-aligned, elementwise."""
    g = coarse.shape[1]
    lo, hi, f = _lerp_index(size, g)
    rows = coarse[:, lo] * (1 - f)[None, :, None, None] + coarse[:, hi] * f[None, :, None, None]
    return (rows[:, :, lo] * (1 - f)[None, None, :, None] + rows[:, :, hi] * f[None, None, :, None]).astype(F32)


class Sprites:
    """A stack of source images (K, H, W, C) sampled with per-image affine maps (bilinear).

    Outside the source the value is ``fill`` (per channel), which with an alpha channel gives
    transparent borders. Pixels are gathered as whole 4/8/16-byte items (a dtype view), which is
    much faster than fancy indexing of a 2-D array.
    """

    _VIEW = {1: np.float32, 2: np.float64, 4: np.complex128}

    def __init__(self, src: np.ndarray, fill=0.0):
        src = np.asarray(src, dtype=F32)
        k, h, w, c = src.shape
        cp = 4 if c == 3 else c
        if cp not in self._VIEW:
            raise ValueError(f"Sprites supports 1-4 channels, not {c}")
        fill = np.broadcast_to(np.asarray(fill, dtype=F32), (c,))
        padded = np.zeros((k, h + 2, w + 2, cp), dtype=F32)
        padded[..., :c] = fill
        padded[:, 1:-1, 1:-1, :c] = src
        self.shape = (k, h, w, c)
        self._cp = cp
        self._items = padded.reshape(-1, cp).view(self._VIEW[cp]).reshape(-1)

    def _gather(self, ids: np.ndarray) -> np.ndarray:
        return self._items.take(ids).view(F32).reshape(ids.shape + (self._cp,))

    def sample(self, idx, a: np.ndarray, size: int, disp: np.ndarray | None = None) -> np.ndarray:
        k, h, w, c = self.shape
        yy, xx = grid(size)
        a = np.asarray(a, dtype=F32)
        sx = a[:, 0, 0, None, None] * xx + a[:, 0, 1, None, None] * yy + a[:, 0, 2, None, None]
        sy = a[:, 1, 0, None, None] * xx + a[:, 1, 1, None, None] * yy + a[:, 1, 2, None, None]
        if disp is not None:
            sx += disp[..., 0]
            sy += disp[..., 1]
        sx += F32(1.0)
        sx *= F32(0.5 * w)
        sx += F32(0.5)
        sy += F32(1.0)
        sy *= F32(0.5 * h)
        sy += F32(0.5)
        px = np.clip(sx, 0.0, w + 1.0, out=sx)
        py = np.clip(sy, 0.0, h + 1.0, out=sy)
        x0 = np.minimum(px.astype(np.int32), w)
        y0 = np.minimum(py.astype(np.int32), h)
        fx = px - x0
        fy = py - y0
        wp = w + 2
        base = y0.astype(np.int64)
        base *= wp
        base += x0
        base += (np.asarray(idx, dtype=np.int64) * ((h + 2) * wp))[:, None, None]
        v00, v01 = self._gather(base), self._gather(base + 1)
        base += wp
        v10, v11 = self._gather(base), self._gather(base + 1)
        fx = fx[..., None]
        fy = fy[..., None]
        v01 -= v00
        v01 *= fx
        v00 += v01  # top row
        v11 -= v10
        v11 *= fx
        v10 += v11  # bottom row
        v10 -= v00
        v10 *= fy
        v00 += v10
        return v00 if c == self._cp else v00[..., :c]


def composite(dst: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Alpha-composite (N,S,S,C+1) premultiplied-free colour over ``dst`` (N,S,S,C), in place."""
    a = rgba[..., -1:]
    dst += (rgba[..., :-1] - dst) * a
    return dst


# ----------------------------------------------------------------------------------------- noise


@functools.lru_cache(maxsize=32)
def _freq(size: int):
    fy = (np.fft.fftfreq(size) * size).astype(F32)[:, None]
    fx = (np.fft.rfftfreq(size) * size).astype(F32)[None, :]
    r = np.sqrt(fx * fx + fy * fy)
    ang = np.arctan2(fy, fx).astype(F32)
    return r.astype(F32), ang


def band_noise(rng, n, size, f0, bw=0.5, theta=None, theta_bw=None, normalise=True) -> np.ndarray:
    """Band-pass filtered Gaussian noise (N, S, S): log-Gaussian radial band around ``f0`` cycles per
    image width (per-image arrays or scalars), optionally oriented around ``theta`` (radians)."""
    r, ang = _freq(size)
    f0 = col(np.broadcast_to(f0, (n,)))
    bw = col(np.broadcast_to(bw, (n,)))
    lr = np.log((r + F32(1e-3)) / f0)
    gain = np.exp(F32(-0.5) * (lr / bw) ** 2)
    if theta is not None:
        d = (ang - col(np.broadcast_to(theta, (n,)))) % F32(np.pi)
        d = np.minimum(d, F32(np.pi) - d)
        gain = gain * np.exp(F32(-0.5) * (d / col(np.broadcast_to(theta_bw, (n,)))) ** 2)
    gain[:, 0, 0] = 0.0
    spec = rng.normal(0.0, 1.0, (2,) + gain.shape).astype(F32)
    z = np.fft.irfft2((spec[0] + 1j * spec[1]).astype(np.complex64) * gain, s=(size, size), axes=(1, 2)).astype(F32)
    if normalise:
        z -= z.mean(axis=(1, 2), keepdims=True)
        z /= z.std(axis=(1, 2), keepdims=True) + F32(1e-6)
    return z


def lowpass_noise(rng, n, size, cutoff) -> np.ndarray:
    """Smooth noise with a Gaussian spectrum of width ``cutoff`` cycles per image; unit std."""
    r, _ = _freq(size)
    gain = np.exp(F32(-0.5) * (r / F32(cutoff)) ** 2)[None]
    gain = np.broadcast_to(gain, (n,) + gain.shape[1:]).copy()
    gain[:, 0, 0] = 0.0
    spec = rng.normal(0.0, 1.0, (2,) + gain.shape).astype(F32)
    z = np.fft.irfft2((spec[0] + 1j * spec[1]).astype(np.complex64) * gain, s=(size, size), axes=(1, 2)).astype(F32)
    z -= z.mean(axis=(1, 2), keepdims=True)
    z /= z.std(axis=(1, 2), keepdims=True) + F32(1e-6)
    return z


def blur(images: np.ndarray, sigma) -> np.ndarray:
    """Gaussian blur of (N, S, S, C) images with per-image sigma (pixels), via FFT with mirror padding."""
    n, s, _, c = images.shape
    sig = np.broadcast_to(np.asarray(sigma, dtype=F32), (n,))
    padded = np.concatenate([images, images[:, ::-1]], axis=1)
    padded = np.concatenate([padded, padded[:, :, ::-1]], axis=2)
    r, _ = _freq(2 * s)
    r = r / F32(2 * s)  # cycles per pixel
    gain = np.exp(F32(-2.0 * np.pi**2) * (r[None] ** 2) * col(sig) ** 2)[..., None]
    spec = np.fft.rfft2(padded, axes=(1, 2))
    out = np.fft.irfft2(spec * gain, s=(2 * s, 2 * s), axes=(1, 2))[:, :s, :s]
    return out.astype(F32)


def box_blur3(images: np.ndarray) -> np.ndarray:
    """A cheap [1, 2, 1] / 4 separable blur with edge replication, (N, S, S, C)."""
    p = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    v = p[:, :-2] * F32(0.25) + p[:, 1:-1] * F32(0.5) + p[:, 2:] * F32(0.25)
    return v[:, :, :-2] * F32(0.25) + v[:, :, 1:-1] * F32(0.5) + v[:, :, 2:] * F32(0.25)


def resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """Area-average (downsampling) or bilinear (upsampling) resize of a float stack (N, H, W, C)."""
    n, h, w, c = images.shape
    if h == size and w == size:
        return images.astype(F32)
    if h % size == 0 and w % size == 0:
        fh, fw = h // size, w // size
        return images.reshape(n, size, fh, size, fw, c).mean(axis=(2, 4)).astype(F32)
    a = affine(np.zeros(n), 1.0, 0.0, 0.0)
    return Sprites(images).sample(np.arange(n), a, size)


# ----------------------------------------------------------------------------------------- data files


def _skimage_data_dir() -> str:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the synthetic generators need scikit-image for its bundled sample images "
            "(pip install scikit-image); no network access is needed"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


@functools.lru_cache(maxsize=None)
def skimage_image(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample images (read from the package, no download), float32
    (H, W, C) in [0, 1]; grey images get C = 1."""
    from PIL import Image

    with Image.open(os.path.join(_skimage_data_dir(), name)) as im:
        im = im.convert("RGB") if im.mode not in ("L", "1", "I;16") else im.convert("L")
        arr = np.asarray(im, dtype=F32) / F32(255.0)
    if arr.ndim == 2:
        arr = arr[..., None]
    arr.setflags(write=False)
    return arr


def crops(rng, bank: np.ndarray, n: int, size: int, flip: bool = True) -> np.ndarray:
    """``n`` random ``size`` crops (with random horizontal flips) from a (K, H, W, C) bank."""
    k, h, w, c = bank.shape
    idx = rng.integers(0, k, n)
    oy = rng.integers(0, h - size + 1, n)
    ox = rng.integers(0, w - size + 1, n)
    ar = np.arange(size)
    xs = ox[:, None] + ar[None]
    if flip:
        f = rng.random(n) < 0.5
        xs = np.where(f[:, None], xs[:, ::-1], xs)
    return bank[idx[:, None, None], (oy[:, None] + ar[None])[:, :, None], xs[:, None, :]]
