"""Synthetic COVID-19 chest X-rays (``nevis:synthetic_covid19_xray``): GAN-made Normal vs Pneumonia X-rays.

Files: ``G_NC.zip`` and ``G_PC.zip`` (GitHub release v0.1 of hasibzunair/synthetic-covid-cxr-dataset),
holding ``G1/<name>.png`` (label Normal, 0) and ``G2/<name>.png`` (label Pneumonia, 1). A member in any
other folder stops the conversion, as in the reference. Order: the zips by name, members sorted.
(The reference stores the images as RGB; the catalogue records the task as grey, and the prepared
images follow the catalogue.)

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)).
Deviation: the zips are read in sorted name order (the reference used the unordered directory
listing).
"""

from __future__ import annotations

import posixpath

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

CLASS_NAMES = ["Normal", "Pneumonia"]
FOLDERS = {"G1": 0, "G2": 1}
ZIPS = ("G_NC.zip", "G_PC.zip")


def label_of(name: str) -> int:
    folder = posixpath.dirname(name)
    if folder not in FOLDERS:
        raise HandlerError(f"synthetic_covid19_xray: {name} is not in G1/ or G2/")
    return FOLDERS[folder]


def convert(ctx: HandlerContext) -> HandlerOutput:
    archives = (ctx.file(zip_name) for zip_name in ZIPS)  # each found when its turn comes
    return HandlerOutput(labelled_examples(ctx, archives, label_of), list(CLASS_NAMES))


_BASE = "https://github.com/hasibzunair/synthetic-covid-cxr-dataset/releases/download/v0.1/"
HANDLER = Handler(
    name="synthetic_covid19_xray",
    dataset_key="synthetic_covid_19_chest_x_ray_dataset",
    artefacts=(
        Artefact("G_NC.zip", _BASE + "G_NC.zip", "bd82149d00283fca892bc41e997a3070"),
        Artefact("G_PC.zip", _BASE + "G_PC.zip", "acf56668f97be81fd8c05c4308f80c61"),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over G_NC.zip then G_PC.zip, sorted members",
    website="https://github.com/hasibzunair/synthetic-covid-cxr-dataset",
    licence="see the repository (released for research; cite the paper)",
    citation="H. Zunair and A. Ben Hamza, Synthesis of COVID-19 chest X-rays using unpaired image-to-image translation, 2021",
)
