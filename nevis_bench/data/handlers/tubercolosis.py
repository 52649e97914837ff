"""Tuberculosis chest X-ray (``nevis:tubercolosis``): Normal vs Tuberculosis X-rays.

File: the Kaggle download ``tuberculosis-tb-chest-xray-dataset.zip`` (dataset
tawsifurrahman/tuberculosis-tb-chest-xray-dataset), which holds
``TB_Chest_Radiography_Database/{Normal,Tuberculosis}/<name>.png`` plus ``*.metadata.xlsx`` and
``README.md.txt`` (ignored). Label: the image's folder, Normal -> 0, Tuberculosis -> 1. Order: sorted
member names. (The reference converts to RGB; the catalogue stores the task as grey, and the prepared
images follow the catalogue.)

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)).
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples, parent_name

CLASS_NAMES = ["Normal", "Tuberculosis"]
IGNORED_SUFFIXES = ("metadata.xlsx", "README.md.txt")


def label_of(name: str) -> int | None:
    if name.endswith(IGNORED_SUFFIXES):
        return None
    folder = parent_name(name)
    return CLASS_NAMES.index(folder) if folder in CLASS_NAMES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("tuberculosis-tb-chest-xray-dataset.zip")
    notes = {"files_outside_class_folders": 0}

    def counted_label(name: str) -> int | None:  # called once per member, when the zip is opened
        label = label_of(name)
        if label is None:
            notes["files_outside_class_folders"] += not name.endswith(IGNORED_SUFFIXES)
        return label

    return HandlerOutput(labelled_examples(ctx, [archive], counted_label), list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="tubercolosis",
    dataset_key="tubercolosis",
    artefacts=(Artefact("tuberculosis-tb-chest-xray-dataset.zip"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the images, sorted names",
    website="https://www.kaggle.com/tawsifurrahman/tuberculosis-tb-chest-xray-dataset",
    licence="see the Kaggle page (Rahman et al.; cite the paper below)",
    citation="T. Rahman et al., Reliable Tuberculosis Detection using Chest X-ray with Deep Learning, Segmentation and Visualization, IEEE Access 2020",
    manual_step=(
        "download https://www.kaggle.com/tawsifurrahman/tuberculosis-tb-chest-xray-dataset (Kaggle login; "
        "`kaggle datasets download tawsifurrahman/tuberculosis-tb-chest-xray-dataset`) and place "
        "tuberculosis-tb-chest-xray-dataset.zip in DIR (reference md5 3abdda8a1100ff97c9dce7cc2413d941)"
    ),
)
