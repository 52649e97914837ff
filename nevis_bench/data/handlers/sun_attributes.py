"""SUN attributes (``nevis:sun_attributes``): 102 scene attributes, multi-label.

Archives: ``SUNAttributeDB.tar.gz`` with ``SUNAttributeDB/images.mat`` (``images``: the image paths,
``<letter>/<scene>/<file>.jpg``) and ``SUNAttributeDB/attributeLabels_continuous.mat`` (``labels_cv``:
one row of 102 attribute votes in [0, 1] per image, same order), and ``SUNAttributeDB_Images.tar.gz``
with the images ``images/<letter>/<scene>/<file>.jpg``. An image's labels are the attributes with a
non-zero vote (class ids = attribute columns). Members of the image archive that are not listed are
ignored. Order: image archive order.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the
listed images.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.io

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import iter_tar, labelled_examples

NUM_CLASSES = 102
LABELS = "SUNAttributeDB/attributeLabels_continuous.mat"
NAMES = "SUNAttributeDB/images.mat"
ATTRIBUTE_NAMES = "SUNAttributeDB/attributes.mat"


def strings(array) -> list[str]:
    """The strings of a MATLAB cell array as loaded by scipy (each cell a 1-element array)."""
    return [str(np.asarray(cell).ravel()[0]) if np.asarray(cell).size else "" for cell in np.asarray(array, dtype=object).ravel()]


def read_attributes(ctx: HandlerContext) -> tuple[dict[str, list[int]], list[str]]:
    archive = ctx.file("SUNAttributeDB.tar.gz")
    files = dict(iter_tar(archive, keep=lambda n: n in (LABELS, NAMES, ATTRIBUTE_NAMES)))
    for needed in (LABELS, NAMES):
        if needed not in files:
            raise HandlerError(f"sun_attributes: {archive.name} has no {needed}")
    votes = np.asarray(scipy.io.loadmat(io.BytesIO(files[LABELS]))["labels_cv"])
    names = strings(scipy.io.loadmat(io.BytesIO(files[NAMES]))["images"])
    if votes.shape != (len(names), NUM_CLASSES):
        raise HandlerError(f"sun_attributes: labels_cv has shape {votes.shape}, expected ({len(names)}, {NUM_CLASSES})")
    classes = [f"attribute_{k}" for k in range(NUM_CLASSES)]
    if ATTRIBUTE_NAMES in files:
        found = strings(scipy.io.loadmat(io.BytesIO(files[ATTRIBUTE_NAMES]))["attributes"])
        if len(found) == NUM_CLASSES:
            classes = found
    return {f"images/{name}": np.flatnonzero(row).tolist() for name, row in zip(names, votes)}, classes


def convert(ctx: HandlerContext) -> HandlerOutput:
    labels, classes = read_attributes(ctx)
    return HandlerOutput(labelled_examples(ctx, [ctx.file("SUNAttributeDB_Images.tar.gz")], labels.get), classes)


_BASE = "https://cs.brown.edu/~gmpatter/Attributes/"
HANDLER = Handler(
    name="sun_attributes",
    dataset_key="sun_attribute",
    artefacts=(
        Artefact("SUNAttributeDB_Images.tar.gz", _BASE + "SUNAttributeDB_Images.tar.gz", "5966725c7306df6e05cd3ada7f45a18b"),
        Artefact("SUNAttributeDB.tar.gz", _BASE + "SUNAttributeDB.tar.gz", "883293e5b645822f6ae0046c6df54183"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the listed images, image archive order",
    website="https://cs.brown.edu/~gmpatter/sunattributes.html",
    licence="research use; see the dataset's website for its terms",
    citation="G. Patterson, J. Hays, SUN attribute database: discovering, annotating, and recognizing scene attributes, CVPR 2012",
)
