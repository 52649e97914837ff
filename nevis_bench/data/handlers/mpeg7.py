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
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, zip_names


def class_of(member: str) -> str | None:
    name = posixpath.basename(member).split("-")[0]
    if not name or "confusion" in name or "shapedata" in name:
        return None
    return name


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("MPEG7dataset.zip")
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zip_names(zf) if class_of(n) is not None]
    classes = sorted({class_of(n) for n in names})
    ids = {name: i for i, name in enumerate(classes)}

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with zipfile.ZipFile(archive) as zf:
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), archive.name):
                yield Example(splitter.next(), example_id, image, ids[class_of(name)])

    return HandlerOutput(examples(), classes)


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
