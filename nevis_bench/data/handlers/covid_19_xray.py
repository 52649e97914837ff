"""COVID-19 Radiography Database (``nevis:covid_19_xray``): chest X-rays of 4 classes, grey.

File: the Kaggle download ``covid19-radiography-database.zip`` (dataset
tawsifurrahman/covid19-radiography-database). The version the reference used holds
``COVID-19_Radiography_Dataset/<class>/<class>-<n>.png`` for the classes ``COVID``, ``Lung_Opacity``,
``Normal`` and ``Viral Pneumonia``, plus ``<class>.metadata.xlsx`` and ``README.md.txt`` (ignored).
Label: the image's folder, in that order (0..3). Images converted to grey. Order: sorted member names.

Split rule (reference): exact duplicates (same grey pixels, same label) dropped keeping the first, then
categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the unique images.
Deviation: later Kaggle versions put each class's images in ``<class>/images/`` next to
``<class>/masks/`` (lung masks); the reference would fail on them. We take the class from the folder
above ``images/`` and skip ``masks/``, so both layouts give the same examples.
Catalogue note: the catalogue records 3 classes for this task, the reference 4 (its label list);
preparing the real archive needs the catalogue's count raised to 4.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

CLASS_NAMES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
IGNORED_SUFFIXES = ("metadata.xlsx", "README.md.txt")


def label_of(name: str) -> int | None:
    if name.endswith(IGNORED_SUFFIXES):
        return None
    folders = name.split("/")[:-1]
    if folders and folders[-1] == "masks":
        return None
    if folders and folders[-1] == "images":
        folders = folders[:-1]
    return CLASS_NAMES.index(folders[-1]) if folders and folders[-1] in CLASS_NAMES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    notes: dict = {}  # duplicates_removed, once the examples are read
    examples = labelled_examples(ctx, [ctx.file("covid19-radiography-database.zip")], label_of, mode="L", dedup_notes=notes)
    return HandlerOutput(examples, list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="covid_19_xray",
    dataset_key="covid_19_x_ray",
    artefacts=(Artefact("covid19-radiography-database.zip"),),
    convert=convert,
    split_rule="de-duplicated (grey pixels+label), then categorical 0.56/0.12/0.12/0.20 (RandomState(0)), sorted names",
    website="https://www.kaggle.com/tawsifurrahman/covid19-radiography-database",
    licence="see the Kaggle page (Chowdhury, Rahman et al.; cite the papers listed there)",
    citation="M. E. H. Chowdhury et al., Can AI help in screening Viral and COVID-19 pneumonia?, IEEE Access 2020",
    manual_step=(
        "download https://www.kaggle.com/tawsifurrahman/covid19-radiography-database (Kaggle login; `kaggle "
        "datasets download tawsifurrahman/covid19-radiography-database`) and place "
        "covid19-radiography-database.zip in DIR (the reference's version had md5 1888824db56de7f47b886a536961b763)"
    ),
)
