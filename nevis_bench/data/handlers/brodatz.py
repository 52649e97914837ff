"""Brodatz textures (``nevis:brodatz``): 111 plates (``D1.gif`` .. ``D112.gif``; D14 does not exist).

Files: the 111 GIF plates in the source directory. Each plate is one class (ids in plate-number order)
and is cut into a 3 x 3 grid of non-overlapping crops of ``(W // 3) x (H // 3)`` pixels, numbered
column by column (k = 3 * column + row).

Split rule (reference): with ``rng = np.random.default_rng(0)`` shared across plates (in class order),
each plate draws ``perm = rng.permutation(9)``; crops ``perm[:5]`` -> train, ``perm[5]`` -> dev,
``perm[6]`` -> dev_test, ``perm[7:]`` -> test. Every class is in every split (5/1/1/2 crops).
Deviation: plates are ordered by number (the reference used the directory listing order, which is not
defined) and a plate whose side is divisible by 3 still gives 9 crops (the reference's grid then gave 4).
"""

from __future__ import annotations

import re

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput

PLATES = [n for n in range(1, 113) if n != 14]
SEED = 0


def crop_splits(permutation: np.ndarray) -> list[str]:
    """Split of each crop k = 0..8 given the plate's permutation of range(9)."""
    splits = [""] * 9
    for position, k in enumerate(permutation):
        splits[int(k)] = "train" if position < 5 else "dev" if position == 5 else "dev_test" if position == 6 else "test"
    return splits


def crops(image, k: int):
    width, height = image.size
    cw, ch = width // 3, height // 3
    column, row = divmod(k, 3)
    return image.crop((column * cw, row * ch, (column + 1) * cw, (row + 1) * ch))


def convert(ctx: HandlerContext) -> HandlerOutput:
    files = {}
    for path in ctx.find("D*.gif"):
        match = re.fullmatch(r"D(\d+)\.gif", path.name)
        if match:
            files[int(match.group(1))] = path
    numbers = sorted(files)
    classes = [f"D{n}" for n in numbers]

    def examples():
        rng = np.random.default_rng(SEED)
        for label, number in enumerate(numbers):
            path = files[number]
            splits = crop_splits(rng.permutation(range(9)))
            image = ctx.decode(path.read_bytes(), path.name)
            if image is None:
                continue
            for k in range(9):
                yield Example(splits[k], f"{path.name}#{k}", crops(image, k), label)

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="brodatz",
    dataset_key="brodatz",
    artefacts=tuple(Artefact(f"D{n}.gif", f"http://www.ux.uis.no/~tranden/brodatz/D{n}.gif") for n in PLATES),
    convert=convert,
    split_rule="9 crops per plate; default_rng(0).permutation(9) per plate: 5 train, 1 dev, 1 dev_test, 2 test",
    website="https://www.ux.uis.no/~tranden/brodatz.html",
    licence="scans of P. Brodatz, Textures (1966); research use",
    manual_step="checksums of the 111 GIFs are not recorded, so downloads are not verified",
)
