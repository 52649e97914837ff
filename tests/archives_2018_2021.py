"""Small archives in the original layout of the 2018-2021 NEVIS datasets (issue 17), for their tests.

Each ``write_<handler>(folder)`` writes tiny fake versions of the dataset's original file(s) (same
archive types, member paths, file formats and annotation files as the publisher's download) and returns
an :class:`~tests.nevis_archives.Expected`: the examples in the order the handler must produce them,
with labels and, where the split is not a random draw, their split.
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import tarfile
import zipfile

import numpy as np
from PIL import Image

from tests.nevis_archives import Expected, add_tar_dir, add_tar_member, image_bytes

ALL = (("dev", 0.12), ("dev_test", 0.12), ("test", 0.20), ("train", 0.56))
TRAIN = (("dev", 0.15), ("dev_test", 0.15), ("train", 0.70))
TRAIN_DEV = (("dev", 0.20), ("train", 0.80))


def grey_bytes(seed: int, size=(12, 10), fmt: str = "PNG") -> bytes:
    return image_bytes(fmt, size=size, mode="L", seed=seed)


def rgb_bytes(seed: int, size=(12, 10), fmt: str = "PNG") -> bytes:
    return image_bytes(fmt, size=size, mode="RGB", seed=seed)


def write_zip(path: pathlib.Path, members: list[tuple[str, bytes]]) -> None:
    """A zip whose members are stored in the given order (directories as explicit entries)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)


# ----------------------------------------------------------------------------------------------------


def write_semeion(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=[str(d) for d in range(10)])
    rng = np.random.default_rng(7)
    lines = []
    for i in range(14):
        label = (i * 3) % 10
        pixels = rng.integers(0, 2, 256)
        one_hot = ["1" if k == label else "0" for k in range(10)]
        lines.append(" ".join(f"{p}.0000" for p in pixels) + " " + " ".join(one_hot) + " \n")
        expected.add(f"semeion.data:line {i + 1}", label, group="all")
    (folder / "semeion.data").write_text("".join(lines))
    return expected


def write_not_mnist(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=list("ABCDEFGHIJ"))
    root = "notMNIST_small/notMNIST_small/"
    members = [("notMNIST_small/", b""), (root, b"")]
    duplicate = grey_bytes(99, size=(28, 28))
    plan = []  # (member, bytes, label or None when dropped)
    for letter_index, letter in enumerate("JAFC"):  # written out of order; the handler sorts names
        label = "ABCDEFGHIJ".index(letter)
        for k in range(3):
            name = f"{root}{letter}/{'QUJD' if k == 0 else 'Rm9u'}{k}dC50dGY=.png"
            plan.append((name, grey_bytes(100 + letter_index * 10 + k, size=(28, 28)), label))
    plan.append((root + "A/RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png", b"", None))  # the broken file
    plan.append((root + "F/Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png", b"", None))
    plan.append((root + "C/ZHVwMQ==.png", duplicate, 2))
    plan.append((root + "C/ZHVwMg==.png", duplicate, 2))  # same pixels and label: dropped
    plan.append((root + "D/ZHVwMw==.png", duplicate, 3))  # same pixels, other label: kept
    plan.append(("notMNIST_large/notMNIST_large/A/eHl6.png", grey_bytes(5, size=(28, 28)), None))  # not used
    members += [(n, b) for n, b, _ in plan]
    write_zip(folder / "notmnist.zip", members)
    kept = sorted((n, l) for n, _, l in plan if l is not None and n != root + "C/ZHVwMg==.png")
    for name, label in kept:
        expected.add(f"notmnist.zip:{name}", label, group="all")
    return expected


def _food_names():
    return {"apple_pie": 74, "takoyaki": 0, "fish_and_chips": 100}


