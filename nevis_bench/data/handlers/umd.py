"""UMD high-resolution textures (``nevis:umd``): 25 texture classes, grey images.

Archives: ``textures-1.zip`` (classes 1-12) and ``textures-2.zip`` (classes 13-25), each with one
folder per class named by its number (``.../<n>/<image>``); the class id is ``n - 1``. Files ending in
``.db`` (Windows thumbnails) are ignored, as are files whose folder is not a class number. Order: the
two archives in name order, sorted member names within each.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images.
Deviation: the reference read the archives in directory-listing order (undefined); we use name order.
The reference stopped on a file outside a numbered folder; we skip such files.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples, parent_name

NUM_CLASSES = 25
ARCHIVES = ("textures-1.zip", "textures-2.zip")


def label_of(name: str) -> int | None:
    if name.lower().endswith(".db"):
        return None
    folder = parent_name(name)
    if not folder.isdigit() or not 1 <= int(folder) <= NUM_CLASSES:
        return None
    return int(folder) - 1


def convert(ctx: HandlerContext) -> HandlerOutput:
    examples = labelled_examples(ctx, [ctx.file(name) for name in ARCHIVES], label_of)
    return HandlerOutput(examples, [str(n) for n in range(1, NUM_CLASSES + 1)])


_BASE = "http://users.umiacs.umd.edu/~fer/High-resolution-data-base/"
HANDLER = Handler(
    name="umd",
    dataset_key="umd",
    artefacts=(
        Artefact("textures-1.zip", _BASE + "textures-1.zip", "818b5b13035374cffd4db604e718ddbf"),
        Artefact("textures-2.zip", _BASE + "textures-2.zip", "e9853d0f7eaa9e57c4756e9017d0cbc9"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images (archives and members in name order)",
    website="http://users.umiacs.umd.edu/~fer/website-texture/texture.htm",
    licence="research use; no licence stated by the publisher (see the website)",
    citation="Y. Xu, H. Ji, C. Fermuller, A projective invariant for textures, CVPR 2006",
)
