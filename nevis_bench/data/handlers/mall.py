"""Mall crowd counting (``nevis:mall``): people counts in 10 bins, RGB video frames.

Archive: ``mall_dataset.zip`` with ``mall_dataset/frames/seq_<NNNNNN>.jpg`` (frames 1..2000) and
``mall_dataset/mall_gt.mat`` (``count``: 2000 x 1 people counts, frame order; ``frame``: head
positions, unused). Labels: the counts quantised into 10 classes of about equal size over all 2000
frames (``_counting.count_bins`` with ``max_size`` 100, the reference's rule; class names give each
class's count range). Order: archive order.

Split rule (reference): frames 1..800 (the official training part) permuted by
``np.random.default_rng(1)``; the first 70% (560) -> train, the next 15% (120) -> dev, the last 120 ->
dev_test; frames 801..2000 -> test.
Deviation: class names state each class's actual count range; the reference's names were off by one
(a class starting at count c was named from c + 1).
"""

from __future__ import annotations

import io
import posixpath
import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._counting import count_bins, label_of_count

MAX_COUNT = 100
TRAIN_FRAMES = 800
TOTAL_FRAMES = 2000
FRACTIONS = (0.70, 0.15)  # train, dev; the rest of the training frames -> dev_test


def frame_splits() -> dict[int, str]:
    """Frame number (1-based) -> split."""
    order = (np.random.default_rng(1).permutation(TRAIN_FRAMES) + 1).tolist()
    first, second = int(FRACTIONS[0] * TRAIN_FRAMES), int((FRACTIONS[0] + FRACTIONS[1]) * TRAIN_FRAMES)
    splits = {f: "train" for f in order[:first]}
    splits.update({f: "dev" for f in order[first:second]})
    splits.update({f: "dev_test" for f in order[second:]})
    splits.update({f: "test" for f in range(TRAIN_FRAMES + 1, TOTAL_FRAMES + 1)})
    return splits


def frame_number(name: str) -> int | None:
    base = posixpath.basename(name)
    if not (base.startswith("seq_") and base.endswith(".jpg")):
        return None
    try:
        return int(base[4:-4])
    except ValueError:
        return None


def convert(ctx: HandlerContext) -> HandlerOutput:
    import scipy.io

    archive = ctx.file("mall_dataset.zip")
    with zipfile.ZipFile(archive) as zf:
        try:
            counts = scipy.io.loadmat(io.BytesIO(zf.read("mall_dataset/mall_gt.mat")))["count"][:, 0].tolist()
        except KeyError as error:
            raise HandlerError(f"mall: {archive.name} lacks mall_dataset/mall_gt.mat or its 'count' array") from error
    if len(counts) != TOTAL_FRAMES:
        raise HandlerError(f"mall: mall_gt.mat has {len(counts)} counts, expected {TOTAL_FRAMES}")
    labels, class_names = count_bins(counts, MAX_COUNT, "mall")
    splits = frame_splits()

    def examples():
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir() and frame_number(i.filename) in splits]
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in names), archive.name):
                frame = frame_number(name)
                yield Example(splits[frame], example_id, image, label_of_count(labels, counts[frame - 1]))

    return HandlerOutput(examples(), class_names, {"bin_classes": class_names})


HANDLER = Handler(
    name="mall",
    dataset_key="mall_dataset",
    artefacts=(
        Artefact("mall_dataset.zip", "https://personal.ie.cuhk.edu.hk/~ccloy/files/datasets/mall_dataset.zip", "48a772b5e55e8e9a66a3c8f98598fc3b"),
    ),
    convert=convert,
    split_rule="frames 1-800 permuted by default_rng(1): 560 train, 120 dev, 120 dev_test; frames 801-2000 test; labels: 10 count bins",
    website="https://personal.ie.cuhk.edu.hk/~ccloy/downloads_mall_dataset.html",
    licence="research use only (see the website)",
    citation="K. Chen, C. C. Loy, S. Gong, T. Xiang, Feature Mining for Localised Crowd Counting, BMVC 2012",
)
