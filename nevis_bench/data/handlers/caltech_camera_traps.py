"""Caltech Camera Traps, ECCV'18 subset (``nevis:caltech_camera_traps``): 16 categories, RGB.

Files: ``eccv_18_all_images_sm.tar.gz`` (``eccv_18_all_images_sm/<image id>.jpg``) and
``eccv_18_annotations.tar.gz`` with COCO-style JSON files
``eccv_18_annotation_files/{train,trans_val,trans_test}_annotations.json`` (``categories``:
``{id, name}``; ``annotations``: ``{image_id, category_id, ...}``). An image's label is the category of
its last annotation in the file, mapped by the reference's class list (:data:`CLASS_NAMES`). Images
without an annotation in these three files (the cis_* sets) are not used. Order: archive order.

Split rule (reference): images of ``train_annotations.json`` drawn categorically 0.80/0.20 into
train/dev (RandomState(0), archive order); dev_test = ``trans_val``; test = ``trans_test``.
"""

from __future__ import annotations

import json
import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import TRAIN_AND_DEV_ONLY, CategoricalSplitter, iter_tar, planned_examples

CLASS_NAMES = [
    "bobcat", "opossum", "empty", "coyote", "raccoon", "bird", "dog", "cat", "squirrel", "rabbit",
    "skunk", "rodent", "badger", "deer", "car", "fox",
]
FOLDER = "eccv_18_annotation_files/"
ANNOTATIONS = {"train": "train_annotations.json", "dev_test": "trans_val_annotations.json", "test": "trans_test_annotations.json"}


def image_labels(data: dict, where: str) -> dict[str, int]:
    """image id -> class id from one COCO-style annotation file (the last annotation of an image wins)."""
    categories = {c["id"]: c["name"] for c in data["categories"]}
    labels = {}
    for annotation in data["annotations"]:
        name = categories[annotation["category_id"]]
        if name not in CLASS_NAMES:
            raise HandlerError(f"caltech_camera_traps: unknown category {name!r} in {where}")
        labels[annotation["image_id"]] = CLASS_NAMES.index(name)
    return labels


def convert(ctx: HandlerContext) -> HandlerOutput:
    annotations_archive = ctx.file("eccv_18_annotations.tar.gz")
    images_archive = ctx.file("eccv_18_all_images_sm.tar.gz")
    wanted = {FOLDER + f: part for part, f in ANNOTATIONS.items()}
    found = dict(iter_tar(annotations_archive, keep=lambda n: n in wanted))
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise HandlerError(f"caltech_camera_traps: {annotations_archive.name} lacks {', '.join(missing)}")
    place: dict[str, tuple[str, int]] = {}
    for path, part in wanted.items():
        for image_id, label in image_labels(json.loads(found[path]), path).items():
            place.setdefault(image_id, (part, label))

    def image_id(name: str) -> str:
        return posixpath.splitext(posixpath.basename(name))[0]

    def plan_of(name: str) -> tuple[str | None, int] | None:
        if image_id(name) not in place:
            return None
        part, label = place[image_id(name)]
        return (None if part == "train" else part), label

    examples = planned_examples(ctx, [images_archive], plan_of, CategoricalSplitter(TRAIN_AND_DEV_ONLY), mode="RGB")
    return HandlerOutput(examples, list(CLASS_NAMES))


_BASE = "https://lilablobssc.blob.core.windows.net/caltechcameratraps/"
HANDLER = Handler(
    name="caltech_camera_traps",
    dataset_key="caltech_camera_traps",
    artefacts=(
        Artefact("eccv_18_all_images_sm.tar.gz", _BASE + "eccv_18_all_images_sm.tar.gz", "8143c17aa2a12872b66f284ff211531f"),
        Artefact("eccv_18_annotations.tar.gz", _BASE + "eccv_18_annotations.tar.gz", "66a1f481b44aa1edadf75c9cfbd27aba"),
    ),
    convert=convert,
    split_rule="train_annotations: categorical train/dev 0.80/0.20 (RandomState(0), archive order); dev_test: trans_val; test: trans_test",
    website="https://lila.science/datasets/caltech-camera-traps",
    licence="Community Data License Agreement (permissive variant), as stated by LILA",
    citation="S. Beery, G. Van Horn, P. Perona, Recognition in Terra Incognita, ECCV 2018",
)
