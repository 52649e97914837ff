"""Caltech 256 (``nevis:caltech256``): 257 classes (256 objects + clutter), RGB.

Archive: ``256_ObjectCategories.tar`` with ``256_ObjectCategories/<NNN>.<name>/<NNN>_<MMMM>.jpg``; the
class id is ``NNN - 1``. Other members are ignored. Order: archive order.

Split rule (reference): categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images.
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, iter_tar

NUM_CLASSES = 257
PATH = re.compile(r"(?:^|/)256_ObjectCategories/(\d{3})\.([^/]+)/\d{3}_\d{4}\.jpg$")
ARCHIVE = "256_ObjectCategories.tar"
ARTEFACT = Artefact(
    ARCHIVE,
    "https://drive.google.com/u/0/uc?id=1r6o0pSROcV1_VwT4oSjA2FBUSCWGuxLK&export=download&confirm=y",
    "67b4f42ca05d46448c6bb8ecd2220f6d",
)


def label_of(name: str) -> tuple[int, str] | None:
    match = PATH.search(name)
    if not match:
        return None
    return int(match.group(1)) - 1, match.group(2)


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    classes = [f"class_{i + 1:03d}" for i in range(NUM_CLASSES)]

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        for name, example_id, image in ctx.decoded(iter_tar(archive, keep=lambda n: label_of(n) is not None), archive.name):
            label, class_name = label_of(name)
            classes[label] = class_name
            yield Example(splitter.next(), example_id, image, label)

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="caltech256",
    dataset_key="caltech256",
    artefacts=(ARTEFACT,),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, archive order",
    website="http://www.vision.caltech.edu/Image_Datasets/Caltech256/",
    citation="G. Griffin, A. Holub, P. Perona, The Caltech 256, Caltech Technical Report",
)
