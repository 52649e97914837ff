"""Graz-02 / INRIA annotations (``nevis:ig02``): 3 classes (bikes, cars, people).

Archives: ``ig02-v1.0-{bikes,cars,people}.zip``, each with ``<class>/<name>.image.png`` images (plus
masks, ignored) and ``<class>_train.txt`` / ``<class>_test.txt`` listing image names.

Split rule (reference): the official split is not kept; all images are pooled — first the images the
``*_train.txt`` files list (zip by zip, sorted names), then the remaining images (zip by zip, sorted) —
exact duplicates (same pixels and label) are dropped, and train/dev/dev_test/test are drawn
categorically 0.56/0.12/0.12/0.20 (RandomState(0)) over that sequence.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import split_examples, zip_names

CLASS_NAMES = ["bikes", "cars", "people"]
ZIPS = {"bikes": "ig02-v1.0-bikes.zip", "cars": "ig02-v1.0-cars.zip", "people": "ig02-v1.0-people.zip"}
SUFFIX = ".image.png"


def convert(ctx: HandlerContext) -> HandlerOutput:
    notes: dict = {}  # duplicates_removed, once the examples are read

    def listed_train(zf: zipfile.ZipFile, class_name: str) -> set[str]:
        with zf.open(f"{class_name}_train.txt") as handle:
            return {f"{class_name}/{line.decode().strip()}{SUFFIX}" for line in handle if line.strip()}

    def rows():
        done: set[str] = set()
        for phase in ("train", "rest"):
            for class_name, zip_name in ZIPS.items():
                archive = ctx.file(zip_name)
                with zipfile.ZipFile(archive) as zf:
                    names = [n for n in zip_names(zf) if n.startswith(f"{class_name}/") and n.endswith(SUFFIX)]
                    if phase == "train":
                        listed = listed_train(zf, class_name)
                        names = [n for n in names if n in listed]
                    fresh = [n for n in names if n not in done]
                    done.update(fresh)
                    label = CLASS_NAMES.index(class_name)
                    for _, example_id, image in ctx.decoded(((n, zf.read(n)) for n in fresh), zip_name):
                        yield example_id, image, label

    return HandlerOutput(split_examples(rows(), dedup_notes=notes), list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="ig02",
    dataset_key="ig02",
    artefacts=tuple(
        Artefact(name, f"http://lear.inrialpes.fr/people/marszalek/data/ig02/{name}", md5)
        for name, md5 in (
            ("ig02-v1.0-bikes.zip", "13266fdf968176fa3aebdd439184254f"),
            ("ig02-v1.0-cars.zip", "34de933832755ee009c6f0e9d9c6426e"),
            ("ig02-v1.0-people.zip", "f80d8d21f018197979c72b977986fd2f"),
        )
    ),
    convert=convert,
    split_rule="pooled train-listed then remaining images, de-duplicated; categorical 0.56/0.12/0.12/0.20 (RandomState(0))",
    website="http://lear.inrialpes.fr/people/marszalek/data/ig02/",
)
