"""Batches from the task cache to torch, with the reference's augmentation.

Training: random-resized crop (area fraction ``crop_scale``, aspect ratio ``crop_ratio``, 10 attempts,
central-crop fallback), resize to the model's input size, random horizontal flip. The crop is cut from
the cached central square, or, where the task cache keeps full frames (framing ``full``,
:mod:`nevis_bench.data.images`), from the whole image as the reference cuts it: areas and aspect
ratios are those of the original image, whose width/height ratio undoes the frame's stretch.
Evaluation: the largest central square crop, resized to the input size. Grey images become 3 channels; pixels are
scaled to [-1, 1] (all as in the reference's augmentations).

The crops are computed for a whole batch at once with ``affine_grid``/``grid_sample`` rather than
torchvision's ``RandomResizedCrop``, which draws one set of crop parameters per call: per-image calls
cost more Python time than a small model's training step on CPU.

Batch order and augmentation of step ``s`` are a pure function of (seed, s), so a training loop
resumed at step ``s`` sees exactly the batches an uninterrupted loop would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.data.cache import SplitData


@dataclass(frozen=True)
class AugmentConfig:
    input_size: int = 32
    random_crop: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, 3, H, W) in [-1, 1]; grey is repeated to 3 channels."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().mul_(2.0 / 255.0).sub_(1.0)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def center_square_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Largest central square crop, then bilinear resize (antialiased) to ``size``."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def _sample_crops(n: int, generator: torch.Generator, scale, ratio, attempts: int = 10,
                  image_aspects: torch.Tensor | None = None) -> torch.Tensor:
    """Crop boxes as fractions of the image side: (n, 4) = (width, height, x0, y0), all in [0, 1].

    ``image_aspects``: width / height of each original image whose whole frame was stretched to a
    square (None: square images). A box of area fraction ``s`` and aspect ratio ``r`` in the original
    is ``sqrt(s r / a)`` wide and ``sqrt(s a / r)`` high in the stretched frame; the fallback is the
    largest central square of the original. With ``a = 1`` this is the plain square case exactly.
    """
    area = torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    if image_aspects is None:
        width = torch.sqrt(area * aspect)
        height = torch.sqrt(area / aspect)
        fallback_w = fallback_h = torch.ones(n)
    else:
        a = image_aspects.float()[:, None]
        width = torch.sqrt(area * aspect / a)
        height = torch.sqrt(area * a / aspect)
        fallback_w, fallback_h = torch.clamp(1 / a[:, 0], max=1.0), torch.clamp(a[:, 0], max=1.0)
    valid = (width <= 1) & (height <= 1)
    first_valid = torch.where(valid.any(1), valid.float().argmax(1), torch.full((n,), -1))
    rows = torch.arange(n)
    pick = first_valid.clamp(min=0)
    w = torch.where(first_valid >= 0, width[rows, pick], fallback_w)
    h = torch.where(first_valid >= 0, height[rows, pick], fallback_h)
    u = torch.rand(n, 2, generator=generator)
    x0 = u[:, 0] * (1 - w)
    y0 = u[:, 1] * (1 - h)
    return torch.stack([w, h, x0, y0], dim=1)


def augment(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator,
            image_aspects: torch.Tensor | None = None) -> torch.Tensor:
    """Random-resized crop + flip of a batch (B, 3, H, W), output (B, 3, size, size).

    ``image_aspects``: the batch is of full frames stretched to squares, with these width / height
    ratios of the originals (see :func:`_sample_crops`)."""
    n = x.shape[0]
    size = config.input_size
    if not config.random_crop:
        x = center_square_resize(x, size)
        if config.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x
    boxes = _sample_crops(n, generator, config.crop_scale, config.crop_ratio, image_aspects=image_aspects)
    w, h, x0, y0 = boxes.unbind(1)
    sign = torch.ones(n)
    if config.flip:
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    # affine_grid works in [-1, 1] coordinates: scale by the box size, shift to the box centre.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = 2 * x0 + w - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * y0 + h - 1
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _labels_tensor(labels: np.ndarray | None) -> torch.Tensor | None:
    if labels is None:  # the split of a predict event: images only
        return None
    if labels.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32))
    return torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))


class TrainBatches:
    """Deterministic shuffled batches: an epoch permutation per (seed, epoch), augmentation per (seed, step)."""

    def __init__(self, split: SplitData, batch_size: int, augment_config: AugmentConfig, seed: int):
        if len(split) == 0:
            raise ValueError("cannot train on an empty split")
        self.split = split
        self.batch_size = min(batch_size, len(split))
        self.steps_per_epoch = len(split) // self.batch_size
        self.augment_config = augment_config
        self.seed = seed
        self._epoch = -1
        self._order: np.ndarray | None = None

    def indices(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.split))
            self._epoch = epoch
        start = position * self.batch_size
        return np.sort(self._order[start : start + self.batch_size])

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, 1 << 20, step]).integers(2**62)))
        if self.augment_config.random_crop and getattr(self.split, "has_frames", False):
            frames, aspects, labels = self.split.take_frames(self.indices(step))  # crops from the full image
            x = augment(to_model_input(frames), self.augment_config, generator, torch.from_numpy(aspects))
        else:
            images, labels = self.split.take(self.indices(step))
            x = augment(to_model_input(images), self.augment_config, generator)
        return x, _labels_tensor(labels)


def eval_batches(split: SplitData, batch_size: int, input_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """(indices, inputs, labels) over the split in order, with the evaluation preprocessing.

    ``labels`` is None for the split of a predict event, whose labels a learner never sees."""
    n = len(split)
    for start in range(0, n, batch_size):
        indices = np.arange(start, min(start + batch_size, n))
        images, labels = split.take(indices)
        yield indices, center_square_resize(to_model_input(images), input_size), _labels_tensor(labels)


class PrefetchingBatches:
    """The batches of steps ``start, start+1, ...`` of a :class:`TrainBatches`, made ahead in a thread.

    A background thread builds up to ``depth`` batches ahead of the training loop (reading the task
    cache, decoding, augmenting; torch's kernels release the GIL), optionally in pinned host memory
    so the copy to the GPU can be asynchronous (``non_blocking=True``). Batches are a pure function of
    (seed, step), so the results equal the synchronous loader's exactly. TensorFlow is never involved:
    the thread only reads the task cache's memory maps.

    Use as an iterator of ``(step, x, y)`` and call :meth:`close` (or use ``with``) when done early.
    """

    def __init__(self, batches: TrainBatches, start: int, stop: int, depth: int = 2, pin_memory: bool = False):
        import queue
        import threading

        self.batches, self.start, self.stop = batches, start, stop
        self.pin_memory = pin_memory
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._closed = threading.Event()
        self._next = start
        self._thread = threading.Thread(target=self._work, name="nevis-bench-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for step in range(self.start, self.stop):
                if self._closed.is_set():
                    return
                x, y = self.batches.batch(step)
                if self.pin_memory:
                    x, y = x.pin_memory(), y.pin_memory()
                if not self._put((step, x, y, None)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put((None, None, None, error))

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        if self._next >= self.stop:
            raise StopIteration
        step, x, y, error = self._queue.get()
        if error is not None:
            self.close()
            raise error
        assert step == self._next, (step, self._next)
        self._next += 1
        return step, x, y

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SynchronousBatches:
    """The same interface as :class:`PrefetchingBatches`, building each batch when asked."""

    def __init__(self, batches: TrainBatches, start: int, stop: int, pin_memory: bool = False):
        self.batches, self._next, self.stop, self.pin_memory = batches, start, stop, pin_memory

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        if self._next >= self.stop:
            raise StopIteration
        step = self._next
        x, y = self.batches.batch(step)
        if self.pin_memory:
            x, y = x.pin_memory(), y.pin_memory()
        self._next += 1
        return step, x, y

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def step_batches(batches: TrainBatches, start: int, stop: int, prefetch: int = 0, pin_memory: bool = False):
    """Batches of steps ``[start, stop)``: prefetched ``prefetch`` ahead in a thread, or synchronous (0)."""
    if prefetch > 0:
        return PrefetchingBatches(batches, start, stop, prefetch, pin_memory)
    return SynchronousBatches(batches, start, stop, pin_memory)
