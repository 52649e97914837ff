"""INTERACT (``nevis:interact``): 60 interaction categories; real images plus category illustrations.

Archives (Antol, Zitnick, Parikh, "Zero-Shot Learning via Visual Abstraction"):
``interact_stand-alone_dataset_images.zip`` and ``interact_illustration_category_dataset_images.zip``
(images ``imgs/<file>``), ``interact_stand-alone_dataset_annotations.zip`` (member
``interact_final_dataset_labels_and_images.txt``) and
``interact_illustration_category_dataset_annotations.zip`` (member
``interact_illustration_category_dataset_labels_and_images.txt``); annotation lines are
``<class number from 1>;<image file>;<class name>``. Class ids are the numbers minus one; names from the
annotations (both files must agree). Three stand-alone images that the reference found truncated are
left out. Order: each image zip's sorted member names, stand-alone images first.

Split rule (reference, after Sharmanska and Quadrianto 2016): with one ``np.random.default_rng(1)``
shared across classes (in order of first appearance in the stand-alone annotations), each class's
stand-alone images (in annotation order) are permuted and cut into
``int(n * 0.56)`` train, ``int(n * 0.12)`` dev, ``int(n * 0.12)`` dev_test, the rest test. Every
illustration image is added to train.
"""

from __future__ import annotations

import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import zip_names

NUM_CLASSES = 60
STAND_ALONE = ("interact_stand-alone_dataset_images.zip", "interact_stand-alone_dataset_annotations.zip",
               "interact_final_dataset_labels_and_images.txt")
ILLUSTRATION = ("interact_illustration_category_dataset_images.zip", "interact_illustration_category_dataset_annotations.zip",
                "interact_illustration_category_dataset_labels_and_images.txt")
TRUNCATED = {
    "imgs/22TCSTMOFXRDFDVIK9PDTXJK5OZTQ6_20.jpg", "imgs/249YW2GTP9RAU1I25WX94SOKQN6OTI_16.jpg",
    "imgs/24PFCD45XCETAM5TCF9N9TGUNNTZXA_02.jpg",
}
TEST_FRACTION, DEV_FRACTION, DEV_TEST_FRACTION = 0.2, 0.15, 0.15
RATIOS = np.array([
    (1 - TEST_FRACTION) * (1 - DEV_FRACTION - DEV_TEST_FRACTION),
    (1 - TEST_FRACTION) * DEV_FRACTION,
    (1 - TEST_FRACTION) * DEV_TEST_FRACTION,
])


def read_annotations(ctx: HandlerContext, zip_name: str, member: str):
    """(path -> label, label -> [paths] in file order, label -> name) of one annotation file."""
    archive = ctx.file(zip_name)
    with zipfile.ZipFile(archive) as zf:
        try:
            text = zf.read(member).decode("utf-8")
        except KeyError as error:
            raise HandlerError(f"interact: {archive.name} has no {member}") from error
    labels, by_class, names = {}, {}, {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(";")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise HandlerError(f"interact: line {number} of {archive.name}:{member} is not <class>;<file>;<name>: {line!r}")
        label, path, name = int(fields[0]) - 1, f"imgs/{fields[1]}", fields[2]
        if path in TRUNCATED:
            continue
        if names.setdefault(label, name) != name:
            raise HandlerError(f"interact: class {label + 1} is named both {names[label]!r} and {name!r} in {member}")
        labels[path] = label
        by_class.setdefault(label, []).append(path)
    return labels, by_class, names


def split_per_class(by_class: dict[int, list[str]]) -> dict[str, str]:
    """path -> split for the stand-alone images, by the reference's per-class permutation."""
    rng = np.random.default_rng(1)
    out = {}
    for paths in by_class.values():
        cuts = np.cumsum((len(paths) * RATIOS).astype(np.int32))
        for position, index in enumerate(rng.permutation(len(paths))):
            out[paths[index]] = ("train", "dev", "dev_test", "test")[int(np.searchsorted(cuts, position, side="right"))]
    return out


def convert(ctx: HandlerContext) -> HandlerOutput:
    labels, by_class, names = read_annotations(ctx, STAND_ALONE[1], STAND_ALONE[2])
    if sorted(names) != list(range(NUM_CLASSES)):
        found = sorted(n + 1 for n in names)
        raise HandlerError(f"interact: the stand-alone annotations have classes {found}, expected 1..{NUM_CLASSES}")
    splits = split_per_class(by_class)
    extra_labels, _, extra_names = read_annotations(ctx, ILLUSTRATION[1], ILLUSTRATION[2])
    for label, name in extra_names.items():
        if names.get(label) != name:
            raise HandlerError(f"interact: illustration class {label + 1} {name!r} does not match the stand-alone classes")
    plans = ((STAND_ALONE[0], labels, splits), (ILLUSTRATION[0], extra_labels, {p: "train" for p in extra_labels}))

    def examples():
        for zip_name, path_labels, path_splits in plans:
            archive = ctx.file(zip_name)
            with zipfile.ZipFile(archive) as zf:
                members = ((n, zf.read(n)) for n in zip_names(zf) if n in path_splits)
                for name, example_id, image in ctx.decoded(members, archive.name):
                    yield Example(path_splits[name], example_id, image, path_labels[name])

    return HandlerOutput(examples(), [names[i] for i in range(NUM_CLASSES)])


_BASE = "https://computing.ece.vt.edu/~santol/projects/zsl_via_visual_abstraction/interact/"
HANDLER = Handler(
    name="interact",
    dataset_key="interact",
    artefacts=tuple(
        Artefact(name, f"{_BASE}{folder}/{name}", md5)
        for folder, name, md5 in (
            ("interact_stand-alone_dataset", STAND_ALONE[0], "93d7a853e0e596e7ef7fecc4808ffdf8"),
            ("interact_stand-alone_dataset", STAND_ALONE[1], "aef1de2ad7c596a566cd78414a266f5f"),
            ("interact_illustration_category_dataset", ILLUSTRATION[0], "47c043e360a177c026fa7b7652fdf5b2"),
            ("interact_illustration_category_dataset", ILLUSTRATION[1], "56dec629f180077eb2a76b3f67c7b02f"),
        )
    ),
    convert=convert,
    split_rule=(
        "per class, default_rng(1) permutation of the stand-alone images: int(0.56n) train, int(0.12n) dev, "
        "int(0.12n) dev_test, rest test; all illustrations -> train"
    ),
    website="https://computing.ece.vt.edu/~santol/projects/zsl_via_visual_abstraction/interact/index.html",
    licence="research use; see the dataset's website for its terms",
    citation="S. Antol, C. L. Zitnick, D. Parikh, Zero-Shot Learning via Visual Abstraction, ECCV 2014",
)
