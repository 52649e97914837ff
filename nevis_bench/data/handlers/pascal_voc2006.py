"""Pascal VOC 2006 (``nevis:pascal_voc2006``): 10 classes, one label per image.

Archives: ``voc2006_trainval.tar`` and ``voc2006_test.tar``, each with
``VOCdevkit/VOC2006/ImageSets/<class>_<trainval|test>.txt`` (lines ``<image id> <1|0|-1>``) and
``VOCdevkit/VOC2006/PNGImages/<image id>.png``. Classes are the sorted class names of the label
files. An image's label is its positive class (flag ``1``); an image positive for several classes gets
the last of them in class order (as the reference, which overwrote earlier ones); images without a
positive class are left out. Order: archive order of the images.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over the
trainval archive; test = the official test archive.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, iter_tar, split_examples, tar_names

LABEL_DIR = "VOCdevkit/VOC2006/ImageSets/"
IMAGE_DIR = "VOCdevkit/VOC2006/PNGImages/"


def _label_files(names: list[str], suffix: str) -> dict[str, str]:
    """class name -> member name of its label file."""
    return {
        name[len(LABEL_DIR):-len(suffix)]: name
        for name in names
        if name.startswith(LABEL_DIR) and name.endswith(suffix) and "/" not in name[len(LABEL_DIR):]
    }


def _read(ctx: HandlerContext, archive_name: str, suffix: str, class_names: list[str] | None):
    archive = ctx.file(archive_name)
    files = _label_files(tar_names(archive), suffix)
    if not files:
        raise HandlerError(f"pascal_voc2006: {archive} has no {LABEL_DIR}<class>{suffix} label files")
    classes = class_names if class_names is not None else sorted(files)
    texts = {name: data.decode("utf-8") for name, data in iter_tar(archive, keep=lambda n: n in set(files.values()))}
    image_label: dict[str, int] = {}
    for class_name in classes:
        if class_name not in files:
            raise HandlerError(f"pascal_voc2006: {archive} lacks the label file of class {class_name!r}")
        for line in texts[files[class_name]].splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1] == "1":
                image_label[fields[0] + ".png"] = classes.index(class_name)

    def images():
        keep = lambda n: n.startswith(IMAGE_DIR) and n[len(IMAGE_DIR):] in image_label
        for name, example_id, image in ctx.decoded(iter_tar(archive, keep=keep), archive.name):
            yield example_id, image, image_label[name[len(IMAGE_DIR):]]

    return classes, images()


def convert(ctx: HandlerContext) -> HandlerOutput:
    classes, train_images = _read(ctx, "voc2006_trainval.tar", "_trainval.txt", None)

    def examples():
        yield from split_examples(train_images, CategoricalSplitter(FOR_TRAIN))
        _, test_images = _read(ctx, "voc2006_test.tar", "_test.txt", classes)
        yield from split_examples(test_images, "test")

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="pascal_voc2006",
    dataset_key="pascal_voc2006",
    artefacts=(
        Artefact("voc2006_trainval.tar", "http://host.robots.ox.ac.uk/pascal/VOC/download/voc2006_trainval.tar", "af06612e5ad9863bde6fa7aae55f8866"),
        Artefact("voc2006_test.tar", "http://host.robots.ox.ac.uk/pascal/VOC/download/voc2006_test.tar", "6bd028d82d057621c4fc69e9c56517ef"),
    ),
    convert=convert,
    split_rule="train/dev/dev_test: categorical 0.70/0.15/0.15 (RandomState(0)) over trainval; test: official test",
    website="http://host.robots.ox.ac.uk/pascal/VOC/databases.html#VOC2006",
)
