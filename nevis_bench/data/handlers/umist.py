"""UMIST faces (``nevis:umist``, Sheffield/UMIST face database): 20 people, grey PGM images.

Archive: ``face.tar.gz`` (University of Lincoln eprint 16081) with one folder per person,
``1a/`` .. ``1t/``, holding that person's images. Order: archive order.

Label (reference): the person's folder, ids in the reference's fixed order of :data:`CLASS_NAMES`.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in archive order.
Deviation: files outside the 20 person folders are skipped (the reference stopped with a KeyError).
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

CLASS_NAMES = ["1s", "1r", "1n", "1i", "1d", "1e", "1q", "1c", "1k", "1l", "1h", "1o", "1a", "1b", "1t", "1m", "1g", "1f", "1p", "1j"]


def label_of(member: str) -> int | None:
    person = posixpath.dirname(member)
    return CLASS_NAMES.index(person) if person in CLASS_NAMES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    return HandlerOutput(labelled_examples(ctx, [ctx.file("face.tar.gz")], label_of), list(CLASS_NAMES))


HANDLER = Handler(
    name="umist",
    dataset_key="umist",
    artefacts=(Artefact("face.tar.gz", "http://eprints.lincoln.ac.uk/id/eprint/16081/1/face.tar.gz", "11011ab5dded043f5e4331711c2407c8"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the images of the 20 person folders, archive order",
    website="http://eprints.lincoln.ac.uk/id/eprint/16081",
    citation="D. B. Graham and N. M. Allinson, Characterising virtual eigensignatures for general purpose face recognition, 1998",
)
