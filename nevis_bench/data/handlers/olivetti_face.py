"""Olivetti / ORL faces (``nevis:olivetti_face``): 40 subjects, grey 92 x 112 images.

Archive: ``the-orl-database-for-training-and-testing.zip``, the Kaggle copy of the AT&T (Olivetti
Research Laboratory) database; its images are named ``<image>_<subject>.<ext>`` (subject 1..40).
Order: sorted member names.

Label (reference): the number after the first underscore of the file name, minus one.

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in sorted member order.
Deviations: the reference declared 41 classes although subjects 1..40 give labels 0..39; we declare
40 (the catalogue's count). A member whose name does not have that form is an error naming it.
Manual step: Kaggle needs a login, so the zip cannot be downloaded here.
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

ARCHIVE = "the-orl-database-for-training-and-testing.zip"
NUM_SUBJECTS = 40


def label_of(member: str) -> int:
    stem = posixpath.basename(member).split(".")[0]
    parts = stem.split("_")
    if len(parts) < 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= NUM_SUBJECTS:
        raise HandlerError(f"olivetti_face: {member!r} is not named <image>_<subject 1..40>.<ext>")
    return int(parts[1]) - 1


def convert(ctx: HandlerContext) -> HandlerOutput:
    examples = labelled_examples(ctx, [ctx.file(ARCHIVE)], label_of)  # label_of raises on a misnamed member
    return HandlerOutput(examples, [f"s{i}" for i in range(1, NUM_SUBJECTS + 1)])


HANDLER = Handler(
    name="olivetti_face",
    dataset_key="olivetti_face",
    artefacts=(Artefact(ARCHIVE, None, "09871495160825a485b0f2595ba2bb34"),),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, sorted member order",
    website="https://www.kaggle.com/tavarez/the-orl-database-for-training-and-testing",
    licence="AT&T Laboratories Cambridge: free for research, credit the Olivetti Research Laboratory",
    citation="F. Samaria and A. Harter, Parameterisation of a stochastic model for human face identification, 1994",
    manual_step=(
        "Kaggle needs a login: run `kaggle datasets download tavarez/the-orl-database-for-training-and-testing` "
        f"(it writes {ARCHIVE}; the website's Download button gives archive.zip, rename it) and place the zip in DIR"
    ),
)
