"""Pascal VOC 2012 actions (``nevis:voc_actions``): 11 actions, multi-label person crops.

Archive: ``VOCtrainval_11-May-2012.tar`` with ``VOCdevkit/VOC2012/ImageSets/Action/<action>_trainval.txt``
(rows ``<image id> <object index> <flag>``), ``VOCdevkit/VOC2012/Annotations/<image id>.xml`` and
``VOCdevkit/VOC2012/JPEGImages/<image id>.jpg``. The images are those listed in any action's trainval
file. Each annotated object with an ``<actions>`` element gives one example: the image cropped to its
box (``int(float(...))`` of xmin, ymin, xmax, ymax), labelled with every action flagged 1 (class ids in
the reference's action order below, ``other`` last). Order: image ids sorted, objects in XML order.
Example ids: ``<tar>:<jpeg member>#<k>`` for the k-th object (from 1) that has actions.

Split rule (reference): no official split used; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over
the crops. (The reference also listed ``VOC2012test.tar``, which needs authorisation, but never read
it; it is not required here.)
Deviations: the reference iterated the image ids in the order of a Python ``set`` (changes from run to
run with string hash randomisation); we sort them. Objects without an ``<actions>`` element (which the
reference could not handle) are skipped; images without annotation are skipped and counted in
``notes.no_annotation``.
"""

from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ElementTree

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter

ACTIONS = [
    "jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running", "takingphoto",
    "usingcomputer", "walking", "other",
]
ARCHIVE = "VOCtrainval_11-May-2012.tar"
ROOT = "VOCdevkit/VOC2012/"


def read_member(tar: tarfile.TarFile, name: str) -> bytes | None:
    try:
        handle = tar.extractfile(name)
    except KeyError:
        return None
    return handle.read() if handle is not None else None


def parse_objects(xml: bytes, where: str) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """(box, positive action ids) of each object that has an ``<actions>`` element."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise HandlerError(f"voc_actions: {where} is not valid XML: {error}") from error
    objects = []
    for node in root.findall("object"):
        actions = node.find("actions")
        box = node.find("bndbox")
        if actions is None or box is None:
            continue
        coords = tuple(int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
        positives = []
        for child in actions:
            if child.tag not in ACTIONS:
                raise HandlerError(f"voc_actions: unknown action {child.tag!r} in {where}")
            if int(float(child.text or 0)) == 1:
                positives.append(ACTIONS.index(child.tag))
        objects.append((coords, sorted(positives)))
    return objects


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    notes = {"no_annotation": 0}

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with tarfile.open(archive) as tar:
            image_ids = set()
            for action in ACTIONS[:-1]:
                data = read_member(tar, f"{ROOT}ImageSets/Action/{action}_trainval.txt")
                if data is None:
                    raise HandlerError(f"voc_actions: {archive.name} has no {ROOT}ImageSets/Action/{action}_trainval.txt")
                image_ids.update(line.split()[0] for line in data.decode("utf-8").splitlines() if line.split())
            for image_id in sorted(image_ids):
                xml = read_member(tar, f"{ROOT}Annotations/{image_id}.xml")
                if xml is None:
                    notes["no_annotation"] += 1
                    continue
                member = f"{ROOT}JPEGImages/{image_id}.jpg"
                data = read_member(tar, member)
                if data is None:
                    raise HandlerError(f"voc_actions: {archive.name} has no {member}")
                image = ctx.decode(data, f"{archive.name}:{member}")
                if image is None:
                    continue
                objects = parse_objects(xml, f"{archive.name}:{ROOT}Annotations/{image_id}.xml")
                for k, (box, positives) in enumerate(objects, start=1):
                    yield Example(splitter.next(), f"{archive.name}:{member}#{k}", image.crop(box), positives)

    return HandlerOutput(examples(), list(ACTIONS), notes)


HANDLER = Handler(
    name="voc_actions",
    dataset_key="voc_actions",
    artefacts=(
        Artefact(ARCHIVE, "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/" + ARCHIVE, "6cd6e144f989b92b3379bac3b3de84fd"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the person crops of the trainval action images (ids sorted)",
    website="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    licence="images under their Flickr terms; annotations for research use (see the VOC website)",
    citation="M. Everingham et al., The PASCAL Visual Object Classes Challenge 2012 (VOC2012)",
)
