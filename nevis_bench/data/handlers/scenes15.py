"""15 Scenes (``nevis:scenes15``): 15 scene classes, grey images.

Archive: ``scene_categories.zip`` with ``<class>/<image>.jpg`` (the class is the folder holding the
image). Order: sorted member names. Class ids follow the reference's label list below.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples, parent_name

CLASS_NAMES = [
    "PARoffice", "kitchen", "MITinsidecity", "MITforest", "MITcoast", "MITstreet", "store", "industrial",
    "bedroom", "MITmountain", "MIThighway", "MITopencountry", "CALsuburb", "MITtallbuilding", "livingroom",
]


def convert(ctx: HandlerContext) -> HandlerOutput:
    def label_of(name: str) -> int | None:
        return CLASS_NAMES.index(parent_name(name)) if parent_name(name) in CLASS_NAMES else None

    return HandlerOutput(labelled_examples(ctx, [ctx.file("scene_categories*.zip")], label_of), list(CLASS_NAMES))


HANDLER = Handler(
    name="scenes15",
    dataset_key="scenes15",
    artefacts=(
        Artefact(
            "scene_categories.zip",
            "https://web.archive.org/web/20070829035029/http://www-cvr.ai.uiuc.edu/ponce_grp/data/scene_categories/scene_categories.zip",
            "58828019197b2ad0a7efb472e7a85c2a",
        ),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, sorted member order",
    website="https://www-cvr.ai.uiuc.edu/ponce_grp/data/",
)
