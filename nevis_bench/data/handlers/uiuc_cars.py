"""UIUC cars (``nevis:uiuc_cars``): 2 classes (neg: no car, pos: car), grey PGM crops.

Archive: ``uiuc.tar.gz`` with ``CarData/TrainImages/{pos,neg}-<n>.pgm`` (plus test scenes and text
files). Order: archive order.

Split rule (reference): no official split used; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over
the images.
Deviation: only ``TrainImages`` are used, as the reference's docstring intends (the classification
task of the source paper). The reference code also took ``CarData/TestImages/*.pgm`` (full scenes that
contain cars) and labelled them "neg" because their path lacks "pos"; we do not reproduce that.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

CLASS_NAMES = ["neg", "pos"]


def _label(name: str) -> int | None:
    parts = name.split("/")
    if len(parts) < 2 or parts[-2] != "TrainImages":
        return None
    base = parts[-1]
    if base.startswith("pos"):
        return 1
    if base.startswith("neg"):
        return 0
    return None


def convert(ctx: HandlerContext) -> HandlerOutput:
    return HandlerOutput(labelled_examples(ctx, [ctx.file("uiuc.tar.gz")], _label), list(CLASS_NAMES))


HANDLER = Handler(
    name="uiuc_cars",
    dataset_key="uiuc_cars",
    artefacts=(Artefact("uiuc.tar.gz", "http://host.robots.ox.ac.uk/pascal/VOC/download/uiuc.tar.gz", "716c6078f57839bb440967fa74116da3"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over CarData/TrainImages",
    website="http://host.robots.ox.ac.uk/pascal/VOC/databases.html#UIUC",
    citation="S. Agarwal and D. Roth, Learning a sparse representation for object detection, 2002",
)
