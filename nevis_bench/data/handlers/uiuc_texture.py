"""UIUC texture (``nevis:uiuc_texture``): 25 texture classes, grey images (640 x 480 JPEG).

Archives: ``T01-T05.zip``, ``T06-T10.zip``, ``T11-T15.zip``, ``T16-T20.zip``, ``T21-T25.zip``, each
with one folder per class (``T01_bark1/T01_01.jpg``, ...). The class is the folder holding the image;
class ids are the sorted folder names over all five archives. Order: the archives in name order,
sorted member names within each.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images.

Texture crops (issue 16, item 6): whole images by default, as the reference's effective data (its
requested random 64 x 64 crops were dropped by a bug); ``NEVIS_TEXTURE_CROPS=1`` when preparing (or
``HANDLER_WITH_CROPS`` from Python) gives the intended crops. See ``kth_tips.py`` for the crop rule.

Deviations: the reference read the archives in directory-listing order (undefined); we use name
order. Class names come from the folders of the files rather than the zips' directory entries (the
same on the publisher's archives).
"""

from __future__ import annotations

import dataclasses
import functools

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import (
    SplitCropper, found_classes, labelled_examples, texture_crops_requested,
)
from nevis_bench.data.handlers.kth_tips import CROPS_NOTE

ARCHIVES = ("T01-T05.zip", "T06-T10.zip", "T11-T15.zip", "T16-T20.zip", "T21-T25.zip")


def folder_of(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def convert(ctx: HandlerContext, crops: bool | None = None) -> HandlerOutput:
    archives = [ctx.file(name) for name in ARCHIVES]
    classes, label_of = found_classes(archives, lambda name: folder_of(name) or None)
    use_crops = texture_crops_requested(crops)
    notes = {"preprocessing": CROPS_NOTE if use_crops else "none (whole images, as the reference's effective data)"}

    examples = labelled_examples(ctx, archives, label_of, crop=SplitCropper() if use_crops else None)
    return HandlerOutput(examples, classes, notes)


_BASE = "https://web.archive.org/web/20070829035029/http://www-cvr.ai.uiuc.edu/ponce_grp/data/texture_database/"
HANDLER = Handler(
    name="uiuc_texture",
    dataset_key="uiuc_texture",
    artefacts=tuple(
        Artefact(name, _BASE + name, md5)
        for name, md5 in zip(
            ARCHIVES,
            (
                "e622e4708e336d51b3bbd45503618af1", "50ab35564058d3f1d05e6f5d767db5df", "d1c7584aeb0ab1e41c7157c60e84c3ad",
                "d527ba7d820e1eeaef49f9c07b82aa34", "74a29af10123f2be70ea481e5af3ec36",
            ),
        )
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images (archives and members in name order)",
    website="https://www-cvr.ai.uiuc.edu/ponce_grp/data/",
    licence="research use; see the dataset's website for its terms",
    citation="S. Lazebnik, C. Schmid, J. Ponce, A sparse texture representation using local affine regions, PAMI 2005",
)
HANDLER_WITH_CROPS = dataclasses.replace(
    HANDLER, convert=functools.partial(convert, crops=True), split_rule=HANDLER.split_rule + "; random 64x64 crop per image"
)
