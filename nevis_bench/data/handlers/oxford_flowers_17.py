"""Oxford Flowers 17 (``nevis:oxford_flowers_17``): 17 flower species x 80 colour images.

Files: ``17flowers.tgz`` with ``jpg/image_0001.jpg`` .. ``jpg/image_1360.jpg`` (plus ``jpg/files.txt``,
ignored) and ``datasplits.mat`` (MATLAB file with the three official splits as 1-based image numbers,
``trn1``/``val1``/``tst1`` .. ``trn3``/``val3``/``tst3``). Order: archive order.

Label (reference): images are stored class by class, 80 each: (number - 1) // 80. The reference gives
no class names; ours are the website's species list in its order (the order commonly used for the
80-image blocks), for display only.

Split rule (reference): the first official split: ``trn1`` -> train/dev by categorical draws 0.80/0.20
(RandomState(0)) in archive order; ``val1`` -> dev_test; ``tst1`` -> test.
"""

from __future__ import annotations

import re

import numpy as np

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import TRAIN_AND_DEV_ONLY, CategoricalSplitter, planned_examples

IMAGES_PER_CLASS = 80
NUM_CLASSES = 17
MEMBER = re.compile(r"(?:.*/)?jpg/image_(\d+)\.jpg")
CLASS_NAMES = [
    "daffodil", "snowdrop", "lily valley", "bluebell", "crocus", "iris", "tigerlily", "tulip", "fritillary",
    "sunflower", "daisy", "colts' foot", "dandelion", "cowslip", "buttercup", "windflower", "pansy",
]


def read_splits(path) -> dict[int, str]:
    """Image number -> ``train`` (official trn1, before the dev draw), ``dev_test`` (val1) or ``test`` (tst1)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
        parts = {key: np.asarray(mat[key]).astype(int).ravel() for key in ("trn1", "val1", "tst1")}
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise HandlerError(f"oxford_flowers_17: cannot read trn1/val1/tst1 from {path}: {error}") from error
    plan: dict[int, str] = {}
    for key, split in (("trn1", "train"), ("val1", "dev_test"), ("tst1", "test")):
        for number in parts[key]:
            if plan.setdefault(int(number), split) != split:
                raise HandlerError(f"oxford_flowers_17: image {number} is in two official splits of {path}")
    return plan


def convert(ctx: HandlerContext) -> HandlerOutput:
    plan = read_splits(ctx.file("datasplits.mat"))
    archive = ctx.file("17flowers.tgz")

    def number(name: str) -> int | None:
        match = MEMBER.fullmatch(name)
        return int(match.group(1)) if match and int(match.group(1)) in plan else None

    def plan_of(name: str) -> tuple[str | None, int] | None:
        k = number(name)
        return None if k is None else ((None if plan[k] == "train" else plan[k]), (k - 1) // IMAGES_PER_CLASS)

    return HandlerOutput(planned_examples(ctx, [archive], plan_of, CategoricalSplitter(TRAIN_AND_DEV_ONLY)), list(CLASS_NAMES))


_BASE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/"
HANDLER = Handler(
    name="oxford_flowers_17",
    dataset_key="oxford_flowers",
    artefacts=(
        Artefact("17flowers.tgz", _BASE + "17flowers.tgz", "b59a65d8d1a99cd66944d474e1289eab"),
        Artefact("datasplits.mat", _BASE + "datasplits.mat", "4828cddfd0d803c5abbdebcb1e148a1e"),
    ),
    convert=convert,
    split_rule="official split 1: trn1 -> categorical 0.80/0.20 train/dev (RandomState(0)), archive order; val1 -> dev_test; tst1 -> test",
    website="https://www.robots.ox.ac.uk/~vgg/data/flowers/17/",
    citation="M.-E. Nilsback and A. Zisserman, A Visual Vocabulary for Flower Classification, CVPR 2006",
)
