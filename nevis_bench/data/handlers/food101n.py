"""Food-101N (``nevis:food101n``): 101 dishes (Food-101 classes), web images with noisy labels.

Archive: ``Food-101N_release.zip`` with ``Food-101N_release/images/<class>/<hash>.jpg`` and the lists
``Food-101N_release/meta/verified_train.tsv`` and ``.../verified_val.tsv`` (a header line, then
``<class>/<hash>.jpg<TAB><verification label>``). Only images named in these lists are used, whatever
their verification label (as the reference). Class ids: the Food-101 handler's fixed list. Order:
archive order of the zip.

Split rule (reference): images of ``verified_train.tsv`` drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0), archive order); test = the images of ``verified_val.tsv``.
Deviation: list lines are read up to the last non-empty one; the reference dropped the file's last
line, which loses an entry when the file does not end with a newline.
"""

from __future__ import annotations

import posixpath
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, zip_names
from nevis_bench.data.handlers.food101 import CLASS_NAMES, LABELS

ARCHIVE = "Food-101N_release.zip"
ROOT = "Food-101N_release/"
LISTS = {"train": ROOT + "meta/verified_train.tsv", "test": ROOT + "meta/verified_val.tsv"}


def parse_list(text: str) -> list[str]:
    """The ``<class>/<file>`` entries of a verified_*.tsv (the header line is skipped)."""
    return [line.split("\t")[0].strip() for line in text.splitlines()[1:] if line.strip()]


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)

    def examples():
        with zipfile.ZipFile(archive) as zf:
            part_of: dict[str, str] = {}
            for part, path in LISTS.items():
                try:
                    text = zf.read(path).decode("utf-8")
                except KeyError as error:
                    raise HandlerError(f"food101n: {archive.name} lacks {path}") from error
                for entry in parse_list(text):
                    part_of.setdefault(entry, part)

            def key(name: str) -> str:
                return f"{posixpath.basename(posixpath.dirname(name))}/{posixpath.basename(name)}"

            names = [n for n in zip_names(zf, sort=False) if n.startswith(ROOT + "images/") and key(n) in part_of]
            splitter = CategoricalSplitter(FOR_TRAIN)
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), archive.name):
                entry = key(name)
                label = LABELS.get(entry.split("/")[0])
                if label is None:
                    raise HandlerError(f"food101n: unknown class folder in {name}")
                yield Example(splitter.next() if part_of[entry] == "train" else "test", example_id, image, label)

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="food101n",
    dataset_key="food_101_n",
    artefacts=(
        Artefact(
            ARCHIVE,
            "https://drive.google.com/u/0/uc?id=1s9NyXpi9bO-UZUvk65WVvEUExNkZ1v9V&export=download&confirm=y",
            "596b41b48de43342ef1efbb2fd508e06",
        ),
    ),
    convert=convert,
    split_rule="verified_train.tsv images: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), archive order); test: verified_val.tsv images",
    website="https://kuanghuei.github.io/Food-101N/",
    licence="research use only (see the website)",
    citation="K.-H. Lee, X. He, L. Zhang, L. Yang, CleanNet: Transfer Learning for Scalable Image Classifier Training with Label Noise, CVPR 2018",
    manual_step="if the Google Drive link refuses the download, fetch Food-101N_release.zip from the website by hand",
)
