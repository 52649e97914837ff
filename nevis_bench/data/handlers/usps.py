"""USPS handwritten digits (``nevis:usps``): 10 classes, 16 x 16 grey.

Files: ``usps.bz2`` (official train, 7,291 digits) and ``usps.t.bz2`` (official test, 2,007), LIBSVM
format: ``<label 1..10> <index>:<value> ...`` with values in [-1, 1]. Pixels are mapped to
``uint8((value + 1) / 2 * 255)`` (truncated, as the reference) and labels to ``label - 1``.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over
the official train file; test = the official test file.
Deviation: entries are placed by their LIBSVM index (a missing index is the value 0); the reference
assumed every line lists all 256 values in order.
"""

from __future__ import annotations

import bz2

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, split_examples

SIDE = 16


def parse_line(line: str, where: str) -> tuple[np.ndarray, int]:
    """(16 x 16 uint8 image, label 0..9) of one LIBSVM line."""
    fields = line.split()
    try:
        label = int(float(fields[0])) - 1
        values = np.zeros(SIDE * SIDE, dtype=np.float64)
        for field in fields[1:]:
            index, value = field.split(":")
            values[int(index) - 1] = float(value)
    except (ValueError, IndexError) as error:
        raise HandlerError(f"usps: cannot parse {where}: {error}") from error
    if not 0 <= label <= 9:
        raise HandlerError(f"usps: label {label + 1} out of range 1..10 at {where}")
    pixels = ((values + 1.0) / 2.0 * 255.0).astype(np.uint8)
    return pixels.reshape(SIDE, SIDE), label


def _lines(ctx: HandlerContext, filename: str):
    path = ctx.file(filename)
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                where = f"{path.name}:line {number}"
                pixels, label = parse_line(line, where)
                yield where, Image.fromarray(pixels, "L"), label


def convert(ctx: HandlerContext) -> HandlerOutput:
    def examples():
        yield from split_examples(_lines(ctx, "usps.bz2"), CategoricalSplitter(FOR_TRAIN))
        yield from split_examples(_lines(ctx, "usps.t.bz2"), "test")

    return HandlerOutput(examples(), [str(d) for d in range(10)])


HANDLER = Handler(
    name="usps",
    dataset_key="usps",
    artefacts=(
        Artefact("usps.bz2", "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.bz2", "ec16c51db3855ca6c91edd34d0e9b197"),
        Artefact("usps.t.bz2", "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.t.bz2", "8ea070ee2aca1ac39742fdd1ef5ed118"),
    ),
    convert=convert,
    split_rule="train/dev/dev_test: categorical 0.70/0.15/0.15 (RandomState(0)) over usps.bz2; test: usps.t.bz2",
    website="https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html#usps",
)
