"""MIT indoor scenes (``nevis:mit_scenes``): 67 indoor scene classes, colour images.

File: ``indoor-scenes-cvpr-2019.zip``, the Kaggle dataset ``itsahmad/indoor-scenes-cvpr-2019``
(needs a Kaggle login: ``kaggle datasets download -d itsahmad/indoor-scenes-cvpr-2019``). It holds
``TrainImages.txt`` and ``TestImages.txt`` (the official lists, one ``<class>/<file>.jpg`` per line) and
the images ``indoorCVPR_09/Images/<class>/<file>.jpg``. The class is the first part of the listed
path; class ids follow the reference's label list below. Order: list order.

Split rule (reference): official TrainImages -> train/dev/dev_test by categorical 0.70/0.15/0.15
(RandomState(0)); official TestImages -> test.
Deviation: empty lines and trailing ``\\r`` in the lists are ignored (the reference would have failed
on them); a listed image missing from the archive stops the conversion with its name.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter

CLASS_NAMES = [
    "office", "lobby", "stairscase", "winecellar", "church_inside", "studiomusic", "shoeshop", "bowling",
    "poolinside", "nursery", "meeting_room", "videostore", "bathroom", "library", "locker_room", "movietheater",
    "children_room", "concert_hall", "clothingstore", "pantry", "subway", "prisoncell", "inside_bus", "garage",
    "warehouse", "bookstore", "auditorium", "laboratorywet", "tv_studio", "buffet", "waitingroom", "laundromat",
    "bedroom", "greenhouse", "cloister", "elevator", "dining_room", "hairsalon", "livingroom", "deli",
    "restaurant_kitchen", "dentaloffice", "trainstation", "casino", "bar", "jewelleryshop", "kitchen", "museum",
    "grocerystore", "operating_room", "airport_inside", "gameroom", "fastfood_restaurant", "classroom", "bakery",
    "closet", "artstudio", "hospitalroom", "gym", "florist", "inside_subway", "toystore", "kindergarden",
    "restaurant", "mall", "corridor", "computerroom",
]
ARCHIVE = "indoor-scenes-cvpr-2019.zip"
IMAGE_DIR = "indoorCVPR_09/Images/"


def read_list(zf: zipfile.ZipFile, member: str) -> list[str]:
    try:
        text = zf.read(member).decode("utf-8")
    except KeyError as error:
        raise HandlerError(f"mit_scenes: {ARCHIVE} has no {member}") from error
    return [line.strip() for line in text.splitlines() if line.strip()]


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)

    def examples():
        splitter = CategoricalSplitter(FOR_TRAIN)
        with zipfile.ZipFile(archive) as zf:
            for list_name, fixed in (("TrainImages.txt", None), ("TestImages.txt", "test")):
                for entry in read_list(zf, list_name):
                    class_name = entry.split("/")[0]
                    if class_name not in CLASS_NAMES:
                        raise HandlerError(f"mit_scenes: unknown class {class_name!r} in {list_name}: {entry!r}")
                    member = IMAGE_DIR + entry
                    try:
                        data = zf.read(member)
                    except KeyError as error:
                        raise HandlerError(f"mit_scenes: {member} (listed in {list_name}) is not in {archive.name}") from error
                    image = ctx.decode(data, f"{archive.name}:{member}")
                    if image is not None:
                        yield Example(fixed or splitter.next(), f"{archive.name}:{member}", image, CLASS_NAMES.index(class_name))

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="mit_scenes",
    dataset_key="mit_scenes",
    artefacts=(Artefact(ARCHIVE, md5="b5a8ee875edc974ab49f4cad3b8607da"),),  # md5 of the Kaggle API download (recorded, not enforced)
    convert=convert,
    split_rule="official TrainImages -> categorical 0.70/0.15/0.15 (RandomState(0)) train/dev/dev_test; official TestImages -> test",
    website="https://web.mit.edu/torralba/www/indoor.html",
    licence="research use; see the dataset's website (Kaggle mirror itsahmad/indoor-scenes-cvpr-2019)",
    citation="A. Quattoni, A. Torralba, Recognizing indoor scenes, CVPR 2009",
    manual_step=(
        "download the Kaggle dataset itsahmad/indoor-scenes-cvpr-2019 (https://www.kaggle.com/datasets/itsahmad/"
        "indoor-scenes-cvpr-2019; needs a Kaggle login: kaggle datasets download -d itsahmad/indoor-scenes-cvpr-2019) "
        f"and place it as {ARCHIVE} in the --from directory (rename a browser download archive.zip)"
    ),
)
