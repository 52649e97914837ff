"""Animal shapes (``nevis:animal``): animal silhouettes, one class per animal folder.

Archives: ``non_rigid_shape_A.zip`` and ``non_rigid_shape_B.zip`` (X. Bai's non-rigid shape sets),
each with ``<top>/<class>/<image>``. The class is the folder holding the image; class ids are the
sorted class names over both archives. Order: the two archives in name order, sorted member names
within each.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images.
Deviation: the reference numbered the classes in the iteration order of a Python ``set`` of folder
names, which changes from run to run (string hash randomisation); we sort them. It also read the
archives in directory-listing order (undefined); we use name order. The publisher's download links
(xiang.bai.googlepages.com) are dead; the URLs and checksums are the reference's, for a copy you
obtain elsewhere.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import found_classes, labelled_examples, parent_name

ARCHIVES = ("non_rigid_shape_A.zip", "non_rigid_shape_B.zip")


def class_of(name: str) -> str | None:
    parts = name.split("/")
    return parent_name(name) if len(parts) >= 3 else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    archives = [ctx.file(name) for name in ARCHIVES]
    classes, label_of = found_classes(archives, lambda name: class_of(name) or None)
    return HandlerOutput(labelled_examples(ctx, archives, label_of), classes)


HANDLER = Handler(
    name="animal",
    dataset_key="animal",
    artefacts=(
        Artefact("non_rigid_shape_A.zip", "http://xiang.bai.googlepages.com/non_rigid_shape_A.zip", "d88d44dc6d2382de3a5857d86fb5d430"),
        Artefact("non_rigid_shape_B.zip", "http://xiang.bai.googlepages.com/non_rigid_shape_B.zip", "dae4a05b9797a3109078d1553173b9a8"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images (archives and members in name order)",
    website="https://sites.google.com/site/xiangbai/animaldataset",
    licence="research use; see the dataset's website for its terms",
    citation="X. Bai, W. Liu, Z. Tu, Integrating contour and skeleton for shape classification, ICCV Workshops 2009",
)
