"""MNIST-M (``nevis:mnist_m``): MNIST digits blended over colour photo patches, 10 classes, RGB.

Archive: ``mnist_m.tar.gz`` with ``mnist_m/mnist_m_{train,test}/<NNNNNNNN>.png`` and the label files
``mnist_m/mnist_m_{train,test}_labels.txt`` (lines ``<file name> <digit>``). Order: archive order.

Split rule (reference): the official split is not kept; all images are pooled, exact duplicates (same
pixels and label) are dropped, and train/dev/dev_test/test are drawn categorically 0.56/0.12/0.12/0.20
(RandomState(0)).
Deviation: an image's label comes from the label file of its own folder. The reference merged both
label files by file name, so the training images whose names also occur in the test set (the first
9,001) got the labels of the test images.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import iter_tar, labelled_examples, parent_name

LABEL_FILES = {"mnist_m_train": "mnist_m/mnist_m_train_labels.txt", "mnist_m_test": "mnist_m/mnist_m_test_labels.txt"}


def parse_labels(text: str, where: str) -> dict[str, int]:
    labels = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise HandlerError(f"mnist_m: cannot parse line {number} of {where}: {line!r}")
        labels[fields[0]] = int(fields[1])
    return labels


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("mnist_m.tar.gz")
    texts = dict(iter_tar(archive, keep=lambda n: n in LABEL_FILES.values()))
    missing = [f for f in LABEL_FILES.values() if f not in texts]
    if missing:
        raise HandlerError(f"mnist_m: {archive} lacks {missing}")
    labels = {folder: parse_labels(texts[f].decode("utf-8"), f) for folder, f in LABEL_FILES.items()}
    notes: dict = {}  # duplicates_removed, once the examples are read

    def label_of(name: str) -> int | None:
        return labels.get(parent_name(name), {}).get(name.rsplit("/", 1)[-1])

    return HandlerOutput(labelled_examples(ctx, [archive], label_of, dedup_notes=notes), [str(d) for d in range(10)], notes)


HANDLER = Handler(
    name="mnist_m",
    dataset_key="mnist_m",
    artefacts=(
        Artefact(
            "mnist_m.tar.gz",
            "https://drive.google.com/uc?export=download&id=0B_tExHiYS-0veklUZHFYT19KYjg&confirm=t",
            "859df31c91afe82e80e5012ba928f279",
        ),
    ),
    convert=convert,
    split_rule="pooled train+test, de-duplicated; categorical 0.56/0.12/0.12/0.20 (RandomState(0)), archive order",
    website="http://yaroslav.ganin.net/",
)
