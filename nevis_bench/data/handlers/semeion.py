"""Semeion handwritten digits (``nevis:semeion``): 10 classes, 16 x 16 binary grey images.

File: ``semeion.data`` (UCI), one digit per line: 256 pixel values (``0.0000`` or ``1.0000``, row
major) followed by the one-hot label (10 integers). Pixels become ``int(value) * 255``; the label is
the position of the 1. Order: file order; ids ``semeion.data:line N``.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the
lines.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter

SIDE = 16
CLASSES = 10


def parse_line(line: str, where: str) -> tuple[np.ndarray, int]:
    """(16 x 16 uint8 image, label) of one line of semeion.data."""
    fields = line.split()
    if len(fields) < SIDE * SIDE + CLASSES:
        raise HandlerError(f"semeion: {where} has {len(fields)} fields, expected {SIDE * SIDE + CLASSES}")
    try:
        pixels = np.array([int(float(v)) for v in fields[: SIDE * SIDE]], dtype=np.uint8) * 255
        one_hot = [int(v) for v in fields[SIDE * SIDE : SIDE * SIDE + CLASSES]]
    except ValueError as error:
        raise HandlerError(f"semeion: cannot parse {where}: {error}") from error
    return pixels.reshape(SIDE, SIDE), int(np.argmax(one_hot))


def convert(ctx: HandlerContext) -> HandlerOutput:
    path = ctx.file("semeion.data")

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with open(path, encoding="ascii") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name}:line {number}"
                pixels, label = parse_line(line, where)
                yield Example(splitter.next(), where, Image.fromarray(pixels, "L"), label)

    return HandlerOutput(examples(), [str(d) for d in range(CLASSES)])


HANDLER = Handler(
    name="semeion",
    dataset_key="semeion",
    artefacts=(
        Artefact(
            "semeion.data",
            "https://archive.ics.uci.edu/ml/machine-learning-databases/semeion/semeion.data",
            "cb545d371d2ce14ec121470795a77432",
        ),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the lines of semeion.data",
    website="https://archive.ics.uci.edu/ml/datasets/semeion+handwritten+digit",
    licence="CC BY 4.0 (UCI Machine Learning Repository)",
    citation="Semeion Research Center of Sciences of Communication, Semeion Handwritten Digit Data Set (UCI), 2008",
)
