"""FGVC Aircraft, family labels (``nevis:fgvc_aircraft_family``): 70 aircraft families, RGB.

Archive: ``fgvc-aircraft-2013b.tar.gz`` with ``fgvc-aircraft-2013b/data/images/<id>.jpg``,
``data/families.txt`` (the class names, one per line, in class-id order) and
``data/images_family_{trainval,test}.txt`` (lines ``<id> <family>``). Order: archive order.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over the
official trainval images; test = the official test images.
"""

from __future__ import annotations

import os

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, iter_tar, planned_examples

ROOT = "fgvc-aircraft-2013b/data/"
LIST_FILES = {"trainval": ROOT + "images_family_trainval.txt", "test": ROOT + "images_family_test.txt"}
CLASS_FILE = ROOT + "families.txt"


def parse_list(text: str, where: str) -> dict[str, str]:
    """image id -> family name."""
    out = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        image_id, _, family = line.strip().partition(" ")
        if not family:
            raise HandlerError(f"fgvc_aircraft_family: line {number} of {where} is not '<id> <family>': {line!r}")
        out[image_id] = family
    return out


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("fgvc-aircraft-2013b.tar.gz")
    texts = {name: data.decode("utf-8") for name, data in iter_tar(archive, keep=lambda n: n in (CLASS_FILE, *LIST_FILES.values()))}
    missing = [f for f in (CLASS_FILE, *LIST_FILES.values()) if f not in texts]
    if missing:
        raise HandlerError(f"fgvc_aircraft_family: {archive} lacks {missing}")
    classes = [line.strip() for line in texts[CLASS_FILE].splitlines() if line.strip()]
    assignment = {}
    for part, file in LIST_FILES.items():
        for image_id, family in parse_list(texts[file], file).items():
            if family not in classes:
                raise HandlerError(f"fgvc_aircraft_family: unknown family {family!r} for image {image_id} in {file}")
            assignment[image_id] = (part, classes.index(family))

    def image_id(name: str) -> str | None:
        if not name.startswith(ROOT + "images/") or not name.endswith(".jpg"):
            return None
        return os.path.splitext(os.path.basename(name))[0]

    def plan_of(member: str) -> tuple[str | None, int] | None:
        if image_id(member) not in assignment:
            return None
        part, label = assignment[image_id(member)]
        return ("test" if part == "test" else None), label

    return HandlerOutput(planned_examples(ctx, [archive], plan_of, CategoricalSplitter(FOR_TRAIN)), classes)


HANDLER = Handler(
    name="fgvc_aircraft_family",
    dataset_key="fgvc_aircraft",
    artefacts=(
        Artefact(
            "fgvc-aircraft-2013b.tar.gz",
            "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
            "d4acdd33327262359767eeaa97a4f732",
        ),
    ),
    convert=convert,
    split_rule="train/dev/dev_test: categorical 0.70/0.15/0.15 (RandomState(0)) over official trainval; test: official test",
    website="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
    licence="research use only (see the website)",
    citation="S. Maji, E. Rahtu, J. Kannala, M. Blaschko, A. Vedaldi, Fine-Grained Visual Classification of Aircraft, 2013",
)
