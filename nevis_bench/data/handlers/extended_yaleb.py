"""Extended Yale Face Database B (``nevis:extended_yaleb``): 28 subjects x 9 poses x 64 illuminations, grey PGMs.

Archive: ``extended-yale-dataset-b.zip`` (Kaggle ``souvadrahati/extended-yale-dataset-b``) with one
folder per subject, ``.../yaleB<id>/yaleB<id>_P<pose>A<azimuth>E<elevation>.pgm`` (ids 11..39
without 14), plus ``*_Ambient.pgm`` images without the subject and ``*.info`` file lists (ignored).
Order: sorted member names.

Label (reference): the subject (the part of the file name before ``_``); class ids follow the sorted
names of the folders that hold the archive's files.

Split rule (reference, by pose; the pose is characters 8..10 of the file name, ``P00``..``P08``):
train = P00, P02, P03, P04, P07; dev = P05; dev_test = P01; test = P06, P08. Frontal-ish poses train,
extreme poses test.
Deviations: only the folders of the kept ``.pgm`` images make classes (the reference also counted the
folder of any other entry, and asserted 28); an image whose subject is not its folder's is an error.
Manual step: Kaggle needs a login, so the zip cannot be downloaded here.
"""

from __future__ import annotations

import posixpath
import re
import zipfile

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import planned_examples, zip_names

ARCHIVE = "extended-yale-dataset-b.zip"
POSE_SPLITS = {
    "P00": "train", "P02": "train", "P03": "train", "P04": "train", "P07": "train",
    "P05": "dev", "P01": "dev_test", "P06": "test", "P08": "test",
}
IGNORED_NAMES = re.compile(r"info$|Ambient\.pgm$")


def is_image(member: str) -> bool:
    return member.endswith(".pgm") and not IGNORED_NAMES.search(member)


def split_of(member: str) -> str:
    stem = posixpath.splitext(posixpath.basename(member))[0]
    pose = stem[8:11]
    if pose not in POSE_SPLITS:
        raise HandlerError(f"extended_yaleb: cannot read the pose (characters 8..10) of {member!r}")
    return POSE_SPLITS[pose]


def subject_of(member: str) -> str:
    stem = posixpath.splitext(posixpath.basename(member))[0]
    subject = stem.split("_")[0]
    if subject != posixpath.basename(posixpath.dirname(member)):
        raise HandlerError(f"extended_yaleb: {member!r} is not in its subject's folder")
    return subject


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zip_names(zf) if is_image(n)]
    classes = sorted({subject_of(n) for n in names})
    plan = {n: (split_of(n), classes.index(subject_of(n))) for n in names}  # every split fixed: no draws
    return HandlerOutput(planned_examples(ctx, [archive], plan.get), classes)


HANDLER = Handler(
    name="extended_yaleb",
    dataset_key="extended_yaleb",
    artefacts=(Artefact(ARCHIVE, None, "ef37284be91fe0c81dcd96baa948a2db"),),
    convert=convert,
    split_rule="by pose: P00,P02,P03,P04,P07 train; P05 dev; P01 dev_test; P06,P08 test (ambient images excluded)",
    website="http://vision.ucsd.edu/~leekc/ExtYaleDatabase/ExtYaleB.html",
    licence="free for research use, cite the authors; see the website",
    citation="K. C. Lee, J. Ho, D. Kriegman, Acquiring Linear Subspaces for Face Recognition under Variable Lighting, PAMI 2005",
    manual_step=(
        "Kaggle needs a login: run `kaggle datasets download souvadrahati/extended-yale-dataset-b` "
        f"(it writes {ARCHIVE}; the website's Download button gives archive.zip, rename it) and place the zip in DIR"
    ),
)
