"""CBIS-DDSM mammograms (``nevis:ddsm``): BENIGN, MALIGNANT, BENIGN_WITHOUT_CALLBACK; full mammograms, grey.

File: the Kaggle download ``cbis-ddsm-breast-cancer-image-dataset.zip`` (dataset
awsaf49/cbis-ddsm-breast-cancer-image-dataset), which holds ``jpeg/<series uid>/<n>-<m>.jpg`` and CSVs:
``csv/dicom_info.csv`` (columns ``image_path`` = ``CBIS-DDSM/jpeg/<series uid>/<file>.jpg`` and
``PatientID``, among others) and the case descriptions
``csv/{calc,mass}_case_description_{train,test}_set.csv`` (columns ``pathology`` and ``image file
path`` = ``<case id>/<...>/<file>.dcm``).

Labels (reference): a case row's case id (the first component of its ``image file path``) is joined
with the ``dicom_info`` rows whose ``PatientID`` equals it (these are the full mammograms; crops and
masks carry a ``_<n>`` suffix); each image keeps the ``pathology`` of its first joined row (calc rows
before mass rows, file order). The image is ``jpeg/<series uid>/<file>`` of its ``image_path``.
Order: the joined rows' order.

Split rule (reference): the images of the two training case files drawn categorically 0.70/0.15/0.15
into train/dev/dev_test (RandomState(0)); test = the images of the two test case files.
"""

from __future__ import annotations

import csv
import io
import posixpath
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter

CLASS_NAMES = ["BENIGN", "MALIGNANT", "BENIGN_WITHOUT_CALLBACK"]
ARCHIVE = "cbis-ddsm-breast-cancer-image-dataset.zip"
DICOM_INFO = "csv/dicom_info.csv"
CASES = {
    "train": ("csv/calc_case_description_train_set.csv", "csv/mass_case_description_train_set.csv"),
    "test": ("csv/calc_case_description_test_set.csv", "csv/mass_case_description_test_set.csv"),
}


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict]:
    try:
        return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8-sig"))))
    except KeyError as error:
        raise HandlerError(f"ddsm: the archive lacks {name}") from error


def image_member(image_path: str) -> str:
    """``CBIS-DDSM/jpeg/<uid>/<file>.jpg`` -> ``jpeg/<uid>/<file>.jpg``."""
    return f"jpeg/{posixpath.basename(posixpath.dirname(image_path))}/{posixpath.basename(image_path)}"


def joined(case_rows: list[dict], dicom_rows: list[dict]) -> list[tuple[str, int]]:
    """(image member, label) per image, in join order, each image once (first row wins)."""
    images_of: dict[str, list[str]] = {}
    for row in dicom_rows:
        if row.get("PatientID") and row.get("image_path"):
            images_of.setdefault(row["PatientID"], []).append(image_member(row["image_path"]))
    out, seen = [], set()
    for row in case_rows:
        case_id = row["image file path"].split("/")[0]
        pathology = row["pathology"].strip()
        if pathology not in CLASS_NAMES:
            raise HandlerError(f"ddsm: unknown pathology {pathology!r} for case {case_id}")
        for member in images_of.get(case_id, []):
            if member not in seen:
                seen.add(member)
                out.append((member, CLASS_NAMES.index(pathology)))
    return out


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        with zipfile.ZipFile(archive) as zf:
            dicom_rows = _rows(zf, DICOM_INFO)
            plan = {part: joined([r for f in files for r in _rows(zf, f)], dicom_rows) for part, files in CASES.items()}
            for part, pairs in plan.items():
                labels = dict(pairs)
                try:
                    members = ((m, zf.read(m)) for m, _ in pairs)
                    for name, example_id, image in ctx.decoded(members, archive.name):
                        yield Example(splitter.next() if part == "train" else "test", example_id, image, labels[name])
                except KeyError as error:
                    raise HandlerError(f"ddsm: {archive.name} lacks an image named in {DICOM_INFO}: {error}") from error

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="ddsm",
    dataset_key="ddsm",
    artefacts=(Artefact(ARCHIVE),),
    convert=convert,
    split_rule="full mammograms of the calc+mass training case files: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), join order); test: those of the test case files",
    website="https://www.kaggle.com/awsaf49/cbis-ddsm-breast-cancer-image-dataset",
    licence="CC BY 3.0 (CBIS-DDSM, The Cancer Imaging Archive)",
    citation="R. S. Lee et al., A curated mammography data set for use in computer-aided detection and diagnosis research, Scientific Data 2017",
    manual_step=(
        "download https://www.kaggle.com/awsaf49/cbis-ddsm-breast-cancer-image-dataset (Kaggle login; `kaggle "
        "datasets download awsaf49/cbis-ddsm-breast-cancer-image-dataset`) and place "
        f"{ARCHIVE} in DIR (reference md5 eba16e95a30193fcbda1d2668d96015f)"
    ),
)
