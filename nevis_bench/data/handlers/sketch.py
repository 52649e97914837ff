"""TU Berlin sketch dataset (``nevis:sketch``): 250 classes of grey line drawings.

Archive: ``sketches_png.zip`` with ``png/<class name>/<n>.png`` and ``png/filelist.txt`` (ignored).
Order: sorted member names.

Split rule (reference): categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images.
Deviation: class ids are the sorted class folder names (the reference used a fixed, unsorted list);
this renumbers labels only, the split of every image is the same.
"""

from __future__ import annotations

import zipfile

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter, parent_name, zip_names


def _is_image(name: str) -> bool:
    return name.lower().endswith(".png") and parent_name(name) != ""


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("sketches_png.zip")
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zip_names(zf) if _is_image(n)]
    classes = sorted({parent_name(n) for n in names})

    def examples():
        splitter = CategoricalSplitter(ALL_DATA)
        with zipfile.ZipFile(archive) as zf:
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), archive.name):
                yield Example(splitter.next(), example_id, image, classes.index(parent_name(name)))

    return HandlerOutput(examples(), classes)


HANDLER = Handler(
    name="sketch",
    dataset_key="sketch_dataset",
    artefacts=(
        Artefact(
            "sketches_png.zip",
            "https://cybertron.cg.tu-berlin.de/eitz/projects/classifysketch/sketches_png.zip",
            "023123df86a928a5273e3ba11990d8fd",
        ),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images, sorted member order",
    website="https://cybertron.cg.tu-berlin.de/eitz/projects/classifysketch/",
    licence="CC BY 4.0 (see the website)",
)
