"""TU Berlin sketch dataset (``nevis:sketch``): 250 classes of grey line drawings.

Archive: ``sketches_png.zip`` with ``png/<class name>/<n>.png`` and ``png/filelist.txt`` (ignored).
Order: sorted member names.

Split rule (reference): categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all images.
Deviation: class ids are the sorted class folder names (the reference used a fixed, unsorted list);
this renumbers labels only, the split of every image is the same.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import found_classes, labelled_examples, parent_name


def _is_image(name: str) -> bool:
    return name.lower().endswith(".png") and parent_name(name) != ""


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("sketches_png.zip")
    classes, label_of = found_classes([archive], lambda name: parent_name(name) if _is_image(name) else None)
    return HandlerOutput(labelled_examples(ctx, [archive], label_of), classes)


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
