"""Small archives in the original layout of each handled dataset, for the handler tests.

Each ``write_<handler>(folder)`` writes the original file(s) of a tiny fake version of the dataset
(same archive types, member paths, file formats and annotation files as the real download) and
returns a :class:`Expected`: the examples in the order the handler must produce them, with their
labels and, where the split is not a random draw, their split.
"""

from __future__ import annotations

import bz2
import io
import pathlib
import tarfile
import zipfile
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

RNG = np.random.default_rng(1234)

# Split fractions of the random draws, written here independently of the handlers (as the reference's).
ALL = (("dev", 0.12), ("dev_test", 0.12), ("test", 0.20), ("train", 0.56))  # no official split
TRAIN = (("dev", 0.15), ("dev_test", 0.15), ("train", 0.70))  # of an official train split
TRAIN_DEV = (("dev", 0.20), ("train", 0.80))


@dataclass
class Expected:
    order: list[tuple[str, object]] = field(default_factory=list)  # (id, label) in handler order
    splits: dict[str, str] = field(default_factory=dict)  # id -> split, for fixed (non-random) splits
    random: dict[str, tuple] = field(default_factory=dict)  # group name -> fractions of the draw
    groups: dict[str, str] = field(default_factory=dict)  # id -> group of its random draw
    class_names: list[str] | None = None

    def add(self, example_id: str, label, split: str | None = None, group: str | None = None):
        self.order.append((example_id, label))
        if split:
            self.splits[example_id] = split
        if group:
            self.groups[example_id] = group

    def add_in_name_order(self, written: dict[str, list[tuple[str, object]]], group: str | None = None):
        """Add ``(member, label)`` pairs written to several archives in the order a handler reads them:
        archives by name, and each archive's members sorted by name (as ``zip_names``)."""
        for archive in sorted(written):
            for name, label in sorted(written[archive], key=lambda member: member[0]):
                self.add(f"{archive}:{name}", label, group=group)


