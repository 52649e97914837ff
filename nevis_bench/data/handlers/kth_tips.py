"""KTH-TIPS (``nevis:kth_tips``): 10 material classes, colour images; shared code for KTH-TIPS2-a/b.

Archive: ``kth_tips_col_200x200.tar`` with ``KTH_TIPS/<class>/<image>.png``. The KTH-TIPS2 archives
(handlers ``kth_tips_2a`` and ``kth_tips_2b``) nest one more level: ``KTH-TIPS2-a/<class>/sample_<x>/
<image>.png``; the class is then the folder above ``sample_<x>``. Class ids: sorted class names. Only
``.png`` members are images. Order: archive order.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images.

Texture crops (issue 16, item 6): the reference asked for one random 64 x 64 crop per image
(``preprocessing='random_crop'``) but its writer discarded the cropped image (``_replace`` without
assignment), so the data behind its published numbers are whole images. By default we therefore keep
whole images, matching the reference's effective data. The intended crops are an option: set the
environment variable ``NEVIS_TEXTURE_CROPS=1`` when preparing, e.g.
``NEVIS_TEXTURE_CROPS=1 nevis-bench data prepare kth_tips --from DIR --force`` (also ``kth_tips_2a``,
``kth_tips_2b``, ``uiuc_texture``), or from Python use this module's ``HANDLER_WITH_CROPS``. Each
split then draws its crops from its own ``np.random.default_rng(0)`` (``left = integers(0, W - 64)``,
``top = integers(0, H - 64)``) in the order of the split's examples; a side of 64 pixels or fewer is kept
whole. The crops replace the images under the same ids and splits; ``metadata.json`` records
``notes.preprocessing``. The reference's crops used the same generator but in its shuffled write order,
which cannot be reproduced.

Deviation: class names come from the folders of the images rather than from the tar's directory
entries (the same list on the publisher's archives, and independent of whether a tar stores
directory entries).
"""

from __future__ import annotations

import dataclasses
import functools

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import (
    SplitCropper, found_classes, labelled_examples, texture_crops_requested,
)

CROPS_NOTE = "random 64x64 crop per image, per-split default_rng(0) in example order (NEVIS_TEXTURE_CROPS)"


def class_of(path: str) -> str | None:
    """The class folder of an image member, or None for members that are not ``.png`` images."""
    parts = path.split("/")
    if not path.lower().endswith(".png") or len(parts) < 3:
        return None
    if parts[-2].startswith("sample"):
        return parts[-3] if len(parts) >= 4 else None
    return parts[-2]


def convert_tar(ctx: HandlerContext, archive_name: str, crops: bool | None = None) -> HandlerOutput:
    archive = ctx.file(archive_name)
    classes, label_of = found_classes([archive], class_of)
    use_crops = texture_crops_requested(crops)
    notes = {"preprocessing": CROPS_NOTE if use_crops else "none (whole images, as the reference's effective data)"}

    examples = labelled_examples(ctx, [archive], label_of, crop=SplitCropper() if use_crops else None)
    return HandlerOutput(examples, classes, notes)


def texture_handlers(name: str, archive: str, md5: str, **facts) -> tuple[Handler, Handler]:
    """The handler (whole images unless NEVIS_TEXTURE_CROPS is set) and its always-cropping variant."""
    handler = Handler(
        name=name,
        dataset_key=facts.pop("dataset_key"),
        artefacts=(Artefact(archive, "https://www.csc.kth.se/cvap/databases/kth-tips/" + archive, md5),),
        convert=functools.partial(convert_tar, archive_name=archive),
        split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, archive order",
        website="https://www.csc.kth.se/cvap/databases/kth-tips/index.html",
        licence="research use; see the dataset's website for its terms",
        **facts,
    )
    with_crops = dataclasses.replace(
        handler,
        convert=functools.partial(convert_tar, archive_name=archive, crops=True),
        split_rule=handler.split_rule + "; " + CROPS_NOTE.split(" (")[0],
    )
    return handler, with_crops


HANDLER, HANDLER_WITH_CROPS = texture_handlers(
    "kth_tips",
    "kth_tips_col_200x200.tar",
    "4f92fe540feb4f3c66938291e4516f6c",
    dataset_key="kth_tips",
    citation=(
        "E. Hayman, B. Caputo, M. Fritz, J.-O. Eklundh, On the significance of real-world conditions for material "
        "classification, ECCV 2004"
    ),
)
