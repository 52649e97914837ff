"""German Traffic Sign Recognition Benchmark (``nevis:german_tsr``, GTSRB): 43 sign classes, colour PPMs.

Files: ``GTSRB_Final_Training_Images.zip`` (``GTSRB/Final_Training/Images/<class:05d>/<track>_<n>.ppm``
plus a ``GT-<class>.csv`` per folder), ``GTSRB_Final_Test_Images.zip``
(``GTSRB/Final_Test/Images/<nnnnn>.ppm``, unlabelled) and ``GTSRB_Final_Test_GT.zip``
(``GT-final_test.csv``: a header, then ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``).
``.csv`` and ``.txt`` members of the image zips are ignored. Order: sorted member names.

Label (reference): training images: the number of the class folder; test images: the ``ClassId`` of
their file name in ``GT-final_test.csv``.

Split rule (reference): official training set -> train/dev/dev_test by categorical draws
0.70/0.15/0.15 (RandomState(0)) in sorted member order; official test set -> test.
Deviation: a test image missing from ``GT-final_test.csv`` is an error naming it (the reference stopped
with a KeyError).
"""

from __future__ import annotations

import posixpath
import re
import zipfile

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, labelled_examples, parent_name

NUM_CLASSES = 43
IGNORED_FILES = re.compile(r"\.csv$|\.txt$")
TRAIN_ZIP, TEST_ZIP, TEST_LABELS_ZIP = "GTSRB_Final_Training_Images.zip", "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_GT.zip"
LABEL_FILE = "GT-final_test.csv"


def train_label(member: str) -> int | None:
    folder = parent_name(member)
    if IGNORED_FILES.search(member) or not folder.isdigit() or not 0 <= int(folder) < NUM_CLASSES:
        return None
    return int(folder)


def parse_test_labels(text: str) -> dict[str, int]:
    """Test image file name -> class id, from the rows of ``GT-final_test.csv``."""
    labels = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.strip().split(";")
        if number == 1 and fields[-1] == "ClassId" or not line.strip():
            continue
        if len(fields) != 8 or not fields[-1].isdigit():
            raise HandlerError(f"german_tsr: line {number} of {LABEL_FILE} is not Filename;...;ClassId: {line!r}")
        labels[fields[0]] = int(fields[-1])
    return labels


def convert(ctx: HandlerContext) -> HandlerOutput:
    with zipfile.ZipFile(ctx.file(TEST_LABELS_ZIP)) as zf:
        test_labels = parse_test_labels(zf.read(LABEL_FILE).decode("utf-8-sig"))
    train_zip, test_zip = ctx.file(TRAIN_ZIP), ctx.file(TEST_ZIP)

    def test_label(member: str) -> int | None:
        if IGNORED_FILES.search(member):
            return None
        base = posixpath.basename(member)
        if base not in test_labels:
            raise HandlerError(f"german_tsr: test image {TEST_ZIP}:{member} has no row in {LABEL_FILE}")
        return test_labels[base]

    def examples():
        yield from labelled_examples(ctx, [train_zip], train_label, CategoricalSplitter(FOR_TRAIN))
        yield from labelled_examples(ctx, [test_zip], test_label, "test")

    return HandlerOutput(examples(), [f"{k:05d}" for k in range(NUM_CLASSES)])


_BASE = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
HANDLER = Handler(
    name="german_tsr",
    dataset_key="german_traffic_sign_recognition_benchmark",
    artefacts=(
        Artefact(TRAIN_ZIP, _BASE + TRAIN_ZIP, "f33fd80ac59bff73c82d25ab499e03a3"),
        Artefact(TEST_ZIP, _BASE + TEST_ZIP, "c7e4e6327067d32654124b0fe9e82185"),
        Artefact(TEST_LABELS_ZIP, _BASE + TEST_LABELS_ZIP, "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
    ),
    convert=convert,
    split_rule="official training: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), sorted member order; test: official test with GT-final_test.csv labels",
    website="https://benchmark.ini.rub.de/gtsrb_dataset.html",
    licence="free for research use; see the website",
    citation="J. Stallkamp, M. Schlipsing, J. Salmen, C. Igel, The German Traffic Sign Recognition Benchmark, IJCNN 2011",
)
