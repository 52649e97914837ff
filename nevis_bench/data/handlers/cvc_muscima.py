"""CVC-MUSCIMA writer identification (``nevis:cvc_muscima``): 50 writers, grey score images.

Archives: ``CVCMUSCIMA_WI.zip`` (images ``CVCMUSCIMA_WI/PNG_GT_Gray/w-<nn>/p<nnn>.png``; the class is
the writer folder) and ``Partitions_Set.zip`` (``Partitions_Set/set_2_Independent/
set_2_{training,testing}_01.txt``, one ``w-<nn>/p<nnn>.png`` per line). Class ids follow the reference's
writer list below (not sorted). Order: the order of the image zip's entries (as the reference, which
iterated ``infolist()``), training images first, then test images.

Split rule (reference): writer-independent partition 1 of set 2: its training list -> train/dev/dev_test
by categorical 0.70/0.15/0.15 (RandomState(0)); its testing list -> test. Images in neither list are
not used.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, IGNORED, CategoricalSplitter

CLASS_NAMES = [
    "w-23", "w-14", "w-18", "w-11", "w-40", "w-42", "w-28", "w-03", "w-05", "w-34", "w-36", "w-37", "w-12",
    "w-31", "w-06", "w-22", "w-25", "w-21", "w-38", "w-48", "w-32", "w-07", "w-39", "w-15", "w-10", "w-17",
    "w-45", "w-50", "w-02", "w-08", "w-01", "w-20", "w-35", "w-29", "w-46", "w-47", "w-13", "w-30", "w-33",
    "w-09", "w-16", "w-49", "w-43", "w-44", "w-24", "w-19", "w-04", "w-26", "w-41", "w-27",
]
IMAGE_PREFIX = "CVCMUSCIMA_WI/PNG_GT_Gray/"
TRAIN_LIST = "Partitions_Set/set_2_Independent/set_2_training_01.txt"
TEST_LIST = "Partitions_Set/set_2_Independent/set_2_testing_01.txt"


def _read_list(zf: zipfile.ZipFile, member: str, where: str) -> set[str]:
    try:
        text = zf.read(member).decode("utf-8")
    except KeyError as error:
        raise HandlerError(f"cvc_muscima: {where} has no {member}") from error
    return {line.strip() for line in text.splitlines() if line.strip()}


def key_of(member: str) -> str | None:
    """``w-01/p001.png`` for an image member, else None."""
    if not member.startswith(IMAGE_PREFIX) or member.endswith("/") or IGNORED.search(member):
        return None
    parts = member.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 4 else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    partitions = ctx.file("Partitions_Set.zip")
    with zipfile.ZipFile(partitions) as zf:
        train_names = _read_list(zf, TRAIN_LIST, partitions.name)
        test_names = _read_list(zf, TEST_LIST, partitions.name)
    archive = ctx.file("CVCMUSCIMA_WI.zip")

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        with zipfile.ZipFile(archive) as zf:
            order = [info.filename for info in zf.infolist()]
            for wanted, fixed in ((train_names, None), (test_names, "test")):
                names = [n for n in order if key_of(n) in wanted]
                for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), archive.name):
                    writer = key_of(name).split("/")[0]
                    if writer not in CLASS_NAMES:
                        raise HandlerError(f"cvc_muscima: unknown writer folder {writer!r} in {example_id}")
                    yield Example(fixed or splitter.next(), example_id, image, CLASS_NAMES.index(writer))

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="cvc_muscima",
    dataset_key="cvc_muscima",
    artefacts=(
        Artefact("CVCMUSCIMA_WI.zip", "http://wwwo.cvc.uab.es/cvcmuscima/CVCMUSCIMA_WI.zip", "33d7464a3dc376a9456bbfe7aad8c18f"),
        Artefact("Partitions_Set.zip", "http://wwwo.cvc.uab.es/cvcmuscima/Partitions_Set.zip", "dd22cff47fd50ca01ee077b757a978cd"),
    ),
    convert=convert,
    split_rule=(
        "set_2_Independent partition 01: training list -> categorical 0.70/0.15/0.15 (RandomState(0)) "
        "train/dev/dev_test; testing list -> test"
    ),
    website="http://www.cvc.uab.es/cvcmuscima/index_database.html",
    licence="free for research use (publisher's terms on the website)",
    citation="A. Fornes, A. Dutta, A. Gordo, J. Llados, CVC-MUSCIMA: a ground truth of handwritten music score images, IJDAR 2012",
)
