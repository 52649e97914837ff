"""8 outdoor scenes (``nevis:scenes8``, Oliva & Torralba spatial envelope): 8 classes, colour 256 x 256.

Archive: ``spatial_envelope_256x256_static_8outdoorcategories.zip`` with images named
``<category>_<source><n>.jpg`` (e.g. ``coast_arnat59.jpg``) in one folder. Order: sorted member names.

Label (reference): the text before the first ``_`` of the file name, ids in the reference's order of
:data:`CLASS_NAMES`.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in sorted member order.
Deviation: files whose name does not start with one of the 8 categories are skipped (the reference
stopped with a KeyError on them).
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

CLASS_NAMES = ["highway", "street", "tallbuilding", "forest", "insidecity", "opencountry", "mountain", "coast"]
ARCHIVE = "spatial_envelope_256x256_static_8outdoorcategories.zip"


def label_of(member: str) -> int | None:
    category = posixpath.basename(member).split("_")[0]
    return CLASS_NAMES.index(category) if category in CLASS_NAMES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    return HandlerOutput(labelled_examples(ctx, [ctx.file(ARCHIVE)], label_of), list(CLASS_NAMES))


HANDLER = Handler(
    name="scenes8",
    dataset_key="scenes8",
    artefacts=(
        Artefact(ARCHIVE, "https://people.csail.mit.edu/torralba/code/spatialenvelope/" + ARCHIVE, "c26fe529d49848091a759d7aadd267f5"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, sorted member order",
    website="https://people.csail.mit.edu/torralba/code/spatialenvelope/",
    citation="A. Oliva and A. Torralba, Modeling the shape of the scene: a holistic representation of the spatial envelope, IJCV 2001",
)
