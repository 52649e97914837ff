"""Segmented and annotated IAPR TC-12 (``nevis:iaprtc12``): multi-label natural images.

File: the Kaggle dataset ``nastyatima/iapr-tc12`` (needs a Kaggle login), placed as ``iapr-tc12.zip``.
Inside: ``saiaprtc12ok/benchmark/wlist.txt`` (``<label id>\\t<word>`` per line; ids from 1),
``saiaprtc12ok/benchmark/saiapr_tc-12/<NN>/labels.txt`` for NN = 00..40 (whitespace-separated rows
``<image id> <region id> <label id>``), ``saiaprtc12ok/matlab/matlab/{training,validation,testing}.mat``
(variables ``training``, ``validation``, ``testing``: image ids), and the images. Images are the
``.jpg``-like members whose path contains ``/images/`` and not ``saiaprtc12ok`` (the reference's rule:
the ``saiaprtc12ok/`` tree holds a second copy), named ``<image id>.<ext>``. Class ids are the word ids
minus one; an image's labels are the labels of all its regions. Order: sorted member names.

Split rule (reference): only the official training and validation images are used; they are split by
categorical 0.56/0.12/0.12/0.20 (RandomState(0)) into train/dev/dev_test/test (the official testing
ids are not used, as in the reference).
Deviation: the reference's label reader replaced an image's labels with the last region's label
whenever the image already had one (``output[id] = [label]`` instead of appending), so its examples
carried one label each; we keep the union of the region labels, which the multi-label task intends.
Images without any region label are skipped and counted in ``notes.unlabelled`` (the reference
asserted). The catalog's class count must cover the word list (the reference: 276 words).
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import scipy.io

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, IGNORED, CategoricalSplitter, zip_names

ARCHIVE = "iapr-tc12.zip"
ROOT = "saiaprtc12ok/"
WORDS = ROOT + "benchmark/wlist.txt"
LABELS = ROOT + "benchmark/saiapr_tc-12/{:02d}/labels.txt"
ID_LISTS = {name: f"{ROOT}matlab/matlab/{name}.mat" for name in ("training", "validation", "testing")}
FOLDERS = 41
NOT_IMAGES = re.compile(r"\.(eps|txt|mat|pdf)$", re.IGNORECASE)


def read_words(text: str) -> list[str]:
    """Class names by id - 1; an empty word is named ' ' as in the reference."""
    words: dict[int, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        number, _, word = line.partition("\t")
        words[int(number) - 1] = word.strip() or " "
    if sorted(words) != list(range(len(words))):
        raise HandlerError(f"iaprtc12: {WORDS} does not number its words 1..{len(words)}")
    return [words[i] for i in range(len(words))]


def read_region_labels(text: str, into: dict[int, set[int]]) -> None:
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            into.setdefault(int(float(fields[0])), set()).add(int(float(fields[2])) - 1)


def read_ids(data: bytes, name: str) -> set[int]:
    return {int(i) for i in np.asarray(scipy.io.loadmat(io.BytesIO(data))[name]).ravel()}


def image_id(member: str) -> int | None:
    if ROOT.rstrip("/") in member or "/images/" not in member or NOT_IMAGES.search(member) or IGNORED.search(member):
        return None
    stem = member.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return int(stem) if stem.isdigit() else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    with zipfile.ZipFile(archive) as zf:
        present = set(zf.namelist())
        needed = [WORDS, ID_LISTS["training"], ID_LISTS["validation"]]
        if any(n not in present for n in needed):
            raise HandlerError(f"iaprtc12: {archive.name} lacks {', '.join(n for n in needed if n not in present)}")
        classes = read_words(zf.read(WORDS).decode("utf-8", errors="replace"))
        wanted = read_ids(zf.read(ID_LISTS["training"]), "training") | read_ids(zf.read(ID_LISTS["validation"]), "validation")
        labels: dict[int, set[int]] = {}
        for folder in range(FOLDERS):
            if LABELS.format(folder) in present:
                read_region_labels(zf.read(LABELS.format(folder)).decode("utf-8"), labels)
        members = [n for n in zip_names(zf) if image_id(n) in wanted]
    notes = {"unlabelled": 0}

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with zipfile.ZipFile(archive) as zf:
            for name in members:
                positives = sorted(labels.get(image_id(name), ()))
                if not positives:
                    notes["unlabelled"] += 1
                    continue
                image = ctx.decode(zf.read(name), f"{archive.name}:{name}")
                if image is not None:
                    yield Example(splitter.next(), f"{archive.name}:{name}", image.convert("RGB"), positives)

    return HandlerOutput(examples(), classes, notes)


HANDLER = Handler(
    name="iaprtc12",
    dataset_key="iaprtc_12",
    artefacts=(Artefact(ARCHIVE, md5="ee251615ac2dbb55eea5a7e5e710740a"),),  # md5 of the Kaggle API download (recorded, not enforced)
    convert=convert,
    split_rule="official training + validation images only: categorical 0.56/0.12/0.12/0.20 (RandomState(0)), sorted member order",
    website="https://www.kaggle.com/datasets/nastyatima/iapr-tc12",
    licence="free of charge, no copyright restrictions (IAPR TC-12 benchmark); see the website",
    citation="H. J. Escalante et al., The segmented and annotated IAPR TC-12 benchmark, CVIU 2010",
    manual_step=(
        "download the Kaggle dataset nastyatima/iapr-tc12 (https://www.kaggle.com/datasets/nastyatima/iapr-tc12; needs "
        f"a Kaggle login: kaggle datasets download -d nastyatima/iapr-tc12) and place it as {ARCHIVE} in the --from "
        "directory (rename a browser download archive.zip)"
    ),
)
