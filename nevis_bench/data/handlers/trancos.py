"""TRANCOS vehicle counting (``nevis:trancos``): vehicle counts in 10 bins, RGB traffic-camera images.

Archive: ``TRANCOS_v3.tar.gz`` with ``TRANCOS_v3/images/image-<cam>-<NNNNNN>.jpg``, per image a dot
annotation ``....txt`` (one line per vehicle), ``...dots.png`` and ``...mask.mat`` (unused), and the
official lists ``TRANCOS_v3/image_sets/{training,validation,test}.txt`` (one image file name per line).
Labels: an image's count is the number of lines of its ``.txt``; counts are quantised into 10 classes
of about equal size over all annotated images (``_counting.count_bins`` with ``max_size`` 200, the
reference's rule). Order: archive order.

Split rule (reference): the training list drawn categorically 0.80/0.20 into train/dev
(RandomState(0), archive order); dev_test = the validation list; test = the test list.
Deviations: a count of 200 or more takes the last class (the reference's table lookup would fail);
class names state each class's actual count range (the reference's were off by one).
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._counting import count_bins, label_of_count
from nevis_bench.data.handlers._util import TRAIN_AND_DEV_ONLY, CategoricalSplitter, iter_tar

ARCHIVE = "TRANCOS_v3.tar.gz"
IMAGES = "TRANCOS_v3/images/"
SETS = "TRANCOS_v3/image_sets/"
LISTS = {"training.txt": None, "validation.txt": "dev_test", "test.txt": "test"}  # list -> fixed split
MAX_COUNT = 200


def line_count(data: bytes) -> int:
    """Lines of a text file as ``readlines`` counts them (a last line without newline counts)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file(ARCHIVE)
    counts: dict[str, int] = {}
    split_of: dict[str, str | None] = {}
    found_lists = set()
    for name, data in iter_tar(archive, keep=lambda n: n.endswith(".txt") and n.startswith((IMAGES, SETS))):
        if name.startswith(IMAGES):
            counts[posixpath.basename(name)[:-3] + "jpg"] = line_count(data)
        elif posixpath.basename(name) in LISTS:
            found_lists.add(posixpath.basename(name))
            for line in data.decode("utf-8").splitlines():
                if line.strip():
                    split_of.setdefault(line.strip(), LISTS[posixpath.basename(name)])
    missing = sorted(set(LISTS) - found_lists)
    if missing:
        raise HandlerError(f"trancos: {archive.name} lacks {', '.join(SETS + m for m in missing)}")
    labels, class_names = count_bins(list(counts.values()), MAX_COUNT, "trancos")

    def examples():
        splitter = CategoricalSplitter(TRAIN_AND_DEV_ONLY)
        members = iter_tar(archive, keep=lambda n: posixpath.basename(n) in split_of)
        for name, example_id, image in ctx.decoded(members, archive.name):
            base = posixpath.basename(name)
            if base not in counts:
                raise HandlerError(f"trancos: {name} has no dot annotation (.txt)")
            fixed = split_of[base]
            yield Example(fixed or splitter.next(), example_id, image, label_of_count(labels, counts[base]))

    return HandlerOutput(examples(), class_names, {"bin_classes": class_names})


HANDLER = Handler(
    name="trancos",
    dataset_key="trancos",
    artefacts=(
        Artefact(
            ARCHIVE,
            "https://universidaddealcala-my.sharepoint.com/:u:/g/personal/gram_uah_es/Eank6osXQgxEqa-1bb0nVsoBc3xO4XDwENc_g0nc6t58BA?&Download=1",
            "e9b4d5a62ab1fe5f542ec8326f2d4fda",
        ),
    ),
    convert=convert,
    split_rule="training list: categorical train/dev 0.80/0.20 (RandomState(0), archive order); dev_test: validation list; test: test list; labels: 10 count bins",
    website="https://gram.web.uah.es/data/datasets/trancos/index.html",
    licence="research use (see the website; cite the paper)",
    citation="R. Guerrero-Gomez-Olmedo et al., Extremely Overlapping Vehicle Counting, IbPRIA 2015",
    manual_step="if the SharePoint link refuses the download, fetch TRANCOS_v3.tar.gz from the website by hand",
)
