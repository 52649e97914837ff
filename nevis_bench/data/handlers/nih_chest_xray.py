"""NIH ChestX-ray14 (``nevis:nih_chest_xray``): 15 findings (14 diseases + "No Finding"), multi-label, grey.

File: the Kaggle download ``data.zip`` (dataset nih-chest-xrays/data), which holds
``Data_Entry_2017.csv`` (a header, then ``<image>,<finding>|<finding>...,...``), the official lists
``train_val_list.txt`` and ``test_list.txt`` (one image name per line), PDFs and
``images_NNN/images/<image>.png``. Labels: the image's findings mapped by the reference's list
(:data:`CLASS_NAMES`; "No Finding" is class 14). Order: sorted member names.

Split rule (reference): images of ``train_val_list.txt`` drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0)); test = the images of ``test_list.txt``. Images in neither list
are not used.
"""

from __future__ import annotations

import posixpath
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, zip_names

CLASS_NAMES = [
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
    "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia", "No Finding",
]
LABEL_FILE = "Data_Entry_2017.csv"
LISTS = {"train": "train_val_list.txt", "test": "test_list.txt"}


def parse_entries(text: str) -> dict[str, list[int]]:
    """image name -> class ids, from Data_Entry_2017.csv."""
    labels = {}
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            labels[fields[0].strip()] = [CLASS_NAMES.index(f.strip()) for f in fields[1].split("|")]
        except (IndexError, ValueError) as error:
            raise HandlerError(f"nih_chest_xray: line {number} of {LABEL_FILE}: {error}") from error
    return labels


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("data.zip")

    def examples():
        with zipfile.ZipFile(archive) as zf:
            names = zip_names(zf)
            try:
                labels = parse_entries(zf.read(LABEL_FILE).decode("utf-8"))
                part_of = {}
                for part, list_name in LISTS.items():
                    for line in zf.read(list_name).decode("utf-8").splitlines():
                        if line.strip():
                            part_of.setdefault(line.strip(), part)
            except KeyError as error:
                raise HandlerError(f"nih_chest_xray: {archive.name} lacks {error}") from error
            used = [n for n in names if n.lower().endswith(".png") and posixpath.basename(n) in part_of]
            splitter = CategoricalSplitter(FOR_TRAIN)
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in used), archive.name):
                base = posixpath.basename(name)
                if base not in labels:
                    raise HandlerError(f"nih_chest_xray: {name} has no line in {LABEL_FILE}")
                split = splitter.next() if part_of[base] == "train" else "test"
                yield Example(split, example_id, image, labels[base])

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="nih_chest_xray",
    dataset_key="nih_chest_x_ray",
    artefacts=(Artefact("data.zip"),),
    convert=convert,
    split_rule="train_val_list.txt: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), sorted names); test: test_list.txt",
    website="https://www.kaggle.com/datasets/nih-chest-xrays/data",
    licence="CC0 (NIH Clinical Center; acknowledge the NIH CC as the Kaggle page asks)",
    citation="X. Wang et al., ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks, CVPR 2017",
    manual_step=(
        "download https://www.kaggle.com/datasets/nih-chest-xrays/data (Kaggle login; `kaggle datasets download "
        "nih-chest-xrays/data`, about 45 GB) and place data.zip in DIR (reference md5 ddd3acbfa23adf60ac08312b3c4040e2)"
    ),
)
