"""Caltech 101 silhouettes, 28 x 28 (``nevis:silhouettes_28``): 101 classes, binary images.

Files (B. Marlin's release, MATLAB v5): ``caltech101_silhouettes_28.mat`` (``classnames``: the 101
class names) and ``caltech101_silhouettes_28_split1.mat`` (``{train,val,test}_data``: one row of 784
values in {0, 1} per image; ``{train,val,test}_labels``: class numbers from 1). An image is its row
reshaped to 28 x 28 in row-major order, times 255 (as the reference; MATLAB's column-major reading
would give the transposed image); its class id is its number minus one. Order: row order. Example ids:
``<split file>:<part>#<row>``.

Split rule (reference): official train rows -> train/dev by categorical 0.80/0.20 (RandomState(0));
official val -> dev_test; official test -> test.
"""

from __future__ import annotations

import numpy as np
import scipy.io
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import TRAIN_AND_DEV_ONLY, CategoricalSplitter

SIZE = 28
PARTS = (("train", None), ("val", "dev_test"), ("test", "test"))


def load_mat(path, where: str) -> dict:
    try:
        return scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several types for non-MATLAB files
        raise HandlerError(f"silhouettes_{SIZE}: cannot read {where} as a MATLAB file: {error}") from error


def names_of(array) -> list[str]:
    return [str(np.asarray(item).ravel()[0]) if np.asarray(item).size else "" for item in np.asarray(array).ravel()]


def convert(ctx: HandlerContext) -> HandlerOutput:
    full = ctx.file(f"caltech101_silhouettes_{SIZE}.mat")
    split_file = ctx.file(f"caltech101_silhouettes_{SIZE}_split1.mat")
    classes = names_of(load_mat(full, full.name)["classnames"])
    data = load_mat(split_file, split_file.name)

    def examples():
        splitter = CategoricalSplitter(TRAIN_AND_DEV_ONLY)
        for part, fixed in PARTS:
            images = np.asarray(data[f"{part}_data"])
            labels = np.asarray(data[f"{part}_labels"]).reshape(-1).astype(int) - 1
            if len(images) != len(labels) or images.shape[1] != SIZE * SIZE:
                raise HandlerError(
                    f"silhouettes_{SIZE}: {split_file.name} {part}_data has shape {images.shape}, labels {labels.shape}"
                )
            for row, (pixels, label) in enumerate(zip(images, labels)):
                image = Image.fromarray((np.asarray(pixels, dtype=np.float64).reshape(SIZE, SIZE) * 255).astype(np.uint8), "L")
                yield Example(fixed or splitter.next(), f"{split_file.name}:{part}#{row}", image, int(label))

    return HandlerOutput(examples(), classes)


_BASE = "https://people.cs.umass.edu/~marlin/data/"
HANDLER = Handler(
    name="silhouettes_28",
    dataset_key="caltech_101_silhouettes",
    artefacts=(
        Artefact("caltech101_silhouettes_28.mat", _BASE + "caltech101_silhouettes_28.mat", "1432d2809e8bf111f1104a234731ddb1"),
        Artefact("caltech101_silhouettes_28_split1.mat", _BASE + "caltech101_silhouettes_28_split1.mat", "4483e9c14b188fd09937f9ea6f9ea777"),
    ),
    convert=convert,
    split_rule="official train -> categorical 0.80/0.20 (RandomState(0)) train/dev; official val -> dev_test; official test -> test",
    website="https://people.cs.umass.edu/~marlin/data.shtml",
    licence="research use; see the dataset's website for its terms",
    citation="B. Marlin, K. Swersky, B. Chen, N. de Freitas, Inductive principles for restricted Boltzmann machine learning, AISTATS 2010",
)
