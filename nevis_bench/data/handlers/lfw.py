"""Labeled Faces in the Wild (``nevis:lfw``): face identification over identities with >= 5 images.

Archive: ``lfw.tgz`` with ``lfw/<Person_Name>/<Person_Name>_<NNNN>.jpg``. Identities with fewer than
5 images are dropped (on the real archive: 423 identities, 5,985 images); class ids follow the
order in which identities first appear in the archive.

Split rule (reference, per identity, images in archive order): the last two images -> test, the one
before -> dev_test, the one before that -> dev, the rest -> train. Every identity is in every split.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import iter_tar, parent_name, tar_names

MIN_IMAGES = 5


def split_of_position(position: int, count: int) -> str:
    """The split of the ``position``-th image (0-based) of an identity with ``count`` images."""
    if position >= count - 2:
        return "test"
    if position == count - 3:
        return "dev_test"
    if position == count - 4:
        return "dev"
    return "train"


def plan(names: list[str]) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Class names and member name -> (split, label) for the members of an LFW archive."""
    by_identity: dict[str, list[str]] = {}
    for name in names:
        identity = parent_name(name)
        if identity and name.lower().endswith((".jpg", ".jpeg", ".png")):
            by_identity.setdefault(identity, []).append(name)
    classes: list[str] = []
    assignment: dict[str, tuple[str, int]] = {}
    for identity, files in by_identity.items():
        if len(files) < MIN_IMAGES:
            continue
        label = len(classes)
        classes.append(identity)
        for position, name in enumerate(files):
            assignment[name] = (split_of_position(position, len(files)), label)
    return classes, assignment


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("lfw.tgz")
    classes, assignment = plan(tar_names(archive))

    def examples():
        for name, example_id, image in ctx.decoded(iter_tar(archive, keep=lambda n: n in assignment), archive.name):
            split, label = assignment[name]
            yield Example(split, example_id, image, label)

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="lfw",
    dataset_key="lfw",
    artefacts=(Artefact("lfw.tgz", "http://vis-www.cs.umass.edu/lfw/lfw.tgz", "a17d05bd522c52d84eca14327a23d494"),),
    convert=convert,
    split_rule="per identity (>= 5 images, archive order): last 2 test, then 1 dev_test, 1 dev, rest train",
    website="http://vis-www.cs.umass.edu/lfw/",
    citation="G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, Labeled Faces in the Wild, 2007",
)
