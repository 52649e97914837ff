"""Belgium traffic sign classification (``nevis:belgium_tsc``, BelgiumTSC): 62 sign classes, colour PPMs.

Files: ``BelgiumTSC_Training.zip`` (``Training/<class:05d>/<pole>_<n>.ppm`` plus a ``GT-<class>.csv``
per folder and a ``Readme.txt``), ``BelgiumTSC_Testing.zip`` (``Testing/<class:05d>/...``, same
layout) and ``reducedSetTS.txt`` (a header line, then the sign code of each class folder, e.g.
``A13``, one per line, 62 lines). ``.csv`` and ``.txt`` members are ignored. Order: sorted member
names.

Label (reference): the number of the class folder.

Split rule (reference): official training set -> train/dev/dev_test by categorical draws
0.70/0.15/0.15 (RandomState(0)) in sorted member order; official test set -> test.
Deviations: class names are the lines of ``reducedSetTS.txt`` without their line ends (the reference
kept the newline characters); if that file does not hold 62 names, the folder numbers are used as
names and ``notes.class_names`` says so (the reference stopped on an assertion).
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, labelled_examples, parent_name

NUM_CLASSES = 62
IGNORED_FILES = re.compile(r"\.csv$|\.txt$", re.IGNORECASE)
PARTS = (("BelgiumTSC_Training.zip", False), ("BelgiumTSC_Testing.zip", True))


def label_of(member: str) -> int | None:
    folder = parent_name(member)
    if IGNORED_FILES.search(member) or not folder.isdigit() or not 0 <= int(folder) < NUM_CLASSES:
        return None
    return int(folder)


def read_class_names(text: str) -> list[str] | None:
    names = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return names if len(names) == NUM_CLASSES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    names = read_class_names(ctx.file("reducedSetTS.txt").read_text(encoding="utf-8", errors="replace"))
    notes = {} if names else {"class_names": f"reducedSetTS.txt does not list {NUM_CLASSES} names; folder numbers used"}
    archives = {zip_name: ctx.file(zip_name) for zip_name, _ in PARTS}

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        for zip_name, is_test in PARTS:
            yield from labelled_examples(ctx, [archives[zip_name]], label_of, "test" if is_test else splitter)

    return HandlerOutput(examples(), names or [f"{k:05d}" for k in range(NUM_CLASSES)], notes)


HANDLER = Handler(
    name="belgium_tsc",
    dataset_key="belgium_traffic_sign_dataset",
    artefacts=(
        Artefact("reducedSetTS.txt", "https://btsd.ethz.ch/shareddata/BelgiumTS/reducedSetTS.txt", "e6052a024e24060e5cec84fbda34fb5e"),
        Artefact(
            "BelgiumTSC_Training.zip",
            "http://www.vision.ee.ethz.ch/~timofter/BelgiumTSC/BelgiumTSC_Training.zip",
            "c727ca9d00e3964ca676286a1808ccee",
        ),
        Artefact(
            "BelgiumTSC_Testing.zip",
            "http://www.vision.ee.ethz.ch/~timofter/BelgiumTSC/BelgiumTSC_Testing.zip",
            "d208de4566388791c0028da8d6a545cc",
        ),
    ),
    convert=convert,
    split_rule="official training: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), sorted member order; test: official testing",
    website="https://btsd.ethz.ch/shareddata/",
    licence="free for research use; see the website",
    citation="R. Timofte, K. Zimmermann, L. Van Gool, Multi-view traffic sign detection, recognition, and 3D localisation, MVA 2014",
)
