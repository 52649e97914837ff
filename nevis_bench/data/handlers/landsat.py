"""Statlog (Landsat satellite) (``nevis:landsat``): 7 land-cover classes, 3 x 3 pixel patches.

Files: ``sat.trn`` (4,435 rows) and ``sat.tst`` (2,000 rows), UCI text tables: 36 integers per row,
the four spectral bands of each pixel of a 3 x 3 neighbourhood (pixels row by row, top-left first),
then the class 1..7 (6, "mixture class", does not occur in the data). Order: file order.

Image (reference): the 3 x 3 patch of the first three bands as an RGB image (the fourth band,
near-infrared, is dropped); label = class - 1.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over
``sat.trn``; test = ``sat.tst``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, split_examples

CLASS_NAMES = [
    "red soil", "cotton crop", "grey soil", "damp grey soil", "soil with vegetation stubble", "mixture class",
    "very damp grey soil",
]


def parse_row(line: str, where: str) -> tuple[Image.Image, int]:
    """The RGB 3 x 3 patch and 0-based label of one table row."""
    try:
        values = [int(v) for v in line.split()]
    except ValueError as error:
        raise HandlerError(f"landsat: {where}: {error}") from error
    if len(values) != 37 or not 1 <= values[-1] <= len(CLASS_NAMES) or not all(0 <= v <= 255 for v in values[:-1]):
        raise HandlerError(f"landsat: {where} is not 36 band values 0..255 and a class 1..7: {line.strip()!r}")
    patch = np.asarray(values[:-1], dtype=np.uint8).reshape(3, 3, 4)[:, :, :3]
    return Image.fromarray(np.ascontiguousarray(patch), "RGB"), values[-1] - 1


def convert(ctx: HandlerContext) -> HandlerOutput:
    train, test = ctx.file("sat.trn"), ctx.file("sat.tst")

    def rows(path):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                where = f"{path.name}:{number}"
                yield (where, *parse_row(line, where))

    def examples():
        yield from split_examples(rows(train), CategoricalSplitter(FOR_TRAIN))
        yield from split_examples(rows(test), "test")

    return HandlerOutput(examples(), list(CLASS_NAMES))


_BASE = "https://archive.ics.uci.edu/ml/machine-learning-databases/statlog/satimage/"
HANDLER = Handler(
    name="landsat",
    dataset_key="landsat",
    artefacts=(
        Artefact("sat.trn", _BASE + "sat.trn", "2c5ba2900da0183cab2c41fdb279fa5b"),
        Artefact("sat.tst", _BASE + "sat.tst", "02c995991fecc864e809b2c4c42cd983"),
    ),
    convert=convert,
    split_rule="sat.trn: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), file order; test: sat.tst",
    website="https://archive.ics.uci.edu/ml/datasets/Statlog+(Landsat+Satellite)",
    licence="UCI Machine Learning Repository (CC BY 4.0); see the website",
    citation="D. Dua and C. Graff, UCI Machine Learning Repository, 2019 (Statlog Landsat Satellite, A. Srinivasan, 1993)",
)
