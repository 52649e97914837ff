"""Pneumonia chest X-ray (``nevis:pneumonia_chest_xray``): NORMAL vs PNEUMONIA, grey X-rays.

File: the Kaggle download ``chest-xray-pneumonia.zip`` (dataset paultimothymooney/chest-xray-pneumonia),
which holds ``chest_xray/chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/<name>.jpeg``; only that tree
is read, as the reference (other copies such as ``chest_xray/{train,val,test}/`` and ``__MACOSX``
entries are ignored). Label: the folder, NORMAL -> 0, PNEUMONIA -> 1. Images converted to grey. Order: sorted
member names.

Split rule (reference): official train drawn categorically 0.80/0.20 into train/dev (RandomState(0));
dev_test = the official val folder; test = the official test folder.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import TRAIN_AND_DEV_ONLY, CategoricalSplitter, parent_name, zip_names

CLASS_NAMES = ["NORMAL", "PNEUMONIA"]
ROOT = "chest_xray/chest_xray/"
PARTS = {"train": None, "val": "dev_test", "test": "test"}  # folder -> fixed split (None: drawn)


def place(name: str) -> tuple[str, int] | None:
    """(official part, label) of a member, None when it is not an image of the used tree."""
    if not name.startswith(ROOT) or "__MACOSX" in name or name.endswith(("metadata.xlsx", "README.md.txt")):
        return None
    part = name[len(ROOT):].split("/")[0]
    folder = parent_name(name)
    if part not in PARTS or folder not in CLASS_NAMES:
        return None
    return part, CLASS_NAMES.index(folder)


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("chest-xray-pneumonia.zip")

    def examples():
        splitter = CategoricalSplitter(TRAIN_AND_DEV_ONLY)
        with zipfile.ZipFile(archive) as zf:
            by_part = {part: [] for part in PARTS}
            for name in zip_names(zf):
                placed = place(name)
                if placed:
                    by_part[placed[0]].append(name)
            for part, fixed in PARTS.items():  # the reference emits train, then val, then test
                for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in by_part[part]), archive.name):
                    yield Example(fixed or splitter.next(), example_id, image.convert("L"), place(name)[1])

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="pneumonia_chest_xray",
    dataset_key="pneumonia_chest_x_ray",
    artefacts=(Artefact("chest-xray-pneumonia.zip"),),
    convert=convert,
    split_rule="official train: categorical train/dev 0.80/0.20 (RandomState(0)); dev_test: official val; test: official test",
    website="https://www.kaggle.com/paultimothymooney/chest-xray-pneumonia",
    licence="CC BY 4.0 (as stated on the Kaggle page; data of Kermany et al., Mendeley Data)",
    citation="D. S. Kermany et al., Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning, Cell 2018",
    manual_step=(
        "download https://www.kaggle.com/paultimothymooney/chest-xray-pneumonia (Kaggle login; `kaggle datasets "
        "download paultimothymooney/chest-xray-pneumonia`) and place chest-xray-pneumonia.zip in DIR "
        "(reference md5 930763e3580e76de9c2c849ec933b5d6)"
    ),
)
