"""ShanghaiTech crowd counting (``nevis:shanghai_tech``): people counts in 10 bins, RGB.

File: the Kaggle download ``shanghaitech.zip`` (dataset tthien/shanghaitech), which holds
``ShanghaiTech/part_{A,B}/{train,test}_data/images/IMG_<n>.jpg`` and the head annotations
``.../ground-truth/GT_IMG_<n>.mat`` (``image_info[0][0][0][0][0]``: one row per head), plus the
``shanghaitech_h5_empty/`` density maps (ignored). Parts A and B are merged. Labels: the number of
heads, quantised into 10 classes of about equal size over all annotated images
(``_counting.count_bins`` with ``max_size`` 5000, the reference's rule). Images converted to RGB. Order:
archive order of the annotation files.

Split rule (reference): the images of the ``train_data`` folders (archive order) permuted by
``np.random.default_rng(1)``; the first 70% -> train, the next 15% -> dev, the rest -> dev_test (cuts
truncated); the ``test_data`` images -> test.
Deviations: a count of 5000 or more takes the last class (the reference's lookup would fail; the real
data stay below); class names state each class's actual count range (the reference's were off by one).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._counting import count_bins, label_of_count

MAX_COUNT = 5000
FRACTIONS = (0.70, 0.15)


def image_of(mat_name: str) -> str:
    """``ShanghaiTech/part_A/train_data/ground-truth/GT_IMG_1.mat`` -> ``.../train_data/images/IMG_1.jpg``."""
    parts = mat_name.split("/")
    pieces = parts[-1].split("_")
    return "/".join(parts[:3] + ["images", pieces[1] + "_" + pieces[2][:-3] + "jpg"])


def head_count(data: bytes, where: str) -> int:
    import scipy.io

    try:
        return int(scipy.io.loadmat(io.BytesIO(data))["image_info"][0][0][0][0][0].shape[0])
    except (KeyError, IndexError, ValueError) as error:
        raise HandlerError(f"shanghai_tech: cannot read the head positions of {where}: {error}") from error


def train_splits(names: list[str]) -> dict[str, str]:
    """Training image -> train | dev | dev_test: default_rng(1) permutation, cut 70/15/15."""
    order = np.random.default_rng(1).permutation(len(names)).tolist()
    first, second = int(FRACTIONS[0] * len(names)), int((FRACTIONS[0] + FRACTIONS[1]) * len(names))
    return {names[i]: ("train" if k < first else "dev" if k < second else "dev_test") for k, i in enumerate(order)}


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("shanghaitech.zip")
    counts: dict[str, int] = {}
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or "shanghaitech_h5_empty" in name or not name.endswith("mat"):
                continue
            counts[image_of(name)] = head_count(zf.read(name), f"{archive.name}:{name}")
    if not counts:
        raise HandlerError(f"shanghai_tech: no ground-truth .mat files in {archive.name}")
    labels, class_names = count_bins(list(counts.values()), MAX_COUNT, "shanghai_tech")
    training = [n for n in counts if "train" in n]
    splits = train_splits(training)
    splits.update({n: "test" for n in counts if "train" not in n})

    def examples():
        with zipfile.ZipFile(archive) as zf:
            def members():
                for name in counts:
                    try:
                        yield name, zf.read(name)
                    except KeyError as error:
                        raise HandlerError(f"shanghai_tech: {archive.name} lacks the image {name} of an annotation") from error

            for name, example_id, image in ctx.decoded(members(), archive.name):
                yield Example(splits[name], example_id, image.convert("RGB"), label_of_count(labels, counts[name]))

    return HandlerOutput(examples(), class_names, {"bin_classes": class_names})


HANDLER = Handler(
    name="shanghai_tech",
    dataset_key="shanghaitech",
    artefacts=(Artefact("shanghaitech.zip"),),
    convert=convert,
    split_rule="train_data images permuted by default_rng(1): 70% train, 15% dev, rest dev_test; test_data: test; labels: 10 count bins",
    website="https://www.kaggle.com/tthien/shanghaitech",
    licence="research use (see the Kaggle page; cite the paper)",
    citation="Y. Zhang, D. Zhou, S. Chen, S. Gao, Y. Ma, Single-Image Crowd Counting via Multi-Column CNN, CVPR 2016",
    manual_step=(
        "download https://www.kaggle.com/tthien/shanghaitech (Kaggle login; `kaggle datasets download "
        "tthien/shanghaitech`) and place shanghaitech.zip in DIR (reference md5 f547d65447063405ea78ab7fa9ae721b)"
    ),
)
