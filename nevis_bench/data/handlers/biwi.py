"""BIWI Kinect head pose (``nevis:biwi``): head pose as 3 x 5 angle bins, multi-label, RGB faces.

File: the Kaggle download ``biwi-kinect-head-pose-database.zip`` (dataset
kmader/biwi-kinect-head-pose-database), whose ``faces_0/<subject 01..24>/`` folders hold
``frame_<n>_rgb.png`` images and ``frame_<n>_pose.txt`` poses (a 3 x 3 rotation matrix on three
lines, a blank line, the head centre), plus depth, calibration and mask files (ignored).

Labels (reference): each pose's rotation matrix becomes a unit quaternion (the trace method of
``pyquaternion``, orthogonality checked to 1e-4) and then yaw, pitch and roll in degrees
(``pyquaternion``'s ``yaw_pitch_roll``). Over all pose files of the archive, each angle is cut into
5 bins holding equal numbers of poses: edges ``np.interp(linspace(0, n, 6), arange(n), sorted
angles)``, bin ``np.digitize(angle, edges) - 1`` with the largest value put in the last bin. An
image's labels are ``[yaw bin, 5 + pitch bin, 10 + roll bin]`` (15 classes). Order: sorted member
names.

Split rule (reference, by subject): subjects 1, 4, 8, 10 -> test; 3, 9 -> dev_test; 2, 7 -> dev; the
other 16 (5, 6, 11-24) -> train; images of other folders are not used. (The reference's metadata declared 5 classes per label; the task has 15.)
"""

from __future__ import annotations

import math
import posixpath
import zipfile

import numpy as np

from nevis_bench.data.handlers import Artefact, Example, Handler, HandlerContext, HandlerError, HandlerOutput
from nevis_bench.data.handlers._util import zip_names

BINS = 5
ANGLES = ("yaw", "pitch", "roll")
SUBJECT_SPLITS = {1: "test", 4: "test", 8: "test", 10: "test", 3: "dev_test", 9: "dev_test", 2: "dev", 7: "dev"}
SUBJECT_SPLITS.update({s: "train" for s in (5, 6, *range(11, 25))})
CLASS_NAMES = [f"{angle} bin {b}" for angle in ANGLES for b in range(BINS)]
POSE_SUFFIX = "_pose.txt"


def quaternion(rotation: np.ndarray, atol: float = 1e-4) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix, as pyquaternion's ``Quaternion(matrix=...)``."""
    if not np.allclose(rotation @ rotation.T, np.eye(3), rtol=1e-5, atol=atol):
        raise ValueError("matrix is not orthogonal")
    if not np.isclose(np.linalg.det(rotation), 1.0, rtol=1e-5, atol=atol):
        raise ValueError("matrix is not a rotation (determinant != 1)")
    m = rotation.T
    if m[2, 2] < 0:
        if m[0, 0] > m[1, 1]:
            t = 1 + m[0, 0] - m[1, 1] - m[2, 2]
            q = [m[1, 2] - m[2, 1], t, m[0, 1] + m[1, 0], m[2, 0] + m[0, 2]]
        else:
            t = 1 - m[0, 0] + m[1, 1] - m[2, 2]
            q = [m[2, 0] - m[0, 2], m[0, 1] + m[1, 0], t, m[1, 2] + m[2, 1]]
    elif m[0, 0] < -m[1, 1]:
        t = 1 - m[0, 0] - m[1, 1] + m[2, 2]
        q = [m[0, 1] - m[1, 0], m[2, 0] + m[0, 2], m[1, 2] + m[2, 1], t]
    else:
        t = 1 + m[0, 0] + m[1, 1] + m[2, 2]
        q = [t, m[1, 2] - m[2, 1], m[2, 0] - m[0, 2], m[0, 1] - m[1, 0]]
    q = np.array(q, dtype=np.float64) * (0.5 / math.sqrt(t))
    squares = float(np.dot(q, q))
    if abs(1.0 - squares) >= 1e-14:
        q = q / math.sqrt(squares)
    return q


