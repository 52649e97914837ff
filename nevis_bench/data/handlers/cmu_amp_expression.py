"""CMU AMP face expression database (``nevis:cmu_amp_expression``): 13 subjects x 75 grey 64 x 64 images.

Archive: ``faceExpressionDatabase.zip`` with ``<S><nn>.bmp`` at its root (subject letter ``A``..``M``,
image number ``00``..``74``) and a ``readme.txt`` (ignored). Order: sorted member names.

Label (reference): subject letter - ``A``.

Split rule (reference, per subject, fixed): ``rng = np.random.default_rng(1)`` shared across subjects in
letter order; each subject draws ``rng.permutation(75)``; the first 41 image numbers -> train, the
next 9 -> dev, the next 9 -> dev_test, the remaining 16 -> test. (The sizes are the reference's
``int(75 * 0.8 * 0.7)``, ``int(75 * 0.8 * 0.15)`` twice, where 75 * 0.56 rounds down to 41.)
Members not in that plan (other names) are skipped, as the reference's filters did.
"""

from __future__ import annotations

import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import zip_names

NUM_SUBJECTS = 13
IMAGES_PER_SUBJECT = 75
SPLIT_SIZES = (("train", 41), ("dev", 9), ("dev_test", 9), ("test", 16))
SEED = 1
CLASS_NAMES = [chr(ord("A") + k) for k in range(NUM_SUBJECTS)]


def split_plan() -> dict[str, str]:
    """File name (``A00.bmp``) -> split, for the 13 x 75 images."""
    rng = np.random.default_rng(SEED)
    plan = {}
    for subject in CLASS_NAMES:
        order = rng.permutation(IMAGES_PER_SUBJECT)
        start = 0
        for split, size in SPLIT_SIZES:
            for number in order[start : start + size]:
                plan[f"{subject}{int(number):02d}.bmp"] = split
            start += size
    return plan


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("faceExpressionDatabase.zip")
    plan = split_plan()

    def examples():
        with zipfile.ZipFile(archive) as zf:
            members = ((n, zf.read(n)) for n in zip_names(zf) if n in plan)
            for name, example_id, image in ctx.decoded(members, archive.name):
                yield Example(plan[name], example_id, image, CLASS_NAMES.index(name[0]))

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="cmu_amp_expression",
    dataset_key="cmu_amp_expression",
    artefacts=(
        Artefact(
            "faceExpressionDatabase.zip",
            "http://chenlab.ece.cornell.edu/_download/FaceAuthentication/faceExpressionDatabase.zip",
            "f6c2fdf87c095c17e2527c36a0528966",
        ),
    ),
    convert=convert,
    split_rule="per subject, default_rng(1).permutation(75) in subject order: 41 train, 9 dev, 9 dev_test, 16 test",
    website="http://chenlab.ece.cornell.edu/projects/FaceAuthentication/Default.html",
    citation="X. Liu, T. Chen, B. V. K. Vijaya Kumar, Face Authentication for Multiple Subjects Using Eigenflow, Pattern Recognition 2003",
)
