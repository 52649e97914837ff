"""CASIA-HWDB1.1 offline isolated characters (``nevis:casia_hwdb``): handwritten Chinese characters and symbols, grey.

Files: ``Gnt1.1TrainPart1.zip``, ``Gnt1.1TrainPart2.zip`` and ``Gnt1.1Test.zip``, each holding ``.gnt``
files (one per writer). A GNT file is a sequence of records: sample size (uint32 little endian, = 10 +
width * height), tag code (2 bytes, GB2312), width and height (uint16 little endian each), then
``width * height`` grey bytes with background 255. Images are inverted (``255 - pixel``, background
0), as the reference. Order: the zips as listed, members sorted, records in file order; ids
``<zip>:<member>:<record index>``.

Classes: every distinct tag code of the three zips (3,755 GB2312 level-1 characters and 171 symbols on
the real archives: 3,926 classes, as the reference's comment says), named by the GB2312 character.

Split rule (reference): the records of the two training zips drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0)); test = ``Gnt1.1Test.zip``.
Deviation: class ids are the tag codes in increasing order; the reference numbered the classes in the
iteration order of a Python ``set`` of strings, which changes from run to run (hash randomisation), so
its label ids were not reproducible.
Catalogue note: the catalogue records 3,755 classes (the Chinese characters only); the reference keeps
the 171 symbols too, so preparing the real archives needs the catalogue's count raised to 3,926.
"""

from __future__ import annotations

import struct
import zipfile
from typing import Iterator

import numpy as np
from PIL import Image

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, zip_names

TRAIN_ZIPS = ("Gnt1.1TrainPart1.zip", "Gnt1.1TrainPart2.zip")
TEST_ZIP = "Gnt1.1Test.zip"
HEADER = struct.Struct("<I2sHH")


def records(data: bytes, where: str, with_pixels: bool = True) -> Iterator[tuple[bytes, np.ndarray | None]]:
    """(tag code, height x width uint8 array or None) for each record of a GNT file."""
    offset = 0
    while offset < len(data):
        if offset + HEADER.size > len(data):
            raise HandlerError(f"casia_hwdb: {where} ends inside a record header at byte {offset}")
        size, tag, width, height = HEADER.unpack_from(data, offset)
        if size != width * height + HEADER.size or offset + size > len(data):
            raise HandlerError(f"casia_hwdb: bad record at byte {offset} of {where} (size {size}, {width} x {height})")
        pixels = None
        if with_pixels:
            start = offset + HEADER.size
            pixels = np.frombuffer(data, np.uint8, width * height, start).reshape(height, width)
        yield tag, pixels
        offset += size


def class_name(tag: bytes) -> str:
    try:
        return tag.decode("gb2312")
    except UnicodeDecodeError:
        return tag.hex()


def _members(ctx: HandlerContext, zip_name: str) -> Iterator[tuple[str, bytes]]:
    archive = ctx.file(zip_name)
    with zipfile.ZipFile(archive) as zf:
        for name in zip_names(zf):
            yield f"{archive.name}:{name}", zf.read(name)


def convert(ctx: HandlerContext) -> HandlerOutput:
    tags: set[bytes] = set()
    for zip_name in TRAIN_ZIPS + (TEST_ZIP,):
        for where, data in _members(ctx, zip_name):
            tags.update(tag for tag, _ in records(data, where, with_pixels=False))
    ordered = sorted(tags)
    labels = {tag: i for i, tag in enumerate(ordered)}

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        for zip_name in TRAIN_ZIPS + (TEST_ZIP,):
            for where, data in _members(ctx, zip_name):
                for index, (tag, pixels) in enumerate(records(data, where)):
                    split = "test" if zip_name == TEST_ZIP else splitter.next()
                    yield Example(split, f"{where}:{index}", Image.fromarray(255 - pixels, "L"), labels[tag])

    return HandlerOutput(examples(), [class_name(tag) for tag in ordered])


_BASE = "http://www.nlpr.ia.ac.cn/databases/Download/Offline/CharData/"
HANDLER = Handler(
    name="casia_hwdb",
    dataset_key="casia_hwdb1_1",
    artefacts=(
        Artefact("Gnt1.1TrainPart1.zip", _BASE + "Gnt1.1TrainPart1.zip", "72bac7b6a5ce37f184f277421adfacfd"),
        Artefact("Gnt1.1TrainPart2.zip", _BASE + "Gnt1.1TrainPart2.zip", "a8b76e4eccfb1fd8d56c448f6a096c27"),
        Artefact("Gnt1.1Test.zip", _BASE + "Gnt1.1Test.zip", "e74f9a4863e73d8b80ed402452c97448"),
    ),
    convert=convert,
    split_rule="training zips: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), record order); test: Gnt1.1Test.zip",
    website="http://www.nlpr.ia.ac.cn/databases/handwriting/Offline_database.html",
    licence="free for academic research; the CASIA page asks users to agree to its terms",
    citation="C.-L. Liu, F. Yin, D.-H. Wang, Q.-F. Wang, CASIA Online and Offline Chinese Handwriting Databases, ICDAR 2011",
)
