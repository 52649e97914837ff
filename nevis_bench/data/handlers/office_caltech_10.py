"""Office-Caltech-10 (``nevis:office_caltech_10``): the 10 classes Office-31 shares with Caltech 256.

Archives: ``domain_adaptation_images.tar.gz`` (Office-31: ``[...]/<amazon|dslr|webcam>/images/<class>/
frame_<NNNN>.jpg``) and ``256_ObjectCategories.tar`` (Caltech 256, see ``caltech256``). Classes are named
as in Office-31; the Caltech folders map onto them (``CALTECH_TO_CLASS``). Order: archive order.

Split rule (reference, a domain split): train/dev by categorical draws 0.80/0.20 (RandomState(0)) over
the Office images (all three domains); dev_test/test by categorical draws 0.50/0.50 (a second
RandomState(0)) over the Caltech images.
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import TEST_AND_DEV_TEST, TRAIN_AND_DEV_ONLY, CategoricalSplitter, labelled_examples
from nevis_bench.data.handlers.caltech256 import ARTEFACT as CALTECH_ARTEFACT
from nevis_bench.data.handlers.caltech256 import label_of as caltech_label_of

CLASS_NAMES = ["back_pack", "bike", "calculator", "headphones", "keyboard", "laptop_computer", "monitor", "mouse", "mug", "projector"]
CALTECH_TO_CLASS = {
    "backpack": "back_pack", "touring-bike": "bike", "calculator": "calculator", "head-phones": "headphones",
    "computer-keyboard": "keyboard", "laptop-101": "laptop_computer", "computer-monitor": "monitor",
    "computer-mouse": "mouse", "coffee-mug": "mug", "video-projector": "projector",
}
OFFICE_PATH = re.compile(r"(?:^|/)(amazon|dslr|webcam)/images/([^/]+)/frame_\d{4}\.jpg$")


def office_label(name: str) -> int | None:
    match = OFFICE_PATH.search(name)
    if not match or match.group(2) not in CLASS_NAMES:
        return None
    return CLASS_NAMES.index(match.group(2))


def caltech_label(name: str) -> int | None:
    found = caltech_label_of(name)
    if found is None or found[1] not in CALTECH_TO_CLASS:
        return None
    return CLASS_NAMES.index(CALTECH_TO_CLASS[found[1]])


def convert(ctx: HandlerContext) -> HandlerOutput:
    office = ctx.file("domain_adaptation_images.tar.gz")
    caltech = ctx.file(CALTECH_ARTEFACT.filename)

    def examples():
        yield from labelled_examples(ctx, [office], office_label, CategoricalSplitter(TRAIN_AND_DEV_ONLY))
        yield from labelled_examples(ctx, [caltech], caltech_label, CategoricalSplitter(TEST_AND_DEV_TEST))

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="office_caltech_10",
    dataset_key="office_caltech",
    artefacts=(
        Artefact(
            "domain_adaptation_images.tar.gz",
            "https://drive.google.com/u/0/uc?id=0B4IapRTv9pJ1WGZVd1VDMmhwdlE&export=download&confirm=y",
            "1b536d114869a5a8aa4580b89e9758fb",
        ),
        CALTECH_ARTEFACT,
    ),
    convert=convert,
    split_rule="Office (amazon, dslr, webcam): categorical train/dev 0.80/0.20; Caltech: categorical dev_test/test 0.50/0.50 (each RandomState(0))",
    website="https://faculty.cc.gatech.edu/~judy/domainadapt/",
    citation="B. Gong, Y. Shi, F. Sha, K. Grauman, Geodesic Flow Kernel for Unsupervised Domain Adaptation, 2012",
)
