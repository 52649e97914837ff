"""Pascal VOC 2005 (``nevis:pascal_voc2005``): 4 classes (car, motorbike, bike, person).

Archives: ``voc2005_1.tar.gz`` (training set, ``VOC2005_1/PNGImages/<folder>/*.png``) and
``voc2005_2.tar.gz`` (test set, ``VOC2005_2/PNGImages/<folder>/*.png``). The class of an image is the
class of its folder (the reference's folder lists below). Order: classes in the order car, bike,
motorbike, person; within a class its folders in the listed order; within a folder archive order.

Split rule (reference): train/dev/dev_test by independent categorical draws 0.70/0.15/0.15 over the
training archive (RandomState(0)); test = the whole official test archive.
Deviation: a folder matches on ``<folder>/`` (the reference matched the bare prefix).
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, iter_tar, split_examples

CLASS_NAMES = ["car", "motorbike", "bike", "person"]

TRAIN_FOLDERS = {
    "car": ["VOC2005_1/PNGImages/Caltech_cars", "VOC2005_1/PNGImages/ETHZ_sideviews-cars", "VOC2005_1/PNGImages/TUGraz_cars"],
    "bike": ["VOC2005_1/PNGImages/TUGraz_bike"],
    "motorbike": ["VOC2005_1/PNGImages/Caltech_motorbikes_side"],
    "person": ["VOC2005_1/PNGImages/TUGraz_person"],
}
TEST_FOLDERS = {
    "car": ["VOC2005_2/PNGImages/car", "VOC2005_2/PNGImages/voiture"],
    "bike": ["VOC2005_2/PNGImages/bicycle", "VOC2005_2/PNGImages/bike", "VOC2005_2/PNGImages/velo"],
    "motorbike": ["VOC2005_2/PNGImages/motocyclette", "VOC2005_2/PNGImages/motorbike", "VOC2005_2/PNGImages/motorcycle"],
    "person": [
        "VOC2005_2/PNGImages/INRIA_graz-person-test", "VOC2005_2/PNGImages/INRIA_inria-person-test",
        "VOC2005_2/PNGImages/pedestrian", "VOC2005_2/PNGImages/pieton",
    ],
}


def _folder_of(name: str) -> str:
    return name.rsplit("/", 1)[0]


def _read(ctx: HandlerContext, archive_name: str, folders: dict[str, list[str]]):
    """(id, image, label) in the reference's order: by class, then folder, then archive order."""
    archive = ctx.file(archive_name)
    wanted = {folder for paths in folders.values() for folder in paths}
    members = list(iter_tar(archive, keep=lambda n: n.lower().endswith("png") and _folder_of(n) in wanted))
    for class_name, paths in folders.items():
        for folder in paths:
            in_folder = [(name, data) for name, data in members if _folder_of(name) == folder]
            for _, example_id, image in ctx.decoded(in_folder, archive.name):
                yield example_id, image, CLASS_NAMES.index(class_name)


def convert(ctx: HandlerContext) -> HandlerOutput:
    def examples():
        yield from split_examples(_read(ctx, "voc2005_1.tar.gz", TRAIN_FOLDERS), CategoricalSplitter(FOR_TRAIN))
        yield from split_examples(_read(ctx, "voc2005_2.tar.gz", TEST_FOLDERS), "test")

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="pascal_voc2005",
    dataset_key="pascal_voc2005",
    artefacts=(
        Artefact("voc2005_1.tar.gz", "http://host.robots.ox.ac.uk/pascal/VOC/download/voc2005_1.tar.gz", "6fbeaee73a81c462b190ca837b977896"),
        Artefact("voc2005_2.tar.gz", "http://host.robots.ox.ac.uk/pascal/VOC/download/voc2005_2.tar.gz", "15ec3d318b84ffdfa25f1e05de0014e2"),
    ),
    convert=convert,
    split_rule="train/dev/dev_test: categorical 0.70/0.15/0.15 (RandomState(0)) over the training archive; test: official test archive",
    website="http://host.robots.ox.ac.uk/pascal/VOC/databases.html#VOC2005_1",
)
