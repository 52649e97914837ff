"""PACS (``nevis:pacs``): photo, art painting, cartoon and sketch images of 7 classes, 227 x 227 RGB.

Files: the official HDF5 files ``<domain>_<train|val|test>.hdf5`` (datasets ``images``: N x 227 x 227 x 3
stored BGR, ``labels``: 1..7) for the domains art_painting, cartoon, photo and sketch. Images are
flipped to RGB and labels shifted to 0..6. Order: files sorted by name, rows in file order.

Split rule (reference, a domain split): the photo, art painting and cartoon images are pooled, exact
duplicates dropped, and train/dev drawn categorically 0.80/0.20 (RandomState(0)); the sketch images
likewise de-duplicated and split 0.50/0.50 into dev_test/test (a second RandomState(0)).
Deviation: files are read in sorted name order (the reference used the unordered directory listing).
"""

from __future__ import annotations

from PIL import Image

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import TEST_AND_DEV_TEST, TRAIN_AND_DEV_ONLY, CategoricalSplitter, split_examples

CLASS_NAMES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
TRAIN_DOMAINS = ("photo", "art_painting", "cartoon")
TEST_DOMAIN = "sketch"
CHUNK = 256


def _rows(ctx: HandlerContext, domains: tuple[str, ...]):
    try:
        import h5py
    except ImportError as error:  # h5py comes with TensorFlow; say so if it is absent
        raise HandlerError("pacs: reading the PACS HDF5 files needs h5py (pip install h5py)") from error
    paths = sorted(p for domain in domains for p in ctx.find(f"{domain}_*.hdf5"))
    for path in paths:
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise HandlerError(f"pacs: cannot read {path}: {error}") from error
        with handle:
            if "images" not in handle or "labels" not in handle:
                raise HandlerError(f"pacs: {path} has no 'images' and 'labels' datasets")
            images, labels = handle["images"], handle["labels"]
            for start in range(0, len(labels), CHUNK):
                block, block_labels = images[start : start + CHUNK], labels[start : start + CHUNK]
                for offset, (pixels, label) in enumerate(zip(block, block_labels)):
                    label = int(label) - 1
                    if not 0 <= label < len(CLASS_NAMES):
                        raise HandlerError(f"pacs: label {label + 1} out of range 1..7 at {path.name}:{start + offset}")
                    yield f"{path.name}:{start + offset}", Image.fromarray(pixels[..., ::-1].astype("uint8"), "RGB"), label


def convert(ctx: HandlerContext) -> HandlerOutput:
    notes: dict = {}

    def examples():
        removed = 0
        for domains, fractions in ((TRAIN_DOMAINS, TRAIN_AND_DEV_ONLY), ((TEST_DOMAIN,), TEST_AND_DEV_TEST)):
            group: dict = {}  # de-duplicated within the group
            yield from split_examples(_rows(ctx, domains), CategoricalSplitter(fractions), dedup_notes=group)
            removed += group["duplicates_removed"]
        notes["duplicates_removed"] = removed

    return HandlerOutput(examples(), list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="pacs",
    dataset_key="pacs",
    artefacts=tuple(Artefact(f"{domain}_*.hdf5") for domain in ("art_painting", "cartoon", "photo", "sketch")),
    convert=convert,
    split_rule="photo+art_painting+cartoon (de-duplicated): categorical train/dev 0.80/0.20; sketch (de-duplicated): dev_test/test 0.50/0.50 (each RandomState(0))",
    website="https://dali-dl.github.io/project_iccv2017.html",
    citation="D. Li, Y. Yang, Y.-Z. Song, T. M. Hospedales, Deeper, Broader and Artier Domain Generalization, 2017",
    manual_step=(
        "download the 12 HDF5 files (<domain>_train|val|test.hdf5) from the PACS website's Google Drive "
        "folder into DIR; Drive links are not stable enough for --download"
    ),
)
