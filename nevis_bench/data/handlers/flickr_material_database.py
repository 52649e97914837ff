"""Flickr Material Database (``nevis:flickr_material_database``, FMD): 10 materials x 100 colour images.

Archive: ``FMD.zip`` with ``image/<material>/<material>_<kind>_<nnn>_new.jpg`` (512 x 384) and
``mask/<material>/...`` (object masks, ignored), plus a few MATLAB/Thumbs files (``.m``, ``.asv``,
``.db``; ignored). Order: sorted member names.

Label (reference): the material folder, ids in the order of :data:`CLASS_NAMES` (alphabetical).

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the
images under ``image/`` in sorted member order.
Deviations: the reference asserted that every image is 512 x 384; we do not (the images are resized
when a stream is built). Files under ``image/`` outside the ten material folders are skipped (the
reference stopped on them).
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples, parent_name

CLASS_NAMES = ["fabric", "foliage", "glass", "leather", "metal", "paper", "plastic", "stone", "water", "wood"]
IGNORED_FILES = re.compile(r"\.asv$|\.m$|\.db$")


def label_of(member: str) -> int | None:
    if not member.startswith("image") or IGNORED_FILES.search(member) or parent_name(member) not in CLASS_NAMES:
        return None
    return CLASS_NAMES.index(parent_name(member))


def convert(ctx: HandlerContext) -> HandlerOutput:
    return HandlerOutput(labelled_examples(ctx, [ctx.file("FMD.zip")], label_of), list(CLASS_NAMES))


HANDLER = Handler(
    name="flickr_material_database",
    dataset_key="flicker_material_dataset",
    artefacts=(Artefact("FMD.zip", "http://people.csail.mit.edu/celiu/CVPR2010/FMD/FMD.zip", "0721ba72cd981aa9599a81bbfaaebd75"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over image/<material>/*, sorted member order",
    website="http://people.csail.mit.edu/celiu/CVPR2010/FMD/index.html",
    licence="images from Flickr under Creative Commons licences; research use, see the website",
    citation="L. Sharan, R. Rosenholtz, E. H. Adelson, Accuracy and speed of material categorization in real-world images, JOV 2014",
)
