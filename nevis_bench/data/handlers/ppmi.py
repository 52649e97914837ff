"""People Playing Musical Instruments (``nevis:ppmi``): 12 instruments x {playing, holding}, colour images.

Archive: ``norm_ppmi_12class.zip`` (the normalised images) with
``norm_image/{play,with}_instrument/<instrument>/{train,test}/<image>.jpg`` and a ``README``.
Order: sorted member names.

Label (reference): the first three path components (``norm_image/play_instrument/violin``): 24
classes, ids in sorted order of those paths.

Split rule (reference): images whose path contains ``test`` -> test; the others (whose path contains
``train``) -> train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) in sorted member
order.
Deviations: class ids follow the sorted class paths (the reference numbered an unordered ``set``, so its
ids changed from run to run with Python's string hashing); a file that is less than three folders deep
(other than ``README``) is skipped instead of stopping the conversion; a path containing both
``train`` and ``test`` would have been in both of the reference's parts and is an error here.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, planned_examples, zip_names


def class_of(member: str) -> str | None:
    parts = member.split("/")
    return "/".join(parts[:3]) if len(parts) >= 4 else None


def is_test(member: str) -> bool:
    if "test" in member and "train" in member:
        raise HandlerError(f"ppmi: {member!r} names both train and test")
    return "test" in member


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("norm_ppmi_12class.zip")
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zip_names(zf) if class_of(n) is not None]
    classes = sorted({class_of(n) for n in names})
    plan = {n: ("test" if is_test(n) else None, classes.index(class_of(n))) for n in names}
    return HandlerOutput(planned_examples(ctx, [archive], plan.get, CategoricalSplitter(FOR_TRAIN)), classes)


HANDLER = Handler(
    name="ppmi",
    dataset_key="ppmi",
    artefacts=(Artefact("norm_ppmi_12class.zip", "http://vision.stanford.edu/Datasets/norm_ppmi_12class.zip", "88118d8c6b50d72f0bb37a89269185ab"),),
    convert=convert,
    split_rule="official test (paths with 'test'); official train: categorical 0.70/0.15/0.15 train/dev/dev_test (RandomState(0)), sorted member order",
    website="https://ai.stanford.edu/~bangpeng/ppmi.html",
    citation="B. Yao and L. Fei-Fei, Grouplet: A Structured Image Representation for Recognizing Human and Object Interactions, CVPR 2010",
)
