"""Food-101 (``nevis:food101``): 101 dishes, RGB photos.

Archive: ``food-101.tar.gz`` with ``food-101/images/<class>/<id>.jpg`` and the official lists
``food-101/meta/train.txt`` and ``food-101/meta/test.txt`` (lines ``<class>/<id>``). Class ids follow
the reference's fixed class list (:data:`CLASS_NAMES`, not alphabetical). Order: archive order.

Split rule (reference): images of the official train list drawn categorically 0.70/0.15/0.15 into
train/dev/dev_test (RandomState(0), archive order); test = the official test list.
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, iter_tar, planned_examples

# The reference's label order (dm_nevis food101.py / food101n.py).
CLASS_NAMES = [
    "takoyaki", "bruschetta", "lobster_bisque", "bread_pudding", "scallops", "pancakes", "donuts",
    "ceviche", "grilled_salmon", "ravioli", "prime_rib", "waffles", "eggs_benedict", "beef_tartare",
    "chicken_wings", "clam_chowder", "panna_cotta", "ramen", "french_fries", "seaweed_salad", "lasagna",
    "fried_calamari", "deviled_eggs", "carrot_cake", "strawberry_shortcake", "chocolate_mousse",
    "poutine", "beignets", "caesar_salad", "bibimbap", "garlic_bread", "cheese_plate",
    "shrimp_and_grits", "caprese_salad", "beet_salad", "dumplings", "macarons", "churros", "samosa",
    "creme_brulee", "miso_soup", "french_onion_soup", "risotto", "pulled_pork_sandwich",
    "hot_and_sour_soup", "onion_rings", "spaghetti_bolognese", "edamame", "beef_carpaccio", "steak",
    "grilled_cheese_sandwich", "peking_duck", "frozen_yogurt", "mussels", "red_velvet_cake", "oysters",
    "greek_salad", "foie_gras", "pho", "spaghetti_carbonara", "pad_thai", "huevos_rancheros", "sashimi",
    "sushi", "gnocchi", "hummus", "pork_chop", "falafel", "chicken_curry", "breakfast_burrito",
    "club_sandwich", "cannoli", "chocolate_cake", "fried_rice", "apple_pie", "guacamole",
    "macaroni_and_cheese", "hot_dog", "cup_cakes", "paella", "ice_cream", "escargots", "spring_rolls",
    "crab_cakes", "croque_madame", "hamburger", "baby_back_ribs", "baklava", "pizza", "filet_mignon",
    "cheesecake", "lobster_roll_sandwich", "tiramisu", "omelette", "tacos", "nachos", "gyoza",
    "chicken_quesadilla", "french_toast", "tuna_tartare", "fish_and_chips",
]
LABELS = {name: i for i, name in enumerate(CLASS_NAMES)}
ARCHIVE = "food-101.tar.gz"
LISTS = {"train": "food-101/meta/train.txt", "test": "food-101/meta/test.txt"}


def read_lists(ctx: HandlerContext, archive) -> dict[str, str]:
    """``<class>/<id>`` -> "train" | "test" from the official lists inside the archive."""
    found: dict[str, bytes] = dict(iter_tar(archive, keep=lambda n: n in LISTS.values()))
    missing = [path for path in LISTS.values() if path not in found]
    if missing:
        raise HandlerError(f"food101: {archive.name} lacks {', '.join(missing)}")
    part_of = {}
    for part, path in LISTS.items():
        for line in found[path].decode("utf-8").splitlines():
            if line.strip():
                part_of[line.strip()] = part
    return part_of


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    part_of = read_lists(ctx, archive)

    def key(name: str) -> str:
        folder, base = posixpath.split(name)
        return f"{posixpath.basename(folder)}/{posixpath.splitext(base)[0]}"

    def plan_of(name: str) -> tuple[str | None, int] | None:
        if key(name) not in part_of or key(name).split("/")[0] not in LABELS:
            return None
        return (None if part_of[key(name)] == "train" else "test"), LABELS[key(name).split("/")[0]]

    return HandlerOutput(planned_examples(ctx, [archive], plan_of, CategoricalSplitter(FOR_TRAIN)), list(CLASS_NAMES))


HANDLER = Handler(
    name="food101",
    dataset_key="food_101",
    artefacts=(Artefact(ARCHIVE, "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz", "85eeb15f3717b99a5da872d97d918f87"),),
    convert=convert,
    split_rule="official train list: categorical train/dev/dev_test 0.70/0.15/0.15 (RandomState(0), archive order); test: official test list",
    website="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
    licence="research use; images from foodspotting.com under their terms (see the website)",
    citation="L. Bossard, M. Guillaumin, L. Van Gool, Food-101 - Mining Discriminative Components with Random Forests, ECCV 2014",
)
