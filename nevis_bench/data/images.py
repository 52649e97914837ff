"""Image helpers shared by the TFDS and prepared sources: resizing to the stored size, PNG, hashing.

Stored images (the task cache) are square ``S x S`` uint8 arrays in HWC layout; grey datasets keep one
channel, colour datasets have three. Every source turns an image of any size into that form the same
way (:func:`square_resize`):

1. convert to the dataset's mode (``L`` for grey, ``RGB`` for colour; alpha is dropped, palettes are
   expanded);
2. take the largest central square (side ``min(H, W)``; an odd remainder puts the extra row/column
   at the bottom/right);
3. resize that square to ``S x S`` with Pillow's bilinear filter, which averages over the source
   footprint when shrinking (antialiased), so it matches "shorter side to S, then central crop"
   up to rounding.

This is the reference's evaluation preprocessing (largest central square crop, then resize) applied
once, at cache time, instead of at every evaluation.

Framing ``full`` (``--preset reference``, ``-o image_framing=full``) keeps, beside those squares, each
image's whole frame (:func:`frame_resize`: the full image resized to ``S x S``, its width/height ratio
kept as a number), so that training crops are drawn from the full image as the reference's
``random_crop_via_cropped_window_and_resize`` draws them (:mod:`nevis_bench.data.loader`). Evaluation
still reads the central squares.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

RESIZE_ID = "center-square-bilinear-v1"  # part of every cache fingerprint; change it when square_resize changes
CENTER_SQUARE, FULL = "center-square", "full"
IMAGE_FRAMINGS = (CENTER_SQUARE, FULL)
FRAME_ID = "full-frame-bilinear-v1"  # added to the fingerprint of a framed cache entry; change with frame_resize


def mode_for(channels: int) -> str:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return "L" if channels == 1 else "RGB"


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """``image`` in mode ``L`` (channels=1) or ``RGB`` (channels=3)."""
    mode = mode_for(channels)
    if image.mode == mode:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits instead of clipping
        array = np.asarray(image, dtype=np.float64)
        top = max(float(array.max()), 1.0)
        image = Image.fromarray(np.clip(array * (255.0 / (65535.0 if top > 255 else 255.0)), 0, 255).astype(np.uint8), "L")
        return image if mode == "L" else image.convert(mode)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert(mode)


def square_resize(image: Image.Image | np.ndarray, size: int, channels: int) -> np.ndarray:
    """Central square crop resized to ``size x size``: uint8 array ``(size, size, channels)``."""
    if isinstance(image, np.ndarray):
        image = array_to_image(image)
    image = to_mode(image, channels)
    width, height = image.size
    side = min(width, height)
    if side == 0:
        raise ValueError("empty image")
    left, top = (width - side) // 2, (height - side) // 2
    if (width, height) != (side, side):
        image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        array = array[:, :, None]
    return array


def frame_resize(image: Image.Image | np.ndarray, size: int, channels: int) -> tuple[np.ndarray, float]:
    """The whole image resized to ``size x size`` (stretched) and its width / height ratio, which undoes
    the stretch when a crop is cut from it (:func:`nevis_bench.data.loader.augment`)."""
    if isinstance(image, np.ndarray):
        image = array_to_image(image)
    image = to_mode(image, channels)
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError("empty image")
    if (width, height) != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        array = array[:, :, None]
    return array, width / height


def framed_splits(images_of: dict, labels_ids: dict, size: int, channels: int) -> dict:
    """``{split: (squares, labels, ids, frames, aspects)}`` from ``{split: list of images}`` and
    ``{split: (labels, ids)}``: what a source's ``build_full`` returns."""
    out = {}
    for split, images in images_of.items():
        squares = [square_resize(image, size, channels) for image in images]
        framed = [frame_resize(image, size, channels) for image in images]
        empty = np.zeros((0, size, size, channels), np.uint8)
        out[split] = (
            np.stack(squares) if squares else empty, *labels_ids[split],
            np.stack([f for f, _ in framed]) if framed else empty,
            np.asarray([a for _, a in framed], dtype=np.float32),
        )
    return out


def array_to_image(array: np.ndarray) -> Image.Image:
    """A PIL image from a uint8 ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3|4)`` array."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA")
    raise ValueError(f"cannot make an image of an array of shape {array.shape}")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel_sha256(image: Image.Image) -> str:
    """Hash of the decoded pixels (mode, size, bytes): stable across PNG encoders and Pillow versions."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()
