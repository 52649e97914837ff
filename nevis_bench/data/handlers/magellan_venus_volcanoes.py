"""Magellan Venus volcanoes (``nevis:magellan_venus_volcanoes``): 2 classes, grey SAR images of Venus.

Archive: ``volcanoes.tar.gz`` (UCI "Volcanoes on Venus - JARtool experiment") with
``package/Images/img<N>.sdt`` (raw 1024 x 1024 unsigned bytes, no header; the ``.spr`` header files
beside them are ignored) and ``package/GroundTruths/img<N>.lxyr`` (one volcano per line,
``<confidence> <x> <y> <radius>``, confidence 1 = definitely .. 4 = only a pit visible). The
``Chips``, ``FOA``, ``Programs`` and ``Tables`` folders are ignored. Order: archive order.

Label (reference): 1 ("pos") when the image's ground truth lists at least one volcano of confidence
1, else 0 ("neg"). An image without a ground-truth file is an error (the reference stops there too).

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the
images in archive order.
Deviation: a ground-truth line's confidence is its first whitespace-separated field; the reference
split on single spaces, so a line indented with a space would not have counted.
"""

from __future__ import annotations

import posixpath

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, iter_tar

CLASS_NAMES = ["neg", "pos"]
SIDE = 1024


def has_definite_volcano(text: str) -> bool:
    """True when a line of an ``.lxyr`` ground-truth file has confidence 1."""
    return any(line.split()[:1] == ["1"] for line in text.splitlines())


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


def _is_image(name: str) -> bool:
    return name.endswith(".sdt") and posixpath.basename(posixpath.dirname(name)) == "Images"


def _is_truth(name: str) -> bool:
    return name.endswith(".lxyr") and "GroundTruths" in name.split("/")


def decode_sdt(data: bytes, where: str) -> Image.Image:
    if len(data) != SIDE * SIDE:
        raise HandlerError(f"magellan_venus_volcanoes: {where} has {len(data)} bytes, expected {SIDE}x{SIDE}")
    return Image.fromarray(np.frombuffer(data, dtype=np.uint8).reshape(SIDE, SIDE), "L")


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("volcanoes.tar.gz")
    labels = {
        _stem(name): int(has_definite_volcano(data.decode("latin-1")))
        for name, data in iter_tar(archive, keep=_is_truth)
    }

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        for name, data in iter_tar(archive, keep=_is_image):
            if _stem(name) not in labels:
                raise HandlerError(f"magellan_venus_volcanoes: no ground truth {_stem(name)}.lxyr for {archive.name}:{name}")
            where = f"{archive.name}:{name}"
            yield Example(splitter.next(), where, decode_sdt(data, where), labels[_stem(name)])

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="magellan_venus_volcanoes",
    dataset_key="magellan_venus_volcanoes",
    artefacts=(
        Artefact(
            "volcanoes.tar.gz",
            "http://archive.ics.uci.edu/ml/machine-learning-databases/volcanoes-mld/volcanoes.tar.gz",
            "55143a4ec42b626126c9b4ed618f59f8",
        ),
    ),
    convert=convert,
    split_rule="label: any confidence-1 volcano; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over package/Images/*.sdt, archive order",
    website="http://archive.ics.uci.edu/ml/datasets/volcanoes+on+venus+-+jartool+experiment",
    licence="UCI Machine Learning Repository; see the website for its terms",
    citation="M.C. Burl, L. Asker, P. Smyth, U. Fayyad, P. Perona, L. Crumpler, J. Aubele, Learning to Recognize Volcanoes on Venus, 1998",
)
