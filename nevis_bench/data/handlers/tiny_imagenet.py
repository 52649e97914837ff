"""Tiny ImageNet (``nevis:tiny_imagenet``): 200 classes, 64 x 64 RGB.

Archive: ``tiny-imagenet-200.zip`` with ``tiny-imagenet-200/wnids.txt`` (the 200 WordNet ids),
``tiny-imagenet-200/train/<wnid>/images/<wnid>_<n>.JPEG``, the labelled validation set
``tiny-imagenet-200/val/images/val_<n>.JPEG`` with ``tiny-imagenet-200/val/val_annotations.txt``
(``<file><TAB><wnid><TAB>box...``) and the unlabelled ``tiny-imagenet-200/test/`` (not used). Class ids:
the sorted WordNet ids. Order: sorted member names.

Split rule (reference): the official training images drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0)); test = the official validation images.
"""

from __future__ import annotations

import posixpath
import re
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, zip_names

ROOT = "tiny-imagenet-200/"
# The reference's member filters: a training image has no path word "val" or "test"; a test image no
# word "train" or "test"; text files are never images.
NOT_TRAIN = re.compile(r"\bval\b|\btest\b|\.txt$")
NOT_TEST = re.compile(r"\btrain\b|\btest\b|\.txt$")


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("tiny-imagenet-200.zip")
    classes: list[str] = []

    def examples():
        with zipfile.ZipFile(archive) as zf:
            try:
                wnids = zf.read(ROOT + "wnids.txt").decode("utf-8").split()
                annotations = zf.read(ROOT + "val/val_annotations.txt").decode("utf-8")
            except KeyError as error:
                raise HandlerError(f"tiny_imagenet: {archive.name} lacks {error}") from error
            classes.extend(sorted(set(wnids)))
            labels = {wnid: i for i, wnid in enumerate(classes)}
            val_labels = {}
            for line in annotations.splitlines():
                fields = line.strip().split("\t")
                if len(fields) >= 2:
                    val_labels[fields[0]] = labels[fields[1]]

            names = zip_names(zf)
            splitter = CategoricalSplitter(FOR_TRAIN)
            for name in names:
                base = posixpath.basename(name)
                if not NOT_TRAIN.search(name):
                    wnid = base.split("_")[0]
                    if wnid not in labels:
                        raise HandlerError(f"tiny_imagenet: {name}: {wnid} is not in wnids.txt")
                    label, split = labels[wnid], None
                elif not NOT_TEST.search(name):
                    if base not in val_labels:
                        raise HandlerError(f"tiny_imagenet: {name} has no line in val_annotations.txt")
                    label, split = val_labels[base], "test"
                else:
                    continue
                for _, example_id, image in ctx.decoded([(name, zf.read(name))], archive.name):
                    yield Example(split or splitter.next(), example_id, image.convert("RGB"), label)

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="tiny_imagenet",
    dataset_key="tiny_imagenet",
    artefacts=(Artefact("tiny-imagenet-200.zip", "http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de"),),
    convert=convert,
    split_rule="official train: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), sorted names); test: official val",
    website="https://www.kaggle.com/c/tiny-imagenet",
    licence="ImageNet terms: non-commercial research and education only",
    citation="Y. Le and X. Yang, Tiny ImageNet Visual Recognition Challenge, 2015",
)
