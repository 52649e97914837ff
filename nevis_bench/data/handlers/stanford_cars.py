"""Stanford Cars (``nevis:stanford_cars``): 196 car models, RGB.

Files: ``car_ims.tgz`` (``car_ims/<NNNNNN>.jpg``) and ``cars_annos.mat`` (MATLAB struct array
``annotations`` with ``relative_im_path``, ``class`` (1..196) and ``test`` (0/1) per image, and the
196 ``class_names``). Order: archive order.

Split rule (reference): train/dev/dev_test by categorical draws 0.70/0.15/0.15 (RandomState(0)) over the
official training images (``test == 0``); test = the official test images.
"""

from __future__ import annotations

import os

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import FOR_TRAIN, CategoricalSplitter, planned_examples

NUM_CLASSES = 196


def read_annotations(path) -> tuple[dict[str, tuple[int, bool]], list[str]]:
    """image file name -> (label 0..195, is test), and the class names, from ``cars_annos.mat``."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, squeeze_me=True)
        rows = mat["annotations"]
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise HandlerError(f"stanford_cars: cannot read the annotations in {path}: {error}") from error
    annotations = {}
    for row in rows:
        annotations[os.path.basename(str(row["relative_im_path"]))] = (int(row["class"]) - 1, bool(int(row["test"])))
    names = [str(n) for n in mat.get("class_names", [])] or [f"class_{i + 1}" for i in range(NUM_CLASSES)]
    return annotations, names


def convert(ctx: HandlerContext) -> HandlerOutput:
    annotations, class_names = read_annotations(ctx.file("cars_annos.mat"))
    archive = ctx.file("car_ims.tgz")

    def plan_of(member: str) -> tuple[str | None, int] | None:
        if os.path.basename(member) not in annotations:
            return None
        label, is_test = annotations[os.path.basename(member)]
        return ("test" if is_test else None), label

    return HandlerOutput(planned_examples(ctx, [archive], plan_of, CategoricalSplitter(FOR_TRAIN)), class_names)


HANDLER = Handler(
    name="stanford_cars",
    dataset_key="stanford_cars",
    artefacts=(
        Artefact("car_ims.tgz", "http://ai.stanford.edu/~jkrause/car196/car_ims.tgz", "d5c8f0aa497503f355e17dc7886c3f14"),
        Artefact("cars_annos.mat", "http://ai.stanford.edu/~jkrause/car196/cars_annos.mat", "b407c6086d669747186bd1d764ff9dbc"),
    ),
    convert=convert,
    split_rule="train/dev/dev_test: categorical 0.70/0.15/0.15 (RandomState(0)) over the official train images; test: official test",
    website="http://ai.stanford.edu/~jkrause/cars/car_dataset.html",
    citation="J. Krause, M. Stark, J. Deng, L. Fei-Fei, 3D Object Representations for Fine-Grained Categorization, 2013",
)
