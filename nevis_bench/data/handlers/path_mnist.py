"""Colorectal histology MNIST (``nevis:path_mnist``): 8 tissue types, 28 x 28 RGB.

File: the Kaggle download ``colorectal-histology-mnist.zip`` (dataset kmader/colorectal-histology-mnist),
of which only ``hmnist_28_28_RGB.csv`` is read: a header, then one image per row with columns
``pixel0000`` ... ``pixel2351`` (28 x 28 x 3, row major, channel last) and ``label`` (1..8). Label:
``label - 1``. Order: row order; ids ``...csv:row N`` (N from 0).

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over rows.
"""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter

CSV_NAME = "hmnist_28_28_RGB.csv"
CLASS_NAMES = ["tumor", "stroma", "complex", "lympho", "debris", "mucosa", "adipose", "empty"]
PIXELS = 28 * 28 * 3


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("colorectal-histology-mnist.zip")

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with zipfile.ZipFile(archive) as zf:
            try:
                handle = zf.open(CSV_NAME)
            except KeyError as error:
                raise HandlerError(f"path_mnist: {archive.name} lacks {CSV_NAME}") from error
            with handle, io.TextIOWrapper(handle, encoding="utf-8") as text:
                reader = csv.reader(text)
                header = [h.strip().strip('"') for h in next(reader)]
                try:
                    columns = [header.index(f"pixel{i:04d}") for i in range(PIXELS)]
                    label_column = header.index("label")
                except ValueError as error:
                    raise HandlerError(f"path_mnist: {CSV_NAME} header lacks {error}") from error
                for row_number, row in enumerate(reader):
                    if not row:
                        continue
                    pixels = np.array([int(float(row[c])) for c in columns], dtype=np.uint8).reshape(28, 28, 3)
                    label = int(float(row[label_column])) - 1
                    where = f"{archive.name}:{CSV_NAME}:row {row_number}"
                    yield Example(splitter.next(), where, Image.fromarray(pixels, "RGB"), label)

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="path_mnist",
    dataset_key="path_mnist",
    artefacts=(Artefact("colorectal-histology-mnist.zip"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the rows of hmnist_28_28_RGB.csv",
    website="https://www.kaggle.com/kmader/colorectal-histology-mnist",
    licence="CC BY 4.0 (Kather et al., Zenodo 53169)",
    citation="J. N. Kather et al., Multi-class texture analysis in colorectal cancer histology, Scientific Reports 2016",
    manual_step=(
        "download https://www.kaggle.com/kmader/colorectal-histology-mnist (Kaggle login; `kaggle datasets "
        "download kmader/colorectal-histology-mnist`) and place colorectal-histology-mnist.zip in DIR "
        "(reference md5 e03501016bd54719567dfb954fe982fe)"
    ),
)
