"""Animals with Attributes 2 (``nevis:awa2``): 85 binary attributes, multi-label, RGB.

Archive: ``AwA2-data.zip`` with ``Animals_with_Attributes2/`` holding ``classes.txt`` (``<id><TAB><class>``,
ids from 1), ``predicates.txt`` (``<id><TAB><attribute>``), ``predicate-matrix-binary.txt`` (one row of
85 space-separated 0/1 per class, in class-id order), ``trainclasses.txt`` and ``testclasses.txt`` (40
and 10 class names) and ``JPEGImages/<class>/<class>_<n>.jpg``. An image's labels are the attributes
set in its class's row (the positive classes of a multi-label example; class ids are the predicate ids
minus 1). Images are shrunk, when larger, so that their longer side is 256 (bicubic, sizes truncated),
as the reference. Order: archive order.
Deviation: images are converted to RGB before the resize; the reference called ``convert("RGB")``
without keeping its result, so its few grey or CMYK images were resized in their own mode.

Split rule (reference, zero-shot classes): the images of the 40 training classes drawn categorically
0.70/0.15/0.15 into train/dev/dev_test (RandomState(0)); test = the images of the 10 test classes.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, parent_name, zip_names

ROOT = "Animals_with_Attributes2/"
MAX_SIZE = 256
NUMBERED = re.compile(r"(\d+)\t([a-z+]+)")
NAME = re.compile(r"[a-z+]+")


def numbered(text: str) -> dict[str, int]:
    """``<id><TAB><name>`` lines -> name: id - 1."""
    return {m.group(2): int(m.group(1)) - 1 for m in map(NUMBERED.search, text.splitlines()) if m}


def names(text: str) -> list[str]:
    return [m.group(0) for m in map(NAME.search, text.splitlines()) if m]


def resized(image: Image.Image, max_size: int = MAX_SIZE) -> Image.Image:
    """Shrink so that the longer side is ``max_size`` (the reference's rule; sizes truncated)."""
    longest = max(image.width, image.height)
    if longest <= max_size:
        return image
    factor = max_size / longest
    return image.resize((int(factor * image.width), int(factor * image.height)), resample=Image.BICUBIC)


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("AwA2-data.zip")
    attribute_names: list[str] = []

    def examples():
        with zipfile.ZipFile(archive) as zf:
            try:
                read = {f: zf.read(ROOT + f).decode("utf-8") for f in (
                    "classes.txt", "predicates.txt", "predicate-matrix-binary.txt", "trainclasses.txt", "testclasses.txt")}
            except KeyError as error:
                raise HandlerError(f"awa2: {archive.name} lacks {error}") from error
            class_ids = numbered(read["classes.txt"])
            predicates = numbered(read["predicates.txt"])
            attribute_names.extend(sorted(predicates, key=predicates.get))
            matrix = np.array([[int(float(v)) for v in line.split()] for line in read["predicate-matrix-binary.txt"].splitlines() if line.strip()])
            if matrix.shape != (len(class_ids), len(predicates)):
                raise HandlerError(f"awa2: predicate-matrix-binary.txt is {matrix.shape}, expected {(len(class_ids), len(predicates))}")
            part_of = {c: "train" for c in names(read["trainclasses.txt"])}
            part_of.update({c: "test" for c in names(read["testclasses.txt"])})
            members = [n for n in zip_names(zf, sort=False) if "JPEGImages" in n and parent_name(n) in part_of]
            splitter = CategoricalSplitter(FOR_TRAIN)
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in members), archive.name):
                animal = parent_name(name)
                if animal not in class_ids:
                    raise HandlerError(f"awa2: class {animal!r} of {name} is not in classes.txt")
                attributes = np.flatnonzero(matrix[class_ids[animal]]).tolist()
                split = splitter.next() if part_of[animal] == "train" else "test"
                yield Example(split, example_id, resized(image.convert("RGB")), attributes)

    return HandlerOutput(examples(), attribute_names)


HANDLER = Handler(
    name="awa2",
    dataset_key="awa2",
    artefacts=(Artefact("AwA2-data.zip", "https://cvml.ist.ac.at/AwA2/AwA2-data.zip", "eaa27cf799d5cf55af372356d7281b5e"),),
    convert=convert,
    split_rule="images of the 40 trainclasses: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), archive order); test: the 10 testclasses",
    website="https://cvml.ist.ac.at/AwA2/",
    licence="images under their original (mostly Creative Commons) licences; annotations CC0 (see the website)",
    citation="Y. Xian, C. H. Lampert, B. Schiele, Z. Akata, Zero-Shot Learning - A Comprehensive Evaluation of the Good, the Bad and the Ugly, TPAMI 2018",
)
