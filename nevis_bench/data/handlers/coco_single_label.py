"""MS COCO single label (``nevis:coco_single_label``): 90 category ids, one object crop per example.

Archives: ``train2017.zip`` (``train2017/<file>.jpg``), ``val2017.zip`` (``val2017/<file>.jpg``) and
``annotations_trainval2017.zip`` (``annotations/instances_{train,val}2017.json``). Every instance
annotation whose box is at least 16 x 16 pixels gives one example: the image cropped to the box
``(x, y, min(W, x + w), min(H, y + h))`` (PIL rounds the float corners), labelled ``category_id - 1``
(COCO's ids 1..90; the 10 ids COCO never uses keep their slots, named ``unused_<id>``). Order: the
annotation order of the JSON. Example ids: ``<zip>:<member>#<annotation id>``.

Split rule (reference): train2017 crops -> train/dev/dev_test by categorical 0.70/0.15/0.15
(RandomState(0)); val2017 crops -> test.
Deviation: the reference also listed ``test2017.zip`` and ``image_info_test2017.zip`` for download but
never read them; they are not required here.
"""

from __future__ import annotations

import json
import zipfile
from collections import OrderedDict

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter

NUM_CLASSES = 90
MIN_SIDE = 16
ANNOTATIONS = "annotations_trainval2017.zip"
PARTS = (("train2017", None), ("val2017", "test"))
CACHE = 16  # decoded images kept (annotations of one image are often close together)


def read_instances(ctx: HandlerContext, part: str) -> dict:
    archive = ctx.file(ANNOTATIONS)
    member = f"annotations/instances_{part}.json"
    with zipfile.ZipFile(archive) as zf:
        try:
            return json.loads(zf.read(member))
        except KeyError as error:
            raise HandlerError(f"coco_single_label: {archive.name} has no {member}") from error


def class_names(info: dict) -> list[str]:
    names = {int(c["id"]): c["name"] for c in info.get("categories", [])}
    return [names.get(i, f"unused_{i}") for i in range(1, NUM_CLASSES + 1)]


def crop_box(bbox, width: int, height: int) -> tuple | None:
    x, y, w, h = bbox
    if w < MIN_SIDE or h < MIN_SIDE:
        return None
    return (x, y, min(width, x + w), min(height, y + h))


def convert(ctx: HandlerContext) -> HandlerOutput:
    infos = {part: read_instances(ctx, part) for part, _ in PARTS}
    classes = class_names(infos["train2017"])

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        for part, fixed in PARTS:
            info = infos.pop(part)
            files = {image["id"]: image["file_name"] for image in info["images"]}
            archive = ctx.file(f"{part}.zip")
            cache: OrderedDict = OrderedDict()
            with zipfile.ZipFile(archive) as zf:
                for annotation in info["annotations"]:
                    x, y, w, h = annotation["bbox"]
                    if w < MIN_SIDE or h < MIN_SIDE:
                        continue
                    label = int(annotation["category_id"]) - 1
                    if not 0 <= label < NUM_CLASSES:
                        raise HandlerError(f"coco_single_label: annotation {annotation['id']} has category {label + 1}")
                    member = f"{part}/{files[annotation['image_id']]}"
                    if member not in cache:
                        image = ctx.decode(zf.read(member), f"{archive.name}:{member}")
                        cache[member] = image
                        if len(cache) > CACHE:
                            cache.popitem(last=False)
                    image = cache[member]
                    if image is None:
                        continue
                    box = crop_box((x, y, w, h), image.width, image.height)
                    yield Example(fixed or splitter.next(), f"{archive.name}:{member}#{annotation['id']}", image.crop(box), label)

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="coco_single_label",
    dataset_key="ms_coco",
    artefacts=(
        Artefact("train2017.zip", "http://images.cocodataset.org/zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2"),
        Artefact("val2017.zip", "http://images.cocodataset.org/zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80"),
        Artefact(ANNOTATIONS, "http://images.cocodataset.org/annotations/annotations_trainval2017.zip", "f4bbac642086de4f52a3fdda2de5fa2c"),
    ),
    convert=convert,
    split_rule="object crops (boxes >= 16x16): train2017 -> categorical 0.70/0.15/0.15 (RandomState(0)) train/dev/dev_test; val2017 -> test",
    website="https://cocodataset.org/",
    licence="annotations CC BY 4.0; images under their Flickr licences (see cocodataset.org/#termsofuse)",
    citation="T.-Y. Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014",
)
