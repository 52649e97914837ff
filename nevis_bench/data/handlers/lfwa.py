"""LFW-a, aligned faces (``nevis:lfwa``): identification over the identities with >= 5 images.

Archive: ``lfwa.zip`` with ``<top>/<Person_Name>/<Person_Name>_<NNNN>.jpg`` (greyscale, aligned
versions of the LFW images). The identity is the folder holding the image; identities with fewer
than 5 images are dropped (on the publisher's archive: 423 identities, 5,985 images). Class ids follow
the order in which identities first appear in the zip's entry order. Order: the zip's entry order.

Split rule (reference, per identity, images in entry order): the last two images -> test, the one
before -> dev_test, the one before that -> dev, the rest -> train. Every identity is in every split.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import IGNORED, parent_name, planned_examples
from nevis_bench.data.handlers.lfw import MIN_IMAGES, split_of_position


def plan(names: list[str]) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Class names and member -> (split, label) for the ``.jpg`` members of an LFW-a zip, in entry order."""
    by_identity: dict[str, list[str]] = {}
    for name in names:
        if name.endswith(".jpg") and not IGNORED.search(name) and parent_name(name):
            by_identity.setdefault(parent_name(name), []).append(name)
    classes, assignment = [], {}
    for identity, files in by_identity.items():
        if len(files) < MIN_IMAGES:
            continue
        for position, name in enumerate(files):
            assignment[name] = (split_of_position(position, len(files)), len(classes))
        classes.append(identity)
    return classes, assignment


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("lfwa.zip")
    with zipfile.ZipFile(archive) as zf:
        order = [info.filename for info in zf.infolist()]
    classes, assignment = plan(order)  # every split fixed: no draws
    return HandlerOutput(planned_examples(ctx, [archive], assignment.get, sort=False), classes)


HANDLER = Handler(
    name="lfwa",
    dataset_key="lfwa",
    artefacts=(
        Artefact(
            "lfwa.zip",
            "https://drive.google.com/u/0/uc?id=1p1wjaqpTh_5RHfJu4vUh8JJCdKwYMHCp&export=download&confirm=y",
            "96313a4780499f939bc4a06d5bebaf7d",
        ),
    ),
    convert=convert,
    split_rule="per identity (>= 5 images, zip entry order): last 2 test, then 1 dev_test, 1 dev, rest train",
    website="https://talhassner.github.io/home/projects/lfwa/index.html",
    licence="research use; see the dataset's website for its terms",
    citation=(
        "L. Wolf, T. Hassner, Y. Taigman, Effective face recognition by combining multiple descriptors and learned "
        "background statistics, PAMI 2011"
    ),
)
