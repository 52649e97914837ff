"""ISBI-ISIC 2017 melanoma classification (``nevis:melanoma``): 3 classes, dermoscopy RGB images.

Files: ``ISIC-2017_{Training,Validation,Test_v2}_Data.zip`` (images
``ISIC-2017_<part>_Data/<image id>.jpg`` plus superpixel files, ignored) and
``ISIC-2017_{Training,Validation,Test_v2}_Part3_GroundTruth.csv`` (header, then
``image_id,melanoma,seborrheic_keratosis``). Label: melanoma -> 0, seborrheic keratosis -> 1, otherwise
benign nevus -> 2. Order within a split: sorted member names.

Split rule (reference): the official training set is permuted with ``np.random.default_rng(1)`` (rows
of its CSV) and cut 80/20 into train/dev; dev_test = the official validation set; test = the official
test set.
"""

from __future__ import annotations

import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import zip_names

CLASS_NAMES = ["melanoma", "seborrheic keratosis", "benign nevi"]
TRAIN_FRACTION = 0.8
PARTS = {  # split(s) -> (zip, csv)
    "train": ("ISIC-2017_Training_Data.zip", "ISIC-2017_Training_Part3_GroundTruth.csv"),
    "dev_test": ("ISIC-2017_Validation_Data.zip", "ISIC-2017_Validation_Part3_GroundTruth.csv"),
    "test": ("ISIC-2017_Test_v2_Data.zip", "ISIC-2017_Test_v2_Part3_GroundTruth.csv"),
}


def parse_ground_truth(text: str, zip_name: str, where: str) -> list[tuple[str, int]]:
    """(member path, label) per CSV row, in file order."""
    root = zip_name[: -len(".zip")]
    pairs = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 3:
            raise HandlerError(f"melanoma: line {number} of {where} is not image_id,melanoma,seborrheic_keratosis: {line!r}")
        try:
            melanoma, keratosis = float(fields[1]) == 1, float(fields[2]) == 1
        except ValueError as error:
            raise HandlerError(f"melanoma: line {number} of {where}: {error}") from error
        if melanoma and keratosis:
            raise HandlerError(f"melanoma: line {number} of {where} has two classes: {line!r}")
        pairs.append((f"{root}/{fields[0]}.jpg", 0 if melanoma else 1 if keratosis else 2))
    return pairs


def train_dev_assignment(pairs: list[tuple[str, int]]) -> dict[str, str]:
    """member path -> train | dev: rows permuted by default_rng(1), first 80% train."""
    order = np.random.default_rng(1).permutation(len(pairs))
    cut = int(len(pairs) * TRAIN_FRACTION)
    return {pairs[i][0]: ("train" if position < cut else "dev") for position, i in enumerate(order)}


def convert(ctx: HandlerContext) -> HandlerOutput:
    notes: dict = {"missing_from_archive": 0}

    def examples():
        for part, (zip_name, csv_name) in PARTS.items():
            csv_path = ctx.file(csv_name)
            pairs = parse_ground_truth(csv_path.read_text(encoding="utf-8-sig"), zip_name, csv_path.name)
            labels = dict(pairs)
            splits = train_dev_assignment(pairs) if part == "train" else {path: part for path in labels}
            archive = ctx.file(zip_name)
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zip_names(zf) if n in labels]
                notes["missing_from_archive"] += len(labels) - len(names)
                for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), zip_name):
                    yield Example(splits[name], example_id, image, labels[name])

    return HandlerOutput(examples(), list(CLASS_NAMES), notes)


_BASE = "https://isic-challenge-data.s3.amazonaws.com/2017/"
HANDLER = Handler(
    name="melanoma",
    dataset_key="isbi_isic_2017_melanoma_classification_challenge",
    artefacts=tuple(
        Artefact(name, _BASE + name, md5)
        for name, md5 in (
            ("ISIC-2017_Training_Data.zip", "a14a7e622c67a358797ae59abb8a0b0c"),
            ("ISIC-2017_Training_Part3_GroundTruth.csv", "0cb4add57c65c22ca1a1cb469ad1f0c5"),
            ("ISIC-2017_Validation_Data.zip", "8d6419d942112f709894c0d82f6c9038"),
            ("ISIC-2017_Validation_Part3_GroundTruth.csv", "8d4826a76adcd8fb928ca52a23ebae4c"),
            ("ISIC-2017_Test_v2_Data.zip", "5f6a0b5e1f2972bd1f5ea02680489f09"),
            ("ISIC-2017_Test_v2_Part3_GroundTruth.csv", "9e957b72a0c4f9e0d924889fd03b36ed"),
        )
    ),
    convert=convert,
    split_rule="official training set permuted by default_rng(1), 80/20 train/dev; dev_test: official validation; test: official test",
    website="https://challenge.isic-archive.com/data/",
    licence="CC-BY-NC (ISIC archive); see the website",
    citation="N. Codella et al., Skin Lesion Analysis Toward Melanoma Detection (ISBI 2017), arXiv:1710.05006",
)
