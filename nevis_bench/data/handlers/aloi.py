"""Amsterdam Library of Object Images (``nevis:aloi``): 1,000 objects, colour PNGs at quarter resolution.

Archives: ``aloi_red4_col.tar`` (illumination colour), ``aloi_red4_view.tar`` (viewing angle) and
``aloi_red4_ill.tar`` (illumination direction), each with ``<folder>/<object>/<object>_<variant>.png``,
object 1..1000. Order: archive order, ``col`` before ``view``.

Label (reference): the object number (second path component) - 1.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over the
``col`` then ``view`` images; test = the ``ill`` images (a held-out kind of variation).
Deviation: the reference also downloaded ``aloi_red4_stereo.tar`` (md5 44fef81680375641ea374c32dbe6d68d)
but never read it; it is not required here. Files whose second path component is not an object
number are skipped (the reference stopped on them).
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, labelled_examples

NUM_OBJECTS = 1000
TRAIN_PARTS = ("col", "view")
TEST_PARTS = ("ill",)


def label_of(member: str) -> int | None:
    parts = member.split("/")
    if len(parts) < 3 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= NUM_OBJECTS:
        return None
    return int(parts[1]) - 1


def convert(ctx: HandlerContext) -> HandlerOutput:
    archives = {part: ctx.file(f"aloi_red4_{part}.tar") for part in TRAIN_PARTS + TEST_PARTS}

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        for part in TRAIN_PARTS + TEST_PARTS:
            yield from labelled_examples(ctx, [archives[part]], label_of, "test" if part in TEST_PARTS else splitter)

    return HandlerOutput(examples(), [str(k) for k in range(1, NUM_OBJECTS + 1)])


_BASE = "http://aloi.science.uva.nl/tars/"
HANDLER = Handler(
    name="aloi",
    dataset_key="aloi",
    artefacts=(
        Artefact("aloi_red4_col.tar", _BASE + "aloi_red4_col.tar", "c0486588258de8a26df4ed7aff0b34f8"),
        Artefact("aloi_red4_view.tar", _BASE + "aloi_red4_view.tar", "ca29f342bb0c1fa4788e9f76f591ec59"),
        Artefact("aloi_red4_ill.tar", _BASE + "aloi_red4_ill.tar", "0f72c3acf66908e61b6f8d5bf5981193"),
    ),
    convert=convert,
    split_rule="col then view images: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), archive order; test: ill images",
    website="http://aloi.science.uva.nl/",
    licence="free for research use; see the website",
    citation="J. M. Geusebroek, G. J. Burghouts, A. W. M. Smeulders, The Amsterdam library of object images, IJCV 2005",
)
