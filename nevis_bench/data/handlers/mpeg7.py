"""MPEG-7 shapes (``nevis:mpeg7``, CE-Shape-1): 70 shape classes x 20 binary silhouettes (GIF).

Archive: ``MPEG7dataset.zip`` with ``original/<class>-<n>.gif`` (e.g. ``original/apple-1.gif``) plus
six extra files whose names contain ``confusion`` or ``shapedata`` (skipped, as the reference does).
Order: sorted member names.

Label (reference): the text before the first ``-`` of the file name; class ids follow the sorted
(case-sensitive, so capitalised names first) list of the classes present in the archive.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in sorted member order.
Deviation: folder entries of the zip are not classes (the reference's class scan would have counted a
folder entry as a class with the empty name, shifting every id by one).
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import found_classes, labelled_examples


def class_of(member: str) -> str | None:
    name = posixpath.basename(member).split("-")[0]
    if not name or "confusion" in name or "shapedata" in name:
        return None
    return name


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("MPEG7dataset.zip")
    classes, label_of = found_classes([archive], class_of)
    return HandlerOutput(labelled_examples(ctx, [archive], label_of), classes)


HANDLER = Handler(
    name="mpeg7",
    dataset_key="mpeg7",
    artefacts=(
        Artefact("MPEG7dataset.zip", "https://dabi.temple.edu/external/shape/MPEG7/MPEG7dataset.zip", "bedd54856c425dcc6e242515c4f67d75"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all shapes, sorted member order; classes sorted",
    website="https://dabi.temple.edu/external/shape/MPEG7",
    licence="research use; see the website",
    citation="L. J. Latecki, R. Lakaemper, U. Eckhardt, Shape descriptors for non-rigid shapes with a single closed contour, CVPR 2000",
)