def yaw_pitch_roll(rotation: np.ndarray) -> list[float]:
    """(yaw, pitch, roll) in degrees of a rotation matrix."""
    w, x, y, z = quaternion(rotation)
    yaw = np.arctan2(2 * (w * z - x * y), 1 - 2 * (y * y + z * z))
    pitch = np.arcsin(2 * (w * y + z * x))
    roll = np.arctan2(2 * (w * x - y * z), 1 - 2 * (x * x + y * y))
    return [math.degrees(a) for a in (yaw, pitch, roll)]


def bin_edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Edges of ``bins`` equally filled bins (the reference's ``uniform_bins``)."""
    count = len(values)
    return np.interp(np.linspace(0, count, bins + 1), np.arange(count), np.sort(values))


def bin_of(value: float, edges: np.ndarray) -> int:
    """0-based bin of ``value``; the top edge belongs to the last bin."""
    if value == edges[-1]:
        return len(edges) - 2
    return int(np.digitize(value, edges)) - 1


def parse_pose(text: str, where: str) -> np.ndarray:
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return np.array([[float(v) for v in line.split()] for line in lines[:3]], dtype=np.float64).reshape(3, 3)
    except ValueError as error:
        raise HandlerError(f"biwi: cannot read the rotation matrix of {where}: {error}") from error


def labels_of(angles: dict[str, list[float]]) -> dict[str, list[int]]:
    """image member -> [yaw bin, 5 + pitch bin, 10 + roll bin], bins over all poses."""
    matrix = np.array(list(angles.values()))
    edges = [bin_edges(matrix[:, i]) for i in range(len(ANGLES))]
    return {name: [BINS * i + bin_of(a[i], edges[i]) for i in range(len(ANGLES))] for name, a in angles.items()}


def subject_of(name: str) -> int | None:
    folder = posixpath.basename(posixpath.dirname(name))
    return int(folder) if len(folder) == 2 and folder.isdigit() else None


def convert(ctx: HandlerContext) -> HandlerOutput:
    archive = ctx.file("biwi-kinect-head-pose-database.zip")

    def examples():
        with zipfile.ZipFile(archive) as zf:
            names = zip_names(zf)
            angles = {}
            for name in names:
                if name.endswith(POSE_SUFFIX):
                    where = f"{archive.name}:{name}"
                    try:
                        angles[name[: -len(POSE_SUFFIX)] + "_rgb.png"] = yaw_pitch_roll(parse_pose(zf.read(name).decode("utf-8"), where))
                    except ValueError as error:
                        raise HandlerError(f"biwi: {where}: {error}") from error
            if not angles:
                raise HandlerError(f"biwi: no *{POSE_SUFFIX} files in {archive.name}")
            labels = labels_of(angles)
            images = [n for n in names if n in labels and subject_of(n) in SUBJECT_SPLITS]
            for name, example_id, image in ctx.decoded(((n, zf.read(n)) for n in images), archive.name):
                yield Example(SUBJECT_SPLITS[subject_of(name)], example_id, image, labels[name])

    return HandlerOutput(examples(), list(CLASS_NAMES))


HANDLER = Handler(
    name="biwi",
    dataset_key="biwi",
    artefacts=(Artefact("biwi-kinect-head-pose-database.zip"),),
    convert=convert,
    split_rule="by subject: 1,4,8,10 test; 3,9 dev_test; 2,7 dev; the rest train",
    website="https://www.kaggle.com/datasets/kmader/biwi-kinect-head-pose-database",
    licence="research use only (ETH Zurich BIWI terms)",
    citation="G. Fanelli, M. Dantone, J. Gall, A. Fossati, L. Van Gool, Random Forests for Real Time 3D Face Analysis, IJCV 2013",
    manual_step=(
        "download https://www.kaggle.com/datasets/kmader/biwi-kinect-head-pose-database (Kaggle login; `kaggle "
        "datasets download kmader/biwi-kinect-head-pose-database`) and place biwi-kinect-head-pose-database.zip "
        "in DIR (reference md5 59d49d96e5719f248f6d66f8ff205569)"
    ),
)
