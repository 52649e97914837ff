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

from tests.nevis_archives import ALL, TRAIN, TRAIN_DEV, Expected, add_tar_dir, add_tar_member, image_bytes, mat_bytes


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


def write_nih_chest_xray(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.nih_chest_xray import CLASS_NAMES

    expected = Expected(random={"train": TRAIN}, class_names=list(CLASS_NAMES))
    findings = ["Cardiomegaly", "Emphysema|Effusion", "No Finding", "Hernia", "Mass|Nodule|Atelectasis", "Pleural_Thickening", "No Finding", "Edema|Infiltration"]
    entries = ["Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"]
    members = [("FAQ_CHESTXRAY.pdf", b"%PDF"), ("BBox_List_2017.csv", b"Image Index,Finding Label\n")]
    train_list, test_list, planned = [], [], []
    for i, finding in enumerate(findings):
        image = f"{i // 3:08d}_{i % 3:03d}.png"
        member = f"images_{1 + i // 4:03d}/images/{image}"
        members.append((member, grey_bytes(900 + i, size=(16, 16))))
        entries.append(f"{image},{finding},{i % 3},{i // 3},58,M,PA,2682,2749,0.143,0.143")
        labels = sorted(CLASS_NAMES.index(f) for f in finding.split("|"))
        if i == 5:
            continue  # in neither list: not used
        (test_list if i % 3 == 2 else train_list).append(image)
        planned.append((member, labels, "test" if i % 3 == 2 else None))
    members.append(("images_003/images/99999999_000.png", grey_bytes(999, size=(16, 16))))  # listed nowhere
    members += [
        ("Data_Entry_2017.csv", ("\n".join(entries) + "\n").encode()),
        ("train_val_list.txt", ("\n".join(train_list) + "\n").encode()),
        ("test_list.txt", "\n".join(test_list).encode()),
    ]
    write_zip(folder / "data.zip", members)
    for member, labels, split in sorted(planned):
        expected.add(f"data.zip:{member}", labels, split=split, group=None if split else "train")
    return expected


def write_caltech_camera_traps(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.caltech_camera_traps import CLASS_NAMES

    expected = Expected(random={"train": TRAIN_DEV}, class_names=list(CLASS_NAMES))
    # the categories' ids and order in the JSON differ from the handler's class list
    categories = [{"id": 30, "name": "empty"}, {"id": 1, "name": "opossum"}, {"id": 9, "name": "deer"}, {"id": 51, "name": "bobcat"}]
    by_id = {c["id"]: CLASS_NAMES.index(c["name"]) for c in categories}
    files = {"train": [], "trans_val": [], "trans_test": [], "cis_val": []}
    images = []
    for i in range(16):
        image_id = f"5{i:03d}a7c2-23d2-11e8-a6a3-ec086b02610b"
        part = ["train", "train", "trans_val", "train", "trans_test", "cis_val"][i % 6]
        category = [30, 1, 9, 51][i % 4]
        files[part].append({"id": f"ann{i}", "image_id": image_id, "category_id": category})
        if i == 3:  # a second annotation of the same image: the last one gives the label
            files[part].append({"id": f"ann{i}b", "image_id": image_id, "category_id": 9})
            category = 9
        images.append((image_id, part, by_id[category]))
    with tarfile.open(folder / "eccv_18_annotations.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "eccv_18_annotation_files")
        for part, annotations in files.items():
            data = {"info": {"version": "eccv_18"}, "categories": categories, "images": [{"id": a["image_id"]} for a in annotations], "annotations": annotations}
            add_tar_member(tar, f"eccv_18_annotation_files/{part}_annotations.json", json.dumps(data).encode())
    order = [images[k] for k in (5, 0, 9, 3, 14, 1, 2, 15, 4, 6, 7, 8, 10, 11, 12, 13)]  # archive order
    with tarfile.open(folder / "eccv_18_all_images_sm.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "eccv_18_all_images_sm")
        for k, (image_id, part, label) in enumerate(order):
            member = f"eccv_18_all_images_sm/{image_id}.jpg"
            add_tar_member(tar, member, image_bytes("JPEG", size=(20, 16), mode="L" if k == 2 else "RGB", seed=1000 + k))
            if part == "cis_val":
                continue
            split = {"trans_val": "dev_test", "trans_test": "test"}.get(part)
            expected.add(f"eccv_18_all_images_sm.tar.gz:{member}", label, split=split, group=None if split else "train")
    return expected


def gnt_record(tag: bytes, pixels: np.ndarray) -> bytes:
    height, width = pixels.shape
    return np.array([10 + width * height], dtype="<u4").tobytes() + tag + np.array([width, height], dtype="<u2").tobytes() + pixels.astype(np.uint8).tobytes()


CASIA_TAGS = ["啊".encode("gb2312"), "中".encode("gb2312"), "！".encode("gb2312"), "齄".encode("gb2312")]


def write_casia_hwdb(folder: pathlib.Path) -> Expected:
    ordered = sorted(CASIA_TAGS)  # class ids: tag codes in increasing order ("！" 0xA3A1 first)
    expected = Expected(random={"train": TRAIN}, class_names=[t.decode("gb2312") for t in ordered])
    rng = np.random.default_rng(13)
    plan = {
        "Gnt1.1TrainPart1.zip": {"1001-c.gnt": [0, 1, 2, 1], "1002-c.gnt": [3, 0]},
        "Gnt1.1TrainPart2.zip": {"1121-c.gnt": [2, 2, 1]},
        "Gnt1.1Test.zip": {"1241-c.gnt": [1, 3], "1242-c.gnt": [0]},
    }
    for zip_name, gnts in plan.items():
        members = []
        for gnt, tags in gnts.items():
            data = b"".join(gnt_record(CASIA_TAGS[t], rng.integers(0, 256, size=(5 + k, 7 + 2 * k))) for k, t in enumerate(tags))
            members.append((gnt, data))
            for k, t in enumerate(tags):
                test = zip_name == "Gnt1.1Test.zip"
                expected.add(f"{zip_name}:{gnt}:{k}", ordered.index(CASIA_TAGS[t]), split="test" if test else None, group=None if test else "train")
        write_zip(folder / zip_name, list(reversed(members)))  # stored out of order; the handler sorts
    return expected


def _csv(rows: list[list[str]]) -> bytes:
    import csv as csv_module

    buffer = io.StringIO()
    csv_module.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def write_ddsm(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN}, class_names=["BENIGN", "MALIGNANT", "BENIGN_WITHOUT_CALLBACK"])
    uid = lambda k: f"1.3.6.1.4.1.9590.100.1.2.{100 + k}"  # noqa: E731
    dicom = [["file_path", "image_path", "AccessionNumber", "PatientID", "SeriesDescription"]]
    members = []
    cases = {"calc_train": [], "mass_train": [], "calc_test": [], "mass_test": []}
    images = {}
    k = 0
    for kind, prefix in (("calc_train", "Calc-Training"), ("mass_train", "Mass-Training"), ("calc_test", "Calc-Test"), ("mass_test", "Mass-Test")):
        for p in range(3):
            case_id = f"{prefix}_P_{p:05d}_LEFT_CC"
            k += 1
            full, crop = f"jpeg/{uid(k)}/1-{k}.jpg", f"jpeg/{uid(k + 50)}/2-{k}.jpg"
            dicom.append([f"CBIS-DDSM/dicom/{uid(k)}/1-{k}.dcm", f"CBIS-DDSM/{full}", "", case_id, "full mammogram images"])
            dicom.append([f"CBIS-DDSM/dicom/{uid(k + 50)}/2-{k}.dcm", f"CBIS-DDSM/{crop}", "", case_id + "_1", "cropped images"])
            members.append((full, image_bytes("JPEG", size=(20, 24), mode="L", seed=1100 + k)))
            members.append((crop, image_bytes("JPEG", size=(8, 8), mode="L", seed=1200 + k)))
            pathology = ["MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"][(p + k) % 3]
            path = f"{case_id}/1.3.6.1.4.1.9590.100.1.2.{k}/1.3.6.1.4.1.9590.100.1.2.{k + 7}/000000.dcm"
            cases[kind].append([f"P_{p:05d}", "3", "LEFT", "CC", "1", kind.split("_")[0], "", "", "4", pathology, "3", path, path + "\n", path])
            images[case_id] = (full, pathology)
            if p == 1:  # a second abnormality of the same image, other pathology: the first row wins
                cases[kind].append([f"P_{p:05d}", "3", "LEFT", "CC", "2", kind.split("_")[0], "", "", "4", "MALIGNANT" if pathology != "MALIGNANT" else "BENIGN", "3", path, path, path])
    header = ["patient_id", "breast density", "left or right breast", "image view", "abnormality id", "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety", "image file path", "cropped image file path", "ROI mask file path"]
    zip_members = [("csv/dicom_info.csv", _csv(dicom)), ("csv/meta.csv", b"SeriesInstanceUID\n")]
    for kind, rows in cases.items():
        part = "train" if kind.endswith("train") else "test"
        name = f"csv/{kind.split('_')[0]}_case_description_{part}_set.csv"
        zip_members.append((name, _csv([header] + rows)))
    zip_members += sorted(members)
    write_zip(folder / "cbis-ddsm-breast-cancer-image-dataset.zip", zip_members)
    classes = ["BENIGN", "MALIGNANT", "BENIGN_WITHOUT_CALLBACK"]
    for kinds, split in ((("calc_train", "mass_train"), None), (("calc_test", "mass_test"), "test")):
        for kind in kinds:
            for row in cases[kind]:
                case_id = row[11].split("/")[0]
                full, pathology = images.pop(case_id, (None, None))
                if full:
                    expected.add(f"cbis-ddsm-breast-cancer-image-dataset.zip:{full}", classes.index(pathology), split=split, group=None if split else "train")
    return expected


AWA_CLASSES = ["antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian"]
AWA_PREDICATES = ["black", "white", "blue", "brown", "gray", "orange"]


def write_awa2(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN}, class_names=list(AWA_PREDICATES))
    rng = np.random.default_rng(17)
    matrix = rng.integers(0, 2, size=(len(AWA_CLASSES), len(AWA_PREDICATES)))
    matrix[3] = 0
    matrix[3, 5] = 1
    root = "Animals_with_Attributes2/"
    members = [
        (root, b""),
        (root + "classes.txt", "".join(f"{i + 1}\t{c}\n" for i, c in enumerate(AWA_CLASSES)).encode()),
        (root + "predicates.txt", "".join(f"{i + 1:>6}\t{p}\n" for i, p in enumerate(AWA_PREDICATES)).encode()),
        (root + "predicate-matrix-binary.txt", "".join(" ".join(str(v) for v in row) + "\n" for row in matrix).encode()),
        (root + "predicate-matrix-continuous.txt", "".join("  ".join(f"{v * 12.5:.2f}" for v in row) + "\n" for row in matrix).encode()),
        (root + "trainclasses.txt", b"grizzly+bear\nantelope\nbeaver\n"),
        (root + "testclasses.txt", b"killer+whale\ndalmatian\n"),
        (root + "licenses/", b""),
        (root + "licenses/antelope_license.txt", b"cc"),
        (root + "JPEGImages/", b""),
    ]
    for c, animal in enumerate(AWA_CLASSES):
        members.append((f"{root}JPEGImages/{animal}/", b""))
        for k in range(3):
            member = f"{root}JPEGImages/{animal}/{animal}_{10001 + k}.jpg"
            size = (300, 40) if (c, k) == (0, 0) else (20, 14)  # one image over 256 px: shrunk
            members.append((member, image_bytes("JPEG", size=size, mode="L" if k == 2 else "RGB", seed=1300 + 3 * c + k)))
            test = animal in ("killer+whale", "dalmatian")
            expected.add(f"AwA2-data.zip:{member}", np.flatnonzero(matrix[c]).tolist(), split="test" if test else None, group=None if test else "train")
    write_zip(folder / "AwA2-data.zip", members)
    return expected


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The rotation matrix whose pyquaternion yaw_pitch_roll is (yaw, pitch, roll), in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    return rx @ ry @ rz


BIWI_SUBJECTS = {1: "test", 2: "dev", 3: "dev_test", 5: "train", 12: "train", 24: "train"}


def write_biwi(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.biwi import CLASS_NAMES

    expected = Expected(class_names=list(CLASS_NAMES))
    members = [("faces_0/", b""), ("faces_0/readme.txt", b"readme")]
    frames = []
    k = 0
    for subject in BIWI_SUBJECTS:
        members.append((f"faces_0/{subject:02d}/rgb.cal", b"calibration"))
        for frame in (3, 4):
            k += 1
            yaw, pitch, roll = -60 + 9.0 * k, 40 - 5.5 * k, (-1) ** k * 2.5 * k
            matrix = rotation(yaw, pitch, roll)
            pose = "\n".join(" ".join(f"{v:.6f}" for v in row) + " " for row in matrix) + "\n\n88.7665 -4.08406 878.874 \n"
            base = f"faces_0/{subject:02d}/frame_{frame:05d}"
            members += [(base + "_rgb.png", rgb_bytes(1400 + k, size=(16, 16))), (base + "_pose.txt", pose.encode()), (base + "_depth.bin", b"\x00" * 8)]
            frames.append((base + "_rgb.png", subject, (yaw, pitch, roll)))
    write_zip(folder / "biwi-kinect-head-pose-database.zip", members)
    angles = np.array([a for _, _, a in frames])
    ranks = [np.argsort(np.argsort(angles[:, i])) for i in range(3)]  # 12 distinct values per angle
    for index, (member, subject, _) in enumerate(frames):
        # equal-count bins over 12 poses: edges interpolate at positions 0, 2.4, 4.8, 7.2, 9.6, 12, so
        # ranks 0-2 -> bin 0, 3-4 -> 1, 5-7 -> 2, 8-9 -> 3, 10-11 -> 4
        bins = [int(np.searchsorted([2.4, 4.8, 7.2, 9.6], ranks[i][index], side="right")) for i in range(3)]
        expected.add(f"biwi-kinect-head-pose-database.zip:{member}", [b + 5 * i for i, b in enumerate(bins)], split=BIWI_SUBJECTS[subject])
    expected.order.sort()
    return expected


# Counting datasets. With 10 distinct counts v_0 < ... < v_9 holding equal numbers of images, the
# reference's cut for class k is the last count whose cumulative share is below k/10, i.e. v_k - 1, so
# v_0 already opens class 1: v_j -> class j + 1 for j < 9, and v_8, v_9 share class 9 (class 0 is empty).
def counting_class(j: int) -> int:
    return min(j + 1, 9)


def write_mall(folder: pathlib.Path) -> Expected:
    values = [20 + 3 * j for j in range(10)]  # 200 frames each
    counts = np.array([values[(7 * f) % 10] for f in range(2000)])  # frame f + 1 has count counts[f]
    expected = Expected()
    permutation = (np.random.default_rng(1).permutation(800) + 1).tolist()
    chosen = {permutation[0]: "train", permutation[559]: "train", permutation[560]: "dev", permutation[679]: "dev",
              permutation[680]: "dev_test", permutation[799]: "dev_test", 801: "test", 1234: "test", 2000: "test"}
    members = [("mall_dataset/", b""), ("mall_dataset/frames/", b"")]
    for frame in sorted(chosen, key=lambda f: (f * 37) % 101):  # archive order differs from frame order
        member = f"mall_dataset/frames/seq_{frame:06d}.jpg"
        members.append((member, rgb_bytes(1500 + frame % 97, size=(20, 15), fmt="JPEG")))
        expected.add(f"mall_dataset.zip:{member}", counting_class(values.index(counts[frame - 1])), split=chosen[frame])
    frames = np.empty((1, 2000), dtype=object)
    for f in range(2000):
        frames[0, f] = np.zeros((0,), dtype=[("loc", "O")])
    members.append(("mall_dataset/mall_gt.mat", mat_bytes({"count": counts.reshape(-1, 1).astype(np.float64), "frame": frames})))
    members.append(("mall_dataset/perspective_roi.mat", mat_bytes({"roi": np.ones((4, 4))})))
    write_zip(folder / "mall_dataset.zip", members)
    return expected


def write_trancos(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN_DEV})
    values = list(range(5, 15))
    images = []
    for i in range(20):
        images.append((f"image-{1 + i % 3}-{i + 1:06d}.jpg", values[(3 * i) % 10], ["training", "validation", "test", "training"][i % 4]))
    with tarfile.open(folder / "TRANCOS_v3.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "TRANCOS_v3")
        add_tar_member(tar, "TRANCOS_v3/readme.txt", b"TRANCOS v3\n")
        for k, (base, count, _) in enumerate(images):
            stem = base[:-4]
            member = f"TRANCOS_v3/images/{base}"
            add_tar_member(tar, member, rgb_bytes(1600 + k, size=(24, 18), fmt="JPEG"))
            dots = "".join(f"{10 + d}\t{20 + d}\n" for d in range(count))
            add_tar_member(tar, f"TRANCOS_v3/images/{stem}.txt", (dots[:-1] if k % 5 == 0 else dots).encode())  # some without final newline
            add_tar_member(tar, f"TRANCOS_v3/images/{stem}dots.png", rgb_bytes(1, size=(4, 4)))
            add_tar_member(tar, f"TRANCOS_v3/images/{stem}mask.mat", b"MATLAB")
        for list_name in ("training", "validation", "test"):
            lines = "".join(f"{b}\n" for b, _, l in images if l == list_name)
            add_tar_member(tar, f"TRANCOS_v3/image_sets/{list_name}.txt", lines.encode())
        add_tar_member(tar, "TRANCOS_v3/image_sets/trainval.txt", "".join(f"{b}\n" for b, _, l in images if l != "test").encode())
    for base, count, list_name in images:
        split = {"validation": "dev_test", "test": "test"}.get(list_name)
        expected.add(f"TRANCOS_v3.tar.gz:TRANCOS_v3/images/{base}", counting_class(values.index(count)), split=split, group=None if split else "train")
    return expected


def head_mat(count: int) -> bytes:
    info = np.zeros((1, 1), dtype=[("location", "O"), ("number", "O")])
    info[0, 0] = (np.arange(count * 2, dtype=np.float64).reshape(count, 2), np.array([[count]], dtype=np.uint8))
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = info
    return mat_bytes({"image_info": cell})


def write_shanghai_tech(folder: pathlib.Path) -> Expected:
    expected = Expected()
    values = list(range(5, 15))
    members, annotated = [], []
    k = 0
    for part in ("part_B", "part_A"):  # archive order, not sorted
        for data in ("train_data", "test_data"):
            for n in (3, 1, 2, 5, 4):
                k += 1
                base = f"ShanghaiTech/{part}/{data}"
                count = values[(3 * k) % 10]
                members.append((f"{base}/images/IMG_{n}.jpg", image_bytes("JPEG", size=(20, 16), mode="L" if n == 2 else "RGB", seed=1700 + k)))
                members.append((f"{base}/ground-truth/GT_IMG_{n}.mat", head_mat(count)))
                members.append((f"shanghaitech_h5_empty/{base}/ground-truth/IMG_{n}.h5", b"\x89HDF"))
                annotated.append((f"{base}/images/IMG_{n}.jpg", count))
    write_zip(folder / "shanghaitech.zip", members)
    training = [name for name, _ in annotated if "train_data" in name]
    permutation = np.random.default_rng(1).permutation(len(training)).tolist()  # 10 images: 7 train, 1 dev, 2 dev_test
    split_of = {training[i]: ("train" if pos < 7 else "dev" if pos < 8 else "dev_test") for pos, i in enumerate(permutation)}
    for name, count in annotated:
        expected.add(f"shanghaitech.zip:{name}", counting_class(values.index(count)), split=split_of.get(name, "test"))
    return expected


# RAR: a RAR 4 archive with stored (uncompressed) entries, the format's simplest valid form. The
# publishers' archives are compressed; the handlers unpack those with unrar / 7z / bsdtar and read stored
# ones directly (nevis_bench/data/handlers/_rar.py).
def _rar_block(kind: int, flags: int, body: bytes) -> bytes:
    import struct
    import zlib

    header = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def write_rar(path: pathlib.Path, members: list[tuple[str, bytes]], method: int = 0x30) -> None:
    import struct
    import zlib

    out = [b"Rar!\x1a\x07\x00", _rar_block(0x73, 0, b"\x00" * 6)]
    for name, data in members:
        encoded = name.replace("/", "\\").encode()
        is_dir = name.endswith("/")
        if is_dir:
            encoded, data = encoded.rstrip(b"\\"), b""
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), 0x5A8E3100, 29, method, len(encoded), 0x10 if is_dir else 0x20) + encoded
        out.append(_rar_block(0x74, 0x8000 | (0xE0 if is_dir else 0), body) + data)
    out.append(_rar_block(0x7B, 0x4000, b""))
    path.write_bytes(b"".join(out))


def _tid(folder: pathlib.Path, year: int, types: int, levels: int, mssim_name: str) -> Expected:
    total = 25 * types * levels
    size = total // 5
    names = [f"i{s:02d}_{t:02d}_{l}.bmp" for s in range(1, 26) for t in range(1, types + 1) for l in range(1, levels + 1)]
    ranks = [(i * 7919) % total for i in range(total)]  # a permutation: the value of image i has rank ranks[i]
    values = [0.5 + r / (2 * total) for r in ranks]
    expected = Expected(random={"all": ALL})
    chosen = [0, 1, 17, 40, 333, 801, total - 1, total // 2, 1234 % total, 99]
    members = [("tid/", b""), ("tid/distorted_images/", b""), ("tid/reference_images/", b"")]
    for k, i in enumerate(chosen):
        base = names[i]
        if k == 1:
            base = base.replace("i", "I", 1)  # some real files are named I.._.._..bmp
        if k == 2:
            base = base[:-3] + "BMP"  # extension in capitals: kept
        members.append((f"tid/distorted_images/{base}", image_bytes("BMP", size=(12, 9), seed=1800 + k)))
    members.append(("tid/reference_images/I01.BMP", image_bytes("BMP", size=(12, 9), seed=1899)))  # not in the table
    members.append(("tid/metrics_values/PSNR.TXT", b"30.1\n" * total))
    members.append((f"tid/metrics_values/{mssim_name}", "".join(f"{v:.6f}\r\n" for v in values).encode()))
    members.append(("tid/mos.txt", b"5.0\n" * total))
    write_rar(folder / f"tid{year}.rar", members)
    for k, i in sorted(enumerate(chosen), key=lambda ki: names[ki[1]]):
        member = [m for m, _ in members if m.lower().endswith(names[i])][0]
        expected.add(f"tid{year}.rar:{member}", ranks[i] // size, group="all")
    return expected


def write_tid2008(folder: pathlib.Path) -> Expected:
    return _tid(folder, 2008, 17, 4, "MSSIM.TXT")


def write_tid2013(folder: pathlib.Path) -> Expected:
    return _tid(folder, 2013, 24, 5, "MSSIM.txt")


def write_animal_web(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.animal_web import CLASS_NAMES

    expected = Expected(random={"all": ALL}, class_names=list(CLASS_NAMES))
    species = ["saluki", "fox", "elk", "panda", "goat"]  # all below 334, the catalogue's class count (see the handler)
    members = [("animal_dataset_v1_clean_check/", b"")]
    planned = []
    for c, name in enumerate(species):
        for k in range(3):
            base = f"{name}_{k + 1}.jpg"
            data = image_bytes("JPEG", size=(16, 16), mode="L" if k == 1 else "RGB", seed=1900 + 3 * c + k)
            if (name, k) in (("fox", 1), ("fox", 2)):
                data = image_bytes("JPEG", size=(16, 16), seed=1990)  # fox_2 and fox_3: same pixels, same label
            members.append((f"animal_dataset_v1_clean_check/{base}", data))
            members.append((f"animal_dataset_v1_clean_check/{base[:-3]}pts", b"version: 1\nn_points: 9\n"))
            if (name, k) != ("fox", 2):
                planned.append((base, CLASS_NAMES.index(name)))
    write_rar(folder / "animal_dataset_v1_c.rar", list(reversed(members)))
    for base, label in sorted(planned):
        expected.add(f"animal_dataset_v1_c.rar:animal_dataset_v1_clean_check/{base}", label, group="all")
    return expected