def image_bytes(fmt: str = "PNG", size=(20, 14), mode: str = "RGB", seed: int | None = None) -> bytes:
    rng = RNG if seed is None else np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def mat_bytes(arrays: dict) -> bytes:
    """A MATLAB .mat file holding ``arrays`` (scipy.io.savemat), as bytes for an archive member."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, arrays)
    return buffer.getvalue()


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_tar_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    tar.addfile(info)


# ----------------------------------------------------------------------------------------------------


def write_pascal_voc2005(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN})
    train = {  # folder -> class id; written in an order different from the handler's
        "TUGraz_person": 3, "Caltech_cars": 0, "TUGraz_bike": 2, "ETHZ_sideviews-cars": 0,
        "Caltech_motorbikes_side": 1, "TUGraz_cars": 0,
    }
    test = {"pieton": 3, "car": 0, "velo": 2, "motorbike": 1, "bike": 2, "voiture": 0}
    files = {}
    with tarfile.open(folder / "voc2005_1.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "VOC2005_1")
        for sub, label in train.items():
            add_tar_member(tar, f"VOC2005_1/Annotations/{sub}/x.txt", b"annotation")
            for i in range(3):
                name = f"VOC2005_1/PNGImages/{sub}/{sub.lower()}_{i:03d}.png"
                add_tar_member(tar, name, image_bytes("PNG", mode="L" if i == 1 else "RGB"))
                files.setdefault(sub, []).append(name)
        add_tar_member(tar, "VOC2005_1/PNGImages/Caltech_cars_extra/skip.png", image_bytes())
    order = ["Caltech_cars", "ETHZ_sideviews-cars", "TUGraz_cars", "TUGraz_bike", "Caltech_motorbikes_side", "TUGraz_person"]
    for sub in order:
        for name in files[sub]:
            expected.add(f"voc2005_1.tar.gz:{name}", train[sub], group="train")
    test_files = {}
    with tarfile.open(folder / "voc2005_2.tar.gz", "w:gz") as tar:
        for sub, label in test.items():
            name = f"VOC2005_2/PNGImages/{sub}/{sub}_0.png"
            add_tar_member(tar, name, image_bytes())
            test_files[sub] = name
    for class_folders in (["car", "voiture"], ["bike", "velo"], ["motorbike"], ["pieton"]):
        # within a class the handler follows its folder list: car, voiture | bicycle, bike, velo | ... | ..., pieton
        for sub in class_folders:
            expected.add(f"voc2005_2.tar.gz:{test_files[sub]}", test[sub], split="test")
    return expected


def write_caltech_categories(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL},
                        class_names=["car", "motorcycle"])
    layout = {
        "cars_1999": ("Cars_1999.zip", "Cars_1999/cars_markus.tar", 0, 4),
        "cars_2001": ("Cars_2001.zip", "Cars_2001/cars_brad.tar", 0, 3),
        "motorcycles_2001": ("motorbikes_side.zip", "motorbikes_side/motorbikes_side.tar", 1, 5),
    }
    for category, (zip_name, inner, label, count) in sorted(layout.items()):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            add_tar_member(tar, "README", b"readme")
            for i in range(count):
                name = f"image_{i + 1:04d}.jpg"
                add_tar_member(tar, name, image_bytes("JPEG", size=(30, 20)))
                expected.add(f"{zip_name}:{inner}:{name}", label, group="all")
            add_tar_member(tar, "ground_truth.mat", b"matlab")
        with zipfile.ZipFile(folder / zip_name, "w") as zf:
            zf.writestr(inner, buffer.getvalue())
    return expected


def write_uiuc_cars(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    with tarfile.open(folder / "uiuc.tar.gz", "w:gz") as tar:
        add_tar_member(tar, "CarData/README.txt", b"uiuc")
        for i in range(6):
            for kind, label in (("neg", 0), ("pos", 1)):
                name = f"CarData/TrainImages/{kind}-{i}.pgm"
                add_tar_member(tar, name, image_bytes("PPM", size=(20, 8), mode="L"))
                expected.add(f"uiuc.tar.gz:{name}", label, group="all")
        add_tar_member(tar, "CarData/TestImages/test-0.pgm", image_bytes("PPM", size=(30, 20), mode="L"))
        add_tar_member(tar, "CarData/TestImages_Scale/test-0.pgm", image_bytes("PPM", size=(30, 20), mode="L"))
        add_tar_member(tar, "CarData/trueLocations.txt", b"0: (1,2)")
    return expected


def write_pascal_voc2006(folder: pathlib.Path) -> Expected:
    classes = ["bicycle", "car", "cat"]
    expected = Expected(random={"train": TRAIN}, class_names=classes)
    for part, suffix, count in (("trainval", "_trainval.txt", 9), ("test", "_test.txt", 4)):
        ids = [f"{i + (0 if part == 'trainval' else 100):06d}" for i in range(count)]
        positives = {i: [classes[i % 3]] for i in range(count)}
        positives[1] = ["bicycle", "cat"]  # two positive classes: the last one wins
        positives[2] = []  # no positive class: left out
        with tarfile.open(folder / f"voc2006_{part}.tar", "w") as tar:
            for n, image_id in enumerate(ids):
                name = f"VOCdevkit/VOC2006/PNGImages/{image_id}.png"
                add_tar_member(tar, name, image_bytes())
                if positives[n]:
                    label = classes.index(positives[n][-1])
                    expected.add(f"voc2006_{part}.tar:{name}", label, **({"group": "train"} if part == "trainval" else {"split": "test"}))
            add_tar_member(tar, f"VOCdevkit/VOC2006/Annotations/{ids[0]}.txt", b"annotation")
            for class_name in classes:
                lines = "".join(f"{image_id} {' 1' if class_name in positives[n] else '-1'}\n" for n, image_id in enumerate(ids))
                add_tar_member(tar, f"VOCdevkit/VOC2006/ImageSets/{class_name}{suffix}", lines.encode())
    return expected


def write_ig02(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL},
                        class_names=["bikes", "cars", "people"])
    rest = []
    for label, class_name in enumerate(["bikes", "cars", "people"]):
        names = [f"{class_name}/{class_name}_{i:03d}" for i in range(5)]
        train = [n for i, n in enumerate(names) if i % 2 == 0]
        with zipfile.ZipFile(folder / f"ig02-v1.0-{class_name}.zip", "w") as zf:
            duplicate = image_bytes(seed=77)
            for i, base in enumerate(reversed(names)):
                data = duplicate if (class_name == "cars" and base.endswith(("_003", "_004"))) else image_bytes()
                zf.writestr(f"{base}.image.png", data)
                zf.writestr(f"{base}.mask.0.png", image_bytes(mode="L"))
            zf.writestr(f"{class_name}_train.txt", "".join(f"{n.split('/')[1]}\n" for n in train))
            zf.writestr(f"{class_name}_test.txt", "".join(f"{n.split('/')[1]}\n" for n in names if n not in train))
        for n in sorted(train):
            expected.add(f"ig02-v1.0-{class_name}.zip:{n}.image.png", label, group="all")
        for n in sorted(names):
            if n not in train and not (class_name == "cars" and n.endswith("_003")):  # _003 duplicates _004 (train)
                rest.append((f"ig02-v1.0-{class_name}.zip:{n}.image.png", label))
    for example_id, label in rest:
        expected.add(example_id, label, group="all")
    return expected


def write_scenes15(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.scenes15 import CLASS_NAMES

    expected = Expected(random={"all": ALL},
                        class_names=CLASS_NAMES)
    members = []
    for class_name in ("kitchen", "MITcoast", "bedroom"):
        for i in range(4):
            members.append((f"{class_name}/image_{i:04d}.jpg", CLASS_NAMES.index(class_name)))
    with zipfile.ZipFile(folder / "scene_categories.zip", "w") as zf:
        for name, _ in reversed(members):
            zf.writestr(name, image_bytes("JPEG", size=(24, 18), mode="L"))
    for name, label in sorted(members):
        expected.add(f"scene_categories.zip:{name}", label, group="all")
    return expected


def write_lfw(folder: pathlib.Path) -> Expected:
    people = {"Aaron_Peirsol": 6, "Bill_Gates": 3, "Zico": 5}  # Bill_Gates has fewer than 5 images: dropped
    expected = Expected(class_names=["Aaron_Peirsol", "Zico"])
    with tarfile.open(folder / "lfw.tgz", "w:gz") as tar:
        add_tar_dir(tar, "lfw")
        for person, count in people.items():
            add_tar_dir(tar, f"lfw/{person}")
            for i in range(count):
                name = f"lfw/{person}/{person}_{i + 1:04d}.jpg"
                add_tar_member(tar, name, image_bytes("JPEG", size=(25, 25)))
                if count >= 5:
                    split = "test" if i >= count - 2 else "dev_test" if i == count - 3 else "dev" if i == count - 4 else "train"
                    expected.add(f"lfw.tgz:{name}", 0 if person == "Aaron_Peirsol" else 1, split=split)
    return expected


def write_sketch(folder: pathlib.Path, corrupt: bool = False) -> Expected:
    classes = ["airplane", "alarm clock", "zebra"]
    expected = Expected(random={"all": ALL},
                        class_names=classes)
    members = [(f"png/{c}/{i + 1}.png", classes.index(c)) for c in classes for i in range(4)]
    with zipfile.ZipFile(folder / "sketches_png.zip", "w") as zf:
        zf.writestr("png/filelist.txt", "\n".join(n for n, _ in members))
        for name, _ in members:
            zf.writestr(name, image_bytes("PNG", size=(22, 22), mode="L"))
        if corrupt:
            zf.writestr("png/zebra/broken.png", b"\x89PNG\r\n\x1a\nnot really a png")
    for name, label in sorted(members):
        expected.add(f"sketches_png.zip:{name}", label, group="all")
    return expected


def write_brodatz(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.brodatz import PLATES, crop_splits

    expected = Expected(class_names=[f"D{n}" for n in PLATES])
    rng = np.random.default_rng(0)
    for label, number in enumerate(PLATES):
        (folder / f"D{number}.gif").write_bytes(image_bytes("GIF", size=(19, 13), mode="L"))
        splits = crop_splits(rng.permutation(9))
        for k in range(9):
            expected.add(f"D{number}.gif#{k}", label, split=splits[k])
    return expected


def write_caltech256(folder: pathlib.Path, expected: Expected | None = None, classes=None) -> Expected:
    expected = expected or Expected(random={"all": ALL})
    classes = classes or [(1, "ak47", 3), (224, "touring-bike", 2), (257, "clutter", 2), (3, "backpack", 3)]
    with tarfile.open(folder / "256_ObjectCategories.tar", "w") as tar:
        add_tar_dir(tar, "256_ObjectCategories")
        for number, name, count in classes:
            add_tar_dir(tar, f"256_ObjectCategories/{number:03d}.{name}")
            for i in range(count):
                member = f"256_ObjectCategories/{number:03d}.{name}/{number:03d}_{i + 1:04d}.jpg"
                add_tar_member(tar, member, image_bytes("JPEG", size=(26, 30), mode="L" if i == 0 else "RGB"))
                expected.add(f"256_ObjectCategories.tar:{member}", number - 1, group="all")
            add_tar_member(tar, f"256_ObjectCategories/{number:03d}.{name}/notes.txt", b"not an image")
    return expected


def write_usps(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN})
    for filename, count in (("usps.bz2", 12), ("usps.t.bz2", 4)):
        lines = []
        for i in range(count):
            label = i % 10 + 1
            values = np.round(RNG.uniform(-1, 1, 256), 6)
            fields = [f"{k + 1}:{v}" for k, v in enumerate(values) if not (i == 0 and k == 5)]  # sparse: index 6 omitted
            lines.append(f"{label} " + " ".join(fields) + " \n")
            if filename == "usps.bz2":
                expected.add(f"{filename}:line {i + 1}", label - 1, group="train")
            else:
                expected.add(f"{filename}:line {i + 1}", label - 1, split="test")
        (folder / filename).write_bytes(bz2.compress("".join(lines).encode()))
    return expected


def write_mnist_m(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    labels = {
        "train": {"00000000.png": 0, "00000001.png": 3, "00000002.png": 6, "00000003.png": 9, "00000004.png": 2, "00000005.png": 2},
        "test": {"00000000.png": 1, "00000001.png": 8, "00000002.png": 5},  # same file names as train, other labels
    }
    duplicate = image_bytes(seed=5)  # train 00000004 and 00000005: same pixels and label, the second is dropped
    with tarfile.open(folder / "mnist_m.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "mnist_m")
        for part in ("train", "test"):
            for name, label in labels[part].items():
                is_duplicate = part == "train" and name in ("00000004.png", "00000005.png")
                add_tar_member(tar, f"mnist_m/mnist_m_{part}/{name}", duplicate if is_duplicate else image_bytes(size=(28, 28)))
                if not (part == "train" and name == "00000005.png"):
                    expected.add(f"mnist_m.tar.gz:mnist_m/mnist_m_{part}/{name}", label, group="all")
        for part in ("train", "test"):  # label files after the images: the handler reads them first
            text = "".join(f"{n} {l}\n" for n, l in labels[part].items())
            add_tar_member(tar, f"mnist_m/mnist_m_{part}_labels.txt", text.encode())
    return expected


def write_office_caltech_10(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.office_caltech_10 import CLASS_NAMES

    expected = Expected(random={"office": (("dev", 0.2), ("train", 0.8)), "caltech": (("dev_test", 0.5), ("test", 0.5))},
                        class_names=CLASS_NAMES)
    with tarfile.open(folder / "domain_adaptation_images.tar.gz", "w:gz") as tar:
        for domain in ("amazon", "dslr", "webcam"):
            for class_name in ("back_pack", "ruler", "mug"):
                for i in range(2):
                    member = f"{domain}/images/{class_name}/frame_{i + 1:04d}.jpg"
                    add_tar_member(tar, member, image_bytes("JPEG", size=(20, 20)))
                    if class_name != "ruler":
                        expected.add(f"domain_adaptation_images.tar.gz:{member}", CLASS_NAMES.index(class_name), group="office")
    caltech = Expected()
    write_caltech256(folder, caltech, classes=[(3, "backpack", 3), (1, "ak47", 2), (41, "coffee-mug", 3)])
    for example_id, label in caltech.order:
        if "ak47" not in example_id:
            expected.add(example_id, CLASS_NAMES.index("back_pack" if "backpack" in example_id else "mug"), group="caltech")
    return expected


def write_pacs(folder: pathlib.Path) -> Expected:
    import h5py

    expected = Expected(random={"train": (("dev", 0.2), ("train", 0.8)), "sketch": (("dev_test", 0.5), ("test", 0.5))},
                        class_names=["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"])
    train_order, sketch_order = [], []
    for domain in ("photo", "art_painting", "cartoon", "sketch"):
        for part in ("train", "val", "test"):
            count = 3
            images = RNG.integers(0, 256, size=(count, 16, 16, 3), dtype=np.uint8)
            labels = np.array([(i + len(domain)) % 7 + 1 for i in range(count)], dtype=np.int64)
            if domain == "cartoon" and part == "val":
                images[2], labels[2] = images[1], labels[1]  # an exact duplicate
            name = f"{domain}_{part}.hdf5"
            with h5py.File(folder / name, "w") as handle:
                handle.create_dataset("images", data=images)
                handle.create_dataset("labels", data=labels)
            for i in range(count):
                if domain == "cartoon" and part == "val" and i == 2:
                    continue
                (sketch_order if domain == "sketch" else train_order).append((name, f"{name}:{i}", int(labels[i]) - 1))
    for _, example_id, label in sorted(train_order):
        expected.add(example_id, label, group="train")
    for _, example_id, label in sorted(sketch_order):
        expected.add(example_id, label, group="sketch")
    return expected


def write_melanoma(folder: pathlib.Path) -> Expected:
    expected = Expected(class_names=["melanoma", "seborrheic keratosis", "benign nevi"])
    parts = {"Training": 10, "Validation": 3, "Test_v2": 4}
    for part, count in parts.items():
        root = f"ISIC-2017_{part}_Data"
        ids = [f"ISIC_{i + (0 if part == 'Training' else 1000 if part == 'Validation' else 2000):07d}" for i in range(count)]
        rows = []
        for i, image_id in enumerate(reversed(ids)):
            melanoma, keratosis = (1.0, 0.0) if i % 3 == 0 else (0.0, 1.0) if i % 3 == 1 else (0.0, 0.0)
            rows.append((image_id, melanoma, keratosis))
        (folder / f"ISIC-2017_{part}_Part3_GroundTruth.csv").write_text(
            "image_id,melanoma,seborrheic_keratosis\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
        )
        with zipfile.ZipFile(folder / f"{root}.zip", "w") as zf:
            for image_id in ids:
                zf.writestr(f"{root}/{image_id}.jpg", image_bytes("JPEG", size=(32, 24)))
                zf.writestr(f"{root}/{image_id}_superpixels.png", image_bytes("PNG", size=(8, 8)))
        label_of = {a: 0 if b == 1 else 1 if c == 1 else 2 for a, b, c in rows}
        if part == "Training":
            permutation = np.random.default_rng(1).permutation(len(rows))
            cut = int(len(rows) * 0.8)
            split_of = {rows[j][0]: ("train" if pos < cut else "dev") for pos, j in enumerate(permutation)}
        else:
            split_of = {a: "dev_test" if part == "Validation" else "test" for a, _, _ in rows}
        for image_id in sorted(ids):
            expected.add(f"{root}.zip:{root}/{image_id}.jpg", label_of[image_id], split=split_of[image_id])
    return expected


def write_stanford_cars(folder: pathlib.Path) -> Expected:
    import scipy.io

    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "smart fortwo Convertible 2012"]
    expected = Expected(random={"train": TRAIN}, class_names=names)
    rows = [(f"car_ims/{i + 1:06d}.jpg", i % 3 + 1, int(i % 4 == 3)) for i in range(10)]
    annotations = np.zeros(len(rows), dtype=[("relative_im_path", object), ("bbox_x1", object), ("class", object), ("test", object)])
    for n, (path, cls, test) in enumerate(rows):
        annotations[n] = (path, 1, cls, test)
    scipy.io.savemat(folder / "cars_annos.mat", {"annotations": annotations, "class_names": np.array(names, dtype=object)})
    with tarfile.open(folder / "car_ims.tgz", "w:gz") as tar:
        add_tar_dir(tar, "car_ims")
        for path, cls, test in rows:
            add_tar_member(tar, path, image_bytes("JPEG", size=(40, 24), mode="L" if cls == 2 else "RGB"))
            expected.add(f"car_ims.tgz:{path}", cls - 1, **({"split": "test"} if test else {"group": "train"}))
    return expected


def write_fgvc_aircraft_family(folder: pathlib.Path) -> Expected:
    families = ["A300", "Boeing 707", "Cessna 172", "DC-3"]
    expected = Expected(random={"train": TRAIN}, class_names=families)
    root = "fgvc-aircraft-2013b/data/"
    ids = [f"{1000000 + 37 * i:07d}" for i in range(12)]
    family_of = {image_id: families[i % 4] for i, image_id in enumerate(ids)}
    test = set(ids[::4])
    with tarfile.open(folder / "fgvc-aircraft-2013b.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, root + "images")
        for image_id in ids:
            add_tar_member(tar, f"{root}images/{image_id}.jpg", image_bytes("JPEG", size=(30, 22)))
            if image_id in test:
                expected.add(f"fgvc-aircraft-2013b.tar.gz:{root}images/{image_id}.jpg", families.index(family_of[image_id]), split="test")
            else:
                expected.add(f"fgvc-aircraft-2013b.tar.gz:{root}images/{image_id}.jpg", families.index(family_of[image_id]), group="train")
        add_tar_member(tar, root + "families.txt", "".join(f"{f}\n" for f in families).encode())
        add_tar_member(tar, root + "manufacturers.txt", b"Airbus\nBoeing\n")
        for part, members in (("trainval", [i for i in ids if i not in test]), ("test", [i for i in ids if i in test])):
            add_tar_member(tar, f"{root}images_family_{part}.txt", "".join(f"{i} {family_of[i]}\n" for i in members).encode())
            add_tar_member(tar, f"{root}images_variant_{part}.txt", "".join(f"{i} 707-320\n" for i in members).encode())
    return expected


WRITERS = {
    "pascal_voc2005": write_pascal_voc2005,
    "caltech_categories": write_caltech_categories,
    "uiuc_cars": write_uiuc_cars,
    "pascal_voc2006": write_pascal_voc2006,
    "ig02": write_ig02,
    "scenes15": write_scenes15,
    "lfw": write_lfw,
    "sketch": write_sketch,
    "brodatz": write_brodatz,
    "caltech256": write_caltech256,
    "usps": write_usps,
    "mnist_m": write_mnist_m,
    "office_caltech_10": write_office_caltech_10,
    "pacs": write_pacs,
    "melanoma": write_melanoma,
    "stanford_cars": write_stanford_cars,
    "fgvc_aircraft_family": write_fgvc_aircraft_family,
}
