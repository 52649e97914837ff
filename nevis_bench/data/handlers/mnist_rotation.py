"""MNIST-rotation (``nevis:mnist_rotation``): MNIST digits, training images randomly rotated, 28 x 28 grey.

Files: the four MNIST IDX files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``. Each training digit ``i`` (file order) is
rotated by ``angle_i`` degrees with ``scipy.ndimage.rotate(image, angle_i, reshape=False)`` (cubic
spline, zero fill), where ``angle_0, angle_1, ...`` are successive ``randint(0, 360)`` draws of
``np.random.RandomState(99999)``. Test digits are not rotated (as the reference). Ids
``<file>:<index>``.

Split rule (reference): official training images drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0)); test = the official test set.
Deviation: the reference drew the angles from NumPy's global random state inside a generator that it
consumed once per split, so an image's angle depended on how many passes had run before; we draw one
angle per training image in file order, which equals the reference's first pass.
"""

from __future__ import annotations

import gzip

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter

SEED = 99_999
SIDE = 28
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(ctx: HandlerContext, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(ctx.file(images_name), "rb") as handle:
        images = np.frombuffer(handle.read(), np.uint8, offset=16)
    with gzip.open(ctx.file(labels_name), "rb") as handle:
        labels = np.frombuffer(handle.read(), np.uint8, offset=8)
    if images.size % (SIDE * SIDE) or images.size // (SIDE * SIDE) != labels.size:
        raise HandlerError(f"mnist_rotation: {images_name} and {labels_name} do not hold the same number of 28 x 28 digits")
    return images.reshape(-1, SIDE, SIDE), labels


def rotated(image: np.ndarray, angle: int) -> np.ndarray:
    import scipy.ndimage

    return scipy.ndimage.rotate(image, angle, reshape=False)


def convert(ctx: HandlerContext) -> HandlerOutput:
    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        angles = np.random.RandomState(SEED)
        for part, (images_name, labels_name) in FILES.items():
            images, labels = read_idx(ctx, images_name, labels_name)
            for index, (pixels, label) in enumerate(zip(images, labels)):
                if part == "train":
                    pixels = rotated(pixels, angles.randint(0, 360))
                split = splitter.next() if part == "train" else "test"
                yield Example(split, f"{images_name}:{index}", Image.fromarray(np.ascontiguousarray(pixels), "L"), int(label))

    return HandlerOutput(examples(), [str(d) for d in range(10)])


_BASE = "http://yann.lecun.com/exdb/mnist/"
HANDLER = Handler(
    name="mnist_rotation",
    dataset_key="mnist_rot",
    artefacts=tuple(
        Artefact(name, _BASE + name, md5)
        for name, md5 in (
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        )
    ),
    convert=convert,
    split_rule="official train (rotated, RandomState(99999) angles): categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0)); test: official test, unrotated",
    website="http://yann.lecun.com/exdb/mnist/",
    licence="CC BY-SA 3.0 (MNIST, as stated by its TFDS/torchvision mirrors)",
    citation="M. Murugan and K. V. Subrahmanyam, SO(2)-equivariance in Neural networks using Fourier nonlinearity, 2019",
    manual_step="if yann.lecun.com refuses the download, any mirror of the four original MNIST .gz files (same md5) will do",
)
