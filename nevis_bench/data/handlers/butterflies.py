"""Butterflies (``nevis:butterflies``, Lazebnik, Schmid & Ponce 2004): 7 species, colour JPEGs.

Archive: ``butterflies.zip`` with ``<species>/<prefix><nnn>.jpg`` (e.g. ``admiral/adm001.jpg``), one
folder per species. Order: zip entry order.

Split rule (reference): test = the 10 images per species of the authors' ``butterflies_f_order.txt``
(the numbers in :data:`TEST_IMAGES`); the other images -> train/dev/dev_test by categorical draws
0.70/0.15/0.15 (RandomState(0)) in zip entry order.
Deviations: class ids follow the sorted species names (the reference numbered an unordered ``set``, so
its ids changed from run to run with Python's string hashing); the catalogue says 10 classes, the
archive has 7.
"""

from __future__ import annotations

import posixpath
import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, planned_examples

TEST_IMAGES = {
    "admiral": {14, 103, 41, 86, 9, 53, 6, 55, 66, 92},
    "black_swallowtail": {25, 41, 2, 22, 31, 15, 28, 35, 4, 27},
    "machaon": {12, 24, 20, 52, 53, 29, 82, 25, 83, 14},
    "monarch_closed": {29, 9, 58, 72, 23, 44, 67, 36, 27, 28},
    "monarch_open": {46, 35, 58, 8, 76, 21, 34, 15, 83, 78},
    "peacock": {1, 96, 131, 124, 22, 59, 126, 52, 20, 86},
    "zebra": {57, 18, 21, 26, 43, 78, 31, 90, 6, 75},
}
CLASS_NAMES = sorted(TEST_IMAGES)


def plan(member: str) -> tuple[int, bool]:
    """(label, is official test image) of a member ``<species>/<prefix><nnn>.jpg``."""
    species, base = posixpath.split(member)
    match = re.search(r"[a-z]+(\d+)\.jpg", base)
    if species not in TEST_IMAGES or not match:
        raise HandlerError(f"butterflies: {member!r} is not <species>/<prefix><number>.jpg of the 7 species")
    return CLASS_NAMES.index(species), int(match.group(1)) in TEST_IMAGES[species]


def convert(ctx: HandlerContext) -> HandlerOutput:
    def plan_of(member: str) -> tuple[str | None, int]:  # raises on a member outside the 7 species
        label, is_test = plan(member)
        return ("test" if is_test else None), label

    examples = planned_examples(ctx, [ctx.file("butterflies.zip")], plan_of, CategoricalSplitter(FOR_TRAIN), sort=False)
    return HandlerOutput(examples, list(CLASS_NAMES))


HANDLER = Handler(
    name="butterflies",
    dataset_key="butterflies",
    artefacts=(
        Artefact(
            "butterflies.zip",
            "https://web.archive.org/web/20070829035029/http://www-cvr.ai.uiuc.edu/ponce_grp/data/butterflies/butterflies.zip",
            "cc9bfe5e22f9001262b785ff33221581",
        ),
    ),
    convert=convert,
    split_rule="test: the authors' 10 test images per species; rest: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), zip entry order",
    website="https://web.archive.org/web/20070829035029/http://www-cvr.ai.uiuc.edu/ponce_grp/data/index.html",
    citation="S. Lazebnik, C. Schmid, J. Ponce, Semi-Local Affine Parts for Object Recognition, BMVC 2004",
)