def write_food101(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.food101 import CLASS_NAMES

    expected = Expected(random={"train": TRAIN}, class_names=list(CLASS_NAMES))
    train_list, test_list = [], []
    with tarfile.open(folder / "food-101.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "food-101")
        for c, (name, label) in enumerate(_food_names().items()):
            for k in range(5):
                image_id = f"{1000 + 37 * k + c}"
                member = f"food-101/images/{name}/{image_id}.jpg"
                add_tar_member(tar, member, rgb_bytes(200 + 10 * c + k, fmt="JPEG"))
                if k == 4:
                    test_list.append(f"{name}/{image_id}")
                    expected.add(f"food-101.tar.gz:{member}", label, split="test")
                elif k == 3 and c == 0:
                    pass  # listed nowhere: not used
                else:
                    train_list.append(f"{name}/{image_id}")
                    expected.add(f"food-101.tar.gz:{member}", label, group="train")
        # the lists come after the images, as in the real archive's tail
        add_tar_member(tar, "food-101/meta/train.txt", "\n".join(train_list).encode() + b"\n")
        add_tar_member(tar, "food-101/meta/test.txt", "\n".join(test_list).encode() + b"\n")
        add_tar_member(tar, "food-101/meta/classes.txt", "\n".join(_food_names()).encode())
    return expected


def write_food101n(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.food101 import CLASS_NAMES

    expected = Expected(random={"train": TRAIN}, class_names=list(CLASS_NAMES))
    root = "Food-101N_release/"
    members = [(root, b""), (root + "images/", b"")]
    train_lines, val_lines = ["class_name/key\tverification_label"], ["class_name/key\tverification_label"]
    for c, (name, label) in enumerate(_food_names().items()):
        members.append((f"{root}images/{name}/", b""))
        for k in range(5):
            base = f"{c}{k}ab12cd34ef.jpg"
            member = f"{root}images/{name}/{base}"
            members.append((member, rgb_bytes(300 + 10 * c + k, fmt="JPEG")))
            if k == 0:
                val_lines.append(f"{name}/{base}\t{k % 2}")
                expected.add(f"Food-101N_release.zip:{member}", label, split="test")
            elif k == 1 and c == 1:
                pass  # unverified image: not in either list, not used
            else:
                train_lines.append(f"{name}/{base}\t{(k + c) % 2}")
                expected.add(f"Food-101N_release.zip:{member}", label, group="train")
    members.append((root + "meta/", b""))
    members.append((root + "meta/verified_train.tsv", ("\n".join(train_lines) + "\n").encode()))
    members.append((root + "meta/verified_val.tsv", "\n".join(val_lines).encode()))  # no final newline
    members.append((root + "meta/classes.txt", b"\n".join(n.encode() for n in _food_names())))
    write_zip(folder / "Food-101N_release.zip", members)
    return expected


def write_tiny_imagenet(folder: pathlib.Path) -> Expected:
    wnids = ["n09999999", "n01443537", "n02124075"]  # sorted: n01443537 -> 0, n02124075 -> 1, n09999999 -> 2
    label = {w: i for i, w in enumerate(sorted(wnids))}
    expected = Expected(random={"train": TRAIN}, class_names=sorted(wnids))
    root = "tiny-imagenet-200/"
    members = [(root, b""), (root + "wnids.txt", ("\n".join(wnids) + "\n").encode()), (root + "words.txt", b"n01443537\tgoldfish\n")]
    train = []
    for w in wnids:
        members.append((f"{root}train/{w}/", b""))
        members.append((f"{root}train/{w}/{w}_boxes.txt", b"box"))
        for k in range(4):
            member = f"{root}train/{w}/images/{w}_{k}.JPEG"
            members.append((member, rgb_bytes(400 + k + 10 * label[w], size=(16, 16), fmt="JPEG")))
            train.append((member, label[w]))
    val = []
    annotations = []
    for k, w in enumerate(["n02124075", "n01443537", "n09999999", "n02124075"]):
        member = f"{root}val/images/val_{k}.JPEG"
        members.append((member, rgb_bytes(450 + k, size=(16, 16), fmt="JPEG")))
        annotations.append(f"val_{k}.JPEG\t{w}\t0\t0\t10\t10")
        val.append((member, label[w]))
    members.append((root + "val/val_annotations.txt", ("\n".join(annotations) + "\n").encode()))
    members.append((root + "test/images/test_0.JPEG", rgb_bytes(470, size=(16, 16), fmt="JPEG")))  # unlabelled: unused
    write_zip(folder / "tiny-imagenet-200.zip", members)
    for member, lab in sorted(train + val):
        is_val = "/val/" in member
        expected.add(f"tiny-imagenet-200.zip:{member}", lab, split="test" if is_val else None, group=None if is_val else "train")
    return expected


def _idx_images(images: np.ndarray) -> bytes:
    header = np.array([2051, len(images), 28, 28], dtype=">u4").tobytes()
    return gzip.compress(header + images.astype(np.uint8).tobytes())


def _idx_labels(labels: np.ndarray) -> bytes:
    header = np.array([2049, len(labels)], dtype=">u4").tobytes()
    return gzip.compress(header + labels.astype(np.uint8).tobytes())


def write_mnist_rotation(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN}, class_names=[str(d) for d in range(10)])
    rng = np.random.default_rng(11)
    for prefix, count, split in (("train", 12, None), ("t10k", 4, "test")):
        images = rng.integers(0, 256, size=(count, 28, 28))
        labels = rng.integers(0, 10, size=count)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx_images(images))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx_labels(labels))
        for i, label in enumerate(labels):
            expected.add(f"{prefix}-images-idx3-ubyte.gz:{i}", int(label), split=split, group=None if split else "train")
    return expected


