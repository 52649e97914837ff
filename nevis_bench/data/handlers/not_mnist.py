"""notMNIST (``nevis:not_mnist``): letters A-J rendered in many fonts, 10 classes, 28 x 28 grey.

File: the Kaggle download ``notmnist.zip`` (dataset jwjohnson314/notmnist), which holds
``notMNIST_small/notMNIST_small/<A..J>/<base64 font name>.png``. Only that tree is used, as the
reference; anything else in the zip (e.g. a ``notMNIST_large`` tree) is ignored. Label: the folder
letter, A -> 0 ... J -> 9. Order: sorted member names. The two files the reference lists as
undecodable (``A/RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png`` and
``F/Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png``) are skipped.

Split rule (reference): images converted to grey and exact duplicates (same pixels, same label)
dropped, keeping the first; then categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over the unique
images.
"""

from __future__ import annotations

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples, parent_name

CLASS_NAMES = list("ABCDEFGHIJ")
ROOT = "notMNIST_small/notMNIST_small/"
BROKEN = {
    ROOT + "A/RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png",
    ROOT + "F/Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png",
}


def label_of(name: str) -> int | None:
    if not name.startswith(ROOT) or name in BROKEN:
        return None
    folder = parent_name(name)
    return CLASS_NAMES.index(folder) if folder in CLASS_NAMES else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    notes: dict = {}  # duplicates_removed, once the examples are read
    examples = labelled_examples(ctx, [ctx.file("notmnist.zip")], label_of, mode="L", dedup_notes=notes)
    return HandlerOutput(examples, list(CLASS_NAMES), notes)


HANDLER = Handler(
    name="not_mnist",
    dataset_key="notmnist",
    artefacts=(Artefact("notmnist.zip"),),
    convert=convert,
    split_rule="notMNIST_small de-duplicated (pixels+label), then categorical 0.56/0.12/0.12/0.20 (RandomState(0))",
    website="https://www.kaggle.com/jwjohnson314/notmnist",
    licence="see the Kaggle page (data by Yaroslav Bulatov, released for public use)",
    citation="Y. Bulatov, notMNIST dataset, 2011",
    manual_step=(
        "download https://www.kaggle.com/jwjohnson314/notmnist (Kaggle login; `kaggle datasets download "
        "jwjohnson314/notmnist`) and place notmnist.zip in DIR (reference md5 e2a47bb2a88c2c6bcae60d9f95223ace)"
    ),
)
