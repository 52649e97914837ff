"""Caltech cars, motorbikes (``nevis:caltech_categories``): 2 classes (car, motorcycle).

Archives: ``Cars_1999.zip`` (holds ``Cars_1999/cars_markus.tar``), ``Cars_2001.zip``
(``Cars_2001/cars_brad.tar``) and ``motorbikes_side.zip`` (``motorbikes_side/motorbikes_side.tar``);
each inner tar holds the images of one category (``README`` and ``*.mat`` files are ignored).
Order: categories sorted (cars_1999, cars_2001, motorcycles_2001), archive order within each.

Split rule (reference): no official split; train/dev/dev_test/test by independent categorical draws
0.56/0.12/0.12/0.20 (RandomState(0)) over all images. Images are converted to RGB.
"""

from __future__ import annotations

import io
import re
import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, iter_tar

CLASS_NAMES = ["car", "motorcycle"]
# category -> (zip archive, member tar inside it, class)
CATEGORIES = {
    "cars_1999": ("Cars_1999.zip", "Cars_1999/cars_markus.tar", "car"),
    "cars_2001": ("Cars_2001.zip", "Cars_2001/cars_brad.tar", "car"),
    "motorcycles_2001": ("motorbikes_side.zip", "motorbikes_side/motorbikes_side.tar", "motorcycle"),
}
_IGNORED = re.compile(r"(^|/)README[^/]*$|\.mat$")


def convert(ctx: HandlerContext) -> HandlerOutput:
    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        for category in sorted(CATEGORIES):
            zip_name, inner, class_name = CATEGORIES[category]
            archive = ctx.file(zip_name)
            with zipfile.ZipFile(archive) as zf:
                if inner not in zf.namelist():
                    raise HandlerError(f"caltech_categories: {archive} does not contain {inner}")
                tar_bytes = zf.read(inner)
            members = iter_tar(io.BytesIO(tar_bytes), keep=lambda n: not _IGNORED.search(n))
            for _, example_id, image in ctx.decoded(members, f"{zip_name}:{inner}"):
                yield Example(splitter.next(), example_id, image, CLASS_NAMES.index(class_name))

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="caltech_categories",
    dataset_key="caltech_categories",
    artefacts=(
        Artefact("Cars_2001.zip", "https://data.caltech.edu/records/dvx6b-vsc46/files/Cars_2001.zip?download=1", "e68efb9197ed6a9bc94ce46c79378d29"),
        Artefact("Cars_1999.zip", "https://data.caltech.edu/records/fmbpr-ezq86/files/Cars_1999.zip?download=1", "79b12e08cf5f711f27bbd3e9c6bf371f"),
        Artefact("motorbikes_side.zip", "https://data.caltech.edu/records/pxb2q-1e144/files/motorbikes_side.zip?download=1", "ac51dc40c8df085c6663f38307685079"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (dev/dev_test/test/train draws, RandomState(0)) over all images",
    website="https://data.caltech.edu/",
)