def write_pneumonia_chest_xray(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN_DEV}, class_names=["NORMAL", "PNEUMONIA"])
    members = []
    used = {}
    seed = 500
    for part in ("train", "test", "val"):
        for label, cls in enumerate(["PNEUMONIA", "NORMAL"]):
            for k in range(4 if part == "train" else 2):
                seed += 1
                base = f"person{k}_{'virus' if label == 0 else 'IM'}_{seed}.jpeg"
                member = f"chest_xray/chest_xray/{part}/{cls}/{base}"
                data = image_bytes("JPEG", size=(14, 12), mode="L" if k % 2 else "RGB", seed=seed)
                members.append((member, data))
                members.append((f"chest_xray/{part}/{cls}/{base}", data))  # the duplicate tree: ignored
                members.append((f"__MACOSX/chest_xray/chest_xray/{part}/{cls}/._{base}", b"\x00\x05"))
                used[member] = (part, 1 - label)
    members.append(("chest_xray/chest_xray/.DS_Store", b"\x00"))
    write_zip(folder / "chest-xray-pneumonia.zip", members)
    for part, split in (("train", None), ("val", "dev_test"), ("test", "test")):
        for member in sorted(m for m, (p, _) in used.items() if p == part):
            expected.add(f"chest-xray-pneumonia.zip:{member}", used[member][1], split=split, group=None if split else "train")
    return expected


def write_tubercolosis(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=["Normal", "Tuberculosis"])
    root = "TB_Chest_Radiography_Database/"
    members = [(root + "README.md.txt", b"readme"), (root + "Normal.metadata.xlsx", b"xlsx"), (root + "Tuberculosis.metadata.xlsx", b"xlsx")]
    for label, cls in ((1, "Tuberculosis"), (0, "Normal")):
        for k in range(1, 8):
            members.append((f"{root}{cls}/{cls}-{k}.png", image_bytes(size=(16, 16), mode="RGB" if k == 3 else "L", seed=600 + 10 * label + k)))
    write_zip(folder / "tuberculosis-tb-chest-xray-dataset.zip", members)
    for name, _ in sorted(members):
        if name.endswith(".png"):
            expected.add(f"tuberculosis-tb-chest-xray-dataset.zip:{name}", 0 if "/Normal/" in name else 1, group="all")
    return expected


def write_covid_19_xray(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"])
    root = "COVID-19_Radiography_Dataset/"
    members = [(root + "README.md.txt", b"readme")]
    duplicate = image_bytes(size=(16, 16), mode="L", seed=777)
    # The catalogue counts 3 classes for this task (the reference 4, see the handler): the archive holds
    # images of the first three classes only, so that the prepared labels stay within the catalogue.
    for label, cls in ((2, "Normal"), (0, "COVID"), (1, "Lung_Opacity")):
        members.append((f"{root}{cls}.metadata.xlsx", b"xlsx"))
        for k in range(1, 6):
            data = duplicate if (cls, k) in (("COVID", 4), ("COVID", 5), ("Normal", 5)) else image_bytes(size=(16, 16), mode="RGB", seed=700 + 10 * label + k)
            members.append((f"{root}{cls}/{cls}-{k}.png", data))
    write_zip(folder / "covid19-radiography-database.zip", members)
    for name, _ in sorted(members):
        if name.endswith(".png") and name != root + "COVID/COVID-5.png":  # duplicate of COVID-4: dropped
            cls = name.split("/")[1]
            expected.add(f"covid19-radiography-database.zip:{name}", ["COVID", "Lung_Opacity", "Normal"].index(cls), group="all")
    return expected


def write_synthetic_covid19_xray(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=["Normal", "Pneumonia"])
    for zip_name, sub, label in (("G_PC.zip", "G2", 1), ("G_NC.zip", "G1", 0)):
        members = [(f"{sub}/", b"")] + [(f"{sub}/{k:04d}.png", image_bytes(size=(16, 16), seed=800 + 10 * label + k)) for k in (3, 1, 2, 0, 5, 4)]
        write_zip(folder / zip_name, members)
    for zip_name, sub, label in (("G_NC.zip", "G1", 0), ("G_PC.zip", "G2", 1)):
        for k in range(6):
            expected.add(f"{zip_name}:{sub}/{k:04d}.png", label, group="all")
    return expected


def write_path_mnist(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=["tumor", "stroma", "complex", "lympho", "debris", "mucosa", "adipose", "empty"])
    rng = np.random.default_rng(9)
    header = ",".join(f'"pixel{i:04d}"' for i in range(28 * 28 * 3)) + ',"label"\n'
    rows = []
    for r in range(12):
        label = int(rng.integers(1, 9))
        pixels = rng.integers(0, 256, 28 * 28 * 3)
        rows.append(",".join(str(p) for p in pixels) + f",{label}\n")
        expected.add(f"colorectal-histology-mnist.zip:hmnist_28_28_RGB.csv:row {r}", label - 1, group="all")
    members = [
        ("hmnist_8_8_L.csv", b'"pixel0000","label"\n0,1\n'),
        ("hmnist_28_28_RGB.csv", (header + "".join(rows)).encode()),
        ("Kather_texture_2016_image_tiles_5000/01_TUMOR/1A11_CRC-Prim-HE-07_022.tif_Row_601_Col_151.tif", b"tif"),
    ]
    write_zip(folder / "colorectal-histology-mnist.zip", members)
    return expected
