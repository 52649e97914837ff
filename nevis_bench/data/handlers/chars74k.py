"""Chars74K, English (``nevis:chars74k``): 62 characters (0-9, A-Z, a-z) from photos, tablets and fonts.

Archives: ``EnglishImg.tgz`` (natural-image crops ``English/Img/{GoodImg,BadImag}/Bmp/SampleNNN/*.png``),
``EnglishHnd.tgz`` (hand-drawn ``English/Hnd/Img/SampleNNN/*.png``), ``EnglishFnt.tgz`` (font
renderings ``English/Fnt/SampleNNN/*.png``) and ``Lists.tgz`` (``English/<Img|Hnd|Fnt>/lists.mat``
and, for Img, ``lists_var_size.mat``: a MATLAB struct ``list`` with ``ALLnames`` (image paths without
extension, relative to the category folder) and ``TSTind`` (1-based test indices, one column per
partition)). The class id is ``NNN - 1`` of the ``SampleNNN`` folder. Images are converted to RGB.

Order (reference): for each category Img, Hnd, Fnt the images not in its test list (last ``TSTind``
column; when a category has several list files the one read last in ``Lists.tgz`` counts), in archive
order, then in the same way the test-list images. Exact duplicates (same RGB pixels and class) are
dropped, keeping the first.

Split rule (reference): categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the de-duplicated
images (the official test list only orders them).
Deviation: the reference visited the categories in the iteration order of a Python ``frozenset``
(changes from run to run with string hash randomisation); we use Img, Hnd, Fnt. A test-list entry
matches an image whose path ends with it (the reference tested substring containment, the same on the
publisher's names).
"""

from __future__ import annotations

import io
import re

import numpy as np
import scipy.io

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import iter_tar, split_examples

CATEGORIES = (("Img", "EnglishImg.tgz", "/Bmp/"), ("Hnd", "EnglishHnd.tgz", "/Img/"), ("Fnt", "EnglishFnt.tgz", ""))
LIST_FILE = re.compile(r"(^|/)English/(Img|Hnd|Fnt)/(lists|lists_var_size)\.mat$")
SAMPLE = re.compile(r"Sample(\d{3})")
CLASS_NAMES = [str(d) for d in range(10)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [
    chr(c) for c in range(ord("a"), ord("z") + 1)
]


def test_names(data: bytes, where: str) -> set[str]:
    try:
        record = scipy.io.loadmat(io.BytesIO(data))["list"].ravel()[0]
        names = np.asarray(record["ALLnames"]).ravel()
        indices = np.asarray(record["TSTind"])
    except Exception as error:  # scipy and numpy raise several types for unexpected files
        raise HandlerError(f"chars74k: cannot read the test list of {where}: {error}") from error
    column = indices.reshape(indices.shape[0], -1)[:, -1] if indices.ndim > 1 else indices.ravel()
    return {str(np.asarray(names[int(i) - 1]).ravel()[0]).strip() for i in column}


def is_listed(path: str, names: set[str]) -> bool:
    stem = path[:-4] if path.lower().endswith(".png") else path
    parts = stem.split("/")
    return any("/".join(parts[k:]) in names or "/".join(parts[k:]) + ".png" in names for k in range(len(parts)))


def label_of(path: str) -> int | None:
    match = SAMPLE.search(path)
    return int(match.group(1)) - 1 if match else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    lists = ctx.file("Lists.tgz")
    tests: dict[str, set[str]] = {}
    for name, data in iter_tar(lists, keep=lambda n: LIST_FILE.search(n) is not None):
        tests[LIST_FILE.search(name).group(2)] = test_names(data, f"{lists.name}:{name}")
    for category, _, _ in CATEGORIES:
        if category not in tests:
            raise HandlerError(f"chars74k: {lists.name} has no English/{category}/lists.mat")
    notes = {"duplicates_removed": 0}

    def wanted(category: str, marker: str, path: str, test: bool) -> bool:
        return (path.lower().endswith(".png") and marker in path and label_of(path) is not None
                and is_listed(path, tests[category]) == test)

    def rows():
        for test in (False, True):
            for category, archive_name, marker in CATEGORIES:
                archive = ctx.file(archive_name)
                keep = lambda n, c=category, m=marker: wanted(c, m, n, test)
                for name, example_id, image in ctx.decoded(iter_tar(archive, keep=keep), archive.name):
                    label = label_of(name)
                    if not 0 <= label < len(CLASS_NAMES):
                        raise HandlerError(f"chars74k: {example_id} is in class folder Sample{label + 1:03d}, outside 1..62")
                    yield example_id, image, label

    return HandlerOutput(split_examples(rows(), mode="RGB", dedup_notes=notes), list(CLASS_NAMES), notes)


_BASE = "http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/"
HANDLER = Handler(
    name="chars74k",
    dataset_key="chars74k",
    artefacts=tuple(
        Artefact(name, _BASE + name, md5)
        for name, md5 in (
            ("EnglishImg.tgz", "85d157e0c58f998e1cda8def62bcda0d"),
            ("EnglishHnd.tgz", "95e9ee6d929809ef4c2f509f86388c72"),
            ("EnglishFnt.tgz", "f6710b1302a7e9693d904b16389d9d8a"),
            ("Lists.tgz", "8dfe916169fa10b86466776a4a1d7c5f"),
        )
    ),
    convert=convert,
    split_rule=(
        "categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over de-duplicated images: Img, Hnd, Fnt non-test-list "
        "images, then their test-list images"
    ),
    website="https://teodecampos.github.io/chars74k/",
    licence="research use; see the dataset's website for its terms",
    citation="T. E. de Campos, B. R. Babu, M. Varma, Character recognition in natural images, VISAPP 2009",
)
