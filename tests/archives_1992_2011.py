"""Small archives in the publishers' layouts for the 1992-2011 NEVIS handlers (issue 15).

Each ``write_<handler>(folder)`` writes the original file(s) of a tiny fake version of the dataset
(same archive types, member paths, file formats and annotation files as the real download, with a
few decoys the handler must skip) and returns an :class:`Expected`: the examples in the order the
handler must produce them, their labels, and their split where the rule is not a random draw. The
class ids and fixed splits are written here from the reference's rules, independently of the
handler modules.
"""

from __future__ import annotations

import io
import pathlib
import tarfile
import zipfile

import numpy as np
from PIL import Image

from tests.nevis_archives import ALL, TRAIN, TRAIN_DEV, Expected, add_tar_dir, add_tar_member, image_bytes


def gif_bytes(seed: int, size=(18, 12)) -> bytes:
    pixels = (np.random.default_rng(seed).random((size[1], size[0])) > 0.5).astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").convert("P").save(buffer, format="GIF")
    return buffer.getvalue()


def lzw_compress(data: bytes, max_bits: int = 16, clear_when_full: bool = True) -> bytes:
    """Unix ``compress`` (.Z, block mode) of ``data``, written the way compress(1) writes it: codes
    LSB first in groups of 8, a group padded to ``bits`` bytes when the code width grows or after a
    clear code; when the table is full a clear code (256) restarts it."""
    out = bytearray(b"\x1f\x9d" + bytes([0x80 | max_bits]))
    state = {"acc": 0, "nacc": 0, "count": 0, "bits": 9, "clear": False}
    limit = 1 << max_bits
    codes: dict[tuple[int, int], int] = {}
    free = 257

    def flush(padded: bool):
        if state["count"]:
            width = state["bits"] if padded else (state["nacc"] + 7) // 8
            out.extend(state["acc"].to_bytes(width, "little"))
        state.update(acc=0, nacc=0, count=0)

    def emit(code: int):
        state["acc"] |= code << state["nacc"]
        state["nacc"] += state["bits"]
        state["count"] += 1
        if state["count"] == 8:
            flush(padded=True)
        max_code = limit if state["bits"] == max_bits else (1 << state["bits"]) - 1
        if free > max_code or state["clear"]:
            flush(padded=True)
            state["bits"] = 9 if state["clear"] else state["bits"] + 1
            state["clear"] = False

    if not data:
        return bytes(out)
    entry = data[0]
    for byte in data[1:]:
        key = (entry, byte)
        if key in codes:
            entry = codes[key]
            continue
        emit(entry)
        entry = byte
        if free < limit:
            codes[key] = free
            free += 1
        elif clear_when_full:
            codes.clear()
            free = 257
            state["clear"] = True
            emit(256)
    emit(entry)
    flush(padded=False)
    return bytes(out)


# ----------------------------------------------------------------------------------------------------


def write_magellan_venus_volcanoes(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=["neg", "pos"])
    truths = {  # image -> ground truth text (confidence x y radius per line)
        "img3": "1 517.50 254.50 11.50\n3 100.00 200.00 5.00\n",
        "img1": "2 10.0 20.0 4.0\n4 30.0 40.0 3.0\n",
        "img12": "",
        "img2": "3 1.0 2.0 3.0\n1 5.0 6.0 7.0\n",
        "img7": "4 10.0 10.0 2.0\n",
        "img5": "1 33.0 44.0 8.0\n",
        "img100": "1 1.0 1.0 1.0\n",
        "img4": "3 9.0 9.0 9.0\n",
    }
    with tarfile.open(folder / "volcanoes.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "package")
        add_tar_member(tar, "package/README", b"volcanoes on venus")
        add_tar_dir(tar, "package/Images")
        for seed, image in enumerate(truths):
            pixels = np.random.default_rng(seed).integers(0, 256, size=1024 * 1024, dtype=np.uint8).tobytes()
            add_tar_member(tar, f"package/Images/{image}.sdt", pixels)
            add_tar_member(tar, f"package/Images/{image}.spr", b"2\n1024\n0\n1.0\n1024\n0\n1.0\n0\n")
            expected.add(f"volcanoes.tar.gz:package/Images/{image}.sdt", 1 if image in ("img3", "img2", "img5", "img100") else 0, group="all")
        for image, text in truths.items():
            add_tar_member(tar, f"package/GroundTruths/{image}.lxyr", text.encode())
        add_tar_member(tar, "package/Chips/exp_A1_Ctrn.sdt", bytes(225))
        add_tar_member(tar, "package/Tables/exp_A1.tbl", b"table")
        add_tar_member(tar, "package/FOA/img1.foa", b"foa")
    return expected


ABERDEEN_IDS = {"neil": 0, "jenni": 1, "adrian": 16, "kay": 17, "marie": 29, "graeme": 51, "jsheenan": 83, "dhawley": 86, "ian": 89}


def write_aberdeen(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    files = [  # (member, person) in the zip's entry order
        ("neil1.jpg", "neil"), ("marieg2.jpg", "marie"), ("clean_adrian1.jpg", "adrian"), ("jenni3.jpg", "jenni"),
        ("jsheenang4.jpg", "jsheenan"), ("neilg2.jpg", "neil"), ("kay10.jpg", "kay"), ("ian1.jpg", "ian"),
        ("dhawleyg1.jpg", "dhawley"), ("graemeg5.jpg", "graeme"), ("marie1.jpg", "marie"), ("adrian7.jpg", "adrian"),
        ("jsheenan2.jpg", "jsheenan"), ("kayg3.jpg", "kay"),
    ]
    with zipfile.ZipFile(folder / "Aberdeen.zip", "w") as zf:
        for i, (name, person) in enumerate(files):
            zf.writestr(name, image_bytes("JPEG", size=(24, 30), seed=100 + i))
            expected.add(f"Aberdeen.zip:{name}", ABERDEEN_IDS[person], group="all")
        zf.writestr("Thumbs.db", b"windows")
    return expected


def write_landsat(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN})
    rng = np.random.default_rng(7)
    for name, count in (("sat.trn", 30), ("sat.tst", 8)):
        lines = []
        for row in range(count):
            cls = int(rng.choice([1, 2, 3, 4, 5, 7]))
            lines.append(" ".join(str(v) for v in rng.integers(20, 160, size=36)) + f" {cls}")
            where = f"{name}:{row + 1}"
            if name == "sat.trn":
                expected.add(where, cls - 1, group="train")
            else:
                expected.add(where, cls - 1, split="test")
        (folder / name).write_text("\n".join(lines) + "\n")
    return expected


def write_olivetti_face(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    names = [f"ORL/{image}_{subject}.jpg" for subject in (1, 2, 10, 40) for image in (1, 2, 10)]
    with zipfile.ZipFile(folder / "the-orl-database-for-training-and-testing.zip", "w") as zf:
        for i, name in enumerate(reversed(names)):
            zf.writestr(name, image_bytes("JPEG", size=(23, 28), mode="L", seed=200 + i))
    for name in sorted(names):
        subject = int(name.split("_")[1].split(".")[0])
        expected.add(f"the-orl-database-for-training-and-testing.zip:{name}", subject - 1, group="all")
    return expected


def write_coil20(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=[f"obj{k}" for k in range(1, 21)])
    names = [f"coil-20-proc/obj{k}__{v}.png" for k in (1, 2, 10, 20) for v in (0, 1, 5, 12)]
    with zipfile.ZipFile(folder / "coil-20-proc.zip", "w") as zf:
        zf.writestr("coil-20-proc/", b"")
        for i, name in enumerate(names):
            zf.writestr(name, image_bytes("PNG", size=(16, 16), mode="L", seed=300 + i))
        zf.writestr("coil-20-proc/Thumbs.db", b"windows")
        zf.writestr("coil-20-proc/obj3.txt", b"not an image")
    for name in sorted(names):
        expected.add(f"coil-20-proc.zip:{name}", int(name.split("obj")[1].split("__")[0]) - 1, group="all")
    return expected


def write_mpeg7(folder: pathlib.Path) -> Expected:
    classes = ["Bone", "HCircle", "apple", "bat", "device1"]  # sorted, capitals first
    expected = Expected(random={"all": ALL}, class_names=classes)
    names = [f"original/{c}-{n}.gif" for c in ("bat", "apple", "device1", "Bone", "HCircle") for n in (1, 2, 13)]
    with zipfile.ZipFile(folder / "MPEG7dataset.zip", "w") as zf:
        zf.writestr("original/", b"")
        for i, name in enumerate(names):
            zf.writestr(name, gif_bytes(400 + i))
        zf.writestr("original/confusions.gif", gif_bytes(1))
        zf.writestr("original/shapedata.gif", gif_bytes(2))
    for name in sorted(names):
        expected.add(f"MPEG7dataset.zip:{name}", classes.index(name.split("/")[1].split("-")[0]), group="all")
    return expected


BUTTERFLY_PREFIX = {
    "admiral": "adm", "black_swallowtail": "bla", "machaon": "mch", "monarch_closed": "mnc", "monarch_open": "mno",
    "peacock": "pea", "zebra": "zeb",
}


def write_butterflies(folder: pathlib.Path) -> Expected:
    species = sorted(BUTTERFLY_PREFIX)
    expected = Expected(random={"train": TRAIN}, class_names=species)
    files = [  # zip entry order; (species, number, official test?)
        ("zebra", 1, False), ("zebra", 57, True), ("admiral", 14, True), ("admiral", 2, False), ("admiral", 103, True),
        ("peacock", 131, True), ("peacock", 3, False), ("machaon", 12, True), ("machaon", 13, False),
        ("monarch_open", 46, True), ("monarch_open", 47, False), ("monarch_closed", 4, False), ("monarch_closed", 9, True),
        ("black_swallowtail", 25, True), ("black_swallowtail", 26, False), ("admiral", 5, False), ("zebra", 2, False),
    ]
    with zipfile.ZipFile(folder / "butterflies.zip", "w") as zf:
        for i, (kind, number, test) in enumerate(files):
            name = f"{kind}/{BUTTERFLY_PREFIX[kind]}{number:03d}.jpg"
            zf.writestr(name, image_bytes("JPEG", size=(30, 20), seed=500 + i))
            label = species.index(kind)
            expected.add(f"butterflies.zip:{name}", label, split="test" if test else None, group=None if test else "train")
    return expected


UMIST_IDS = {"1s": 0, "1a": 12, "1t": 14, "1j": 19, "1d": 4}


def write_umist(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    with tarfile.open(folder / "face.tar.gz", "w:gz") as tar:
        add_tar_member(tar, "README", b"umist faces")
        for person in ("1t", "1a", "1s", "1j", "1d"):
            add_tar_dir(tar, person)
            for n in range(3):
                name = f"{person}/{person}{n:03d}.pgm"
                add_tar_member(tar, name, image_bytes("PPM", size=(22, 26), mode="L"))
                expected.add(f"face.tar.gz:{name}", UMIST_IDS[person], group="all")
    return expected


def cmu_plan() -> dict[str, str]:
    rng = np.random.default_rng(1)
    plan = {}
    for subject in "ABCDEFGHIJKLM":
        order = list(rng.permutation(75))
        for position, number in enumerate(order):
            split = "train" if position < 41 else "dev" if position < 50 else "dev_test" if position < 59 else "test"
            plan[f"{subject}{number:02d}.bmp"] = split
    return plan


def write_cmu_amp_expression(folder: pathlib.Path) -> Expected:
    expected = Expected(class_names=list("ABCDEFGHIJKLM"))
    plan = cmu_plan()
    names = [f"{s}{n:02d}.bmp" for s in "ABM" for n in range(0, 75, 3)]
    with zipfile.ZipFile(folder / "faceExpressionDatabase.zip", "w") as zf:
        zf.writestr("readme.txt", b"CMU AMP face expression database")
        for i, name in enumerate(reversed(names)):
            zf.writestr(name, image_bytes("BMP", size=(16, 16), mode="L", seed=600 + i))
    for name in sorted(names):
        expected.add(f"faceExpressionDatabase.zip:{name}", ord(name[0]) - ord("A"), split=plan[name])
    return expected


def write_aloi(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN})
    variants = {"col": ["i110", "i120", "i250"], "view": ["r0", "r5", "r355"], "ill": ["l1c1", "l8c3"]}
    for part in ("ill", "col", "view"):
        with tarfile.open(folder / f"aloi_red4_{part}.tar", "w") as tar:
            add_tar_dir(tar, "png4")
            for obj in (1, 2, 1000, 37):
                add_tar_dir(tar, f"png4/{obj}")
                for variant in variants[part]:
                    name = f"png4/{obj}/{obj}_{variant}.png"
                    add_tar_member(tar, name, image_bytes("PNG", size=(19, 14)))
    for part in ("col", "view", "ill"):  # handler order: col, view, then ill; archive order inside each
        for obj in (1, 2, 1000, 37):
            for variant in variants[part]:
                example_id = f"aloi_red4_{part}.tar:png4/{obj}/{obj}_{variant}.png"
                if part == "ill":
                    expected.add(example_id, obj - 1, split="test")
                else:
                    expected.add(example_id, obj - 1, group="train")
    return expected


SCENES8 = ["highway", "street", "tallbuilding", "forest", "insidecity", "opencountry", "mountain", "coast"]


def write_scenes8(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=SCENES8)
    root = "spatial_envelope_256x256_static_8outdoorcategories/"
    names = [f"{root}{c}_{src}{n}.jpg" for c in SCENES8 for src, n in (("arnat", 59), ("n", 18), ("urb", 733))]
    with zipfile.ZipFile(folder / "spatial_envelope_256x256_static_8outdoorcategories.zip", "w") as zf:
        zf.writestr(root, b"")
        for i, name in enumerate(reversed(names)):
            zf.writestr(name, image_bytes("JPEG", size=(16, 16), seed=700 + i))
        zf.writestr(root + "README.txt", b"8 scene categories")
    for name in sorted(names):
        expected.add(f"spatial_envelope_256x256_static_8outdoorcategories.zip:{name}", SCENES8.index(name[len(root):].split("_")[0]), group="all")
    return expected


def write_extended_yaleb(folder: pathlib.Path) -> Expected:
    subjects = ["yaleB11", "yaleB12", "yaleB39"]
    expected = Expected(class_names=subjects)
    pose_split = {"P00": "train", "P01": "dev_test", "P02": "train", "P03": "train", "P04": "train", "P05": "dev",
                  "P06": "test", "P07": "train", "P08": "test"}
    names = []
    with zipfile.ZipFile(folder / "extended-yale-dataset-b.zip", "w") as zf:
        for subject in reversed(subjects):
            zf.writestr(f"ExtendedYaleB/{subject}/{subject}_P00.info", "\n".join(f"{subject}_P00A+000E+00.pgm" for _ in range(2)))
            zf.writestr(f"ExtendedYaleB/{subject}/{subject}_P00_Ambient.pgm", image_bytes("PPM", size=(16, 12), mode="L"))
            for pose in pose_split:
                for angle in ("A+000E+00", "A-035E+15"):
                    name = f"ExtendedYaleB/{subject}/{subject}_{pose}{angle}.pgm"
                    zf.writestr(name, image_bytes("PPM", size=(16, 12), mode="L"))
                    names.append(name)
            zf.writestr(f"ExtendedYaleB/{subject}/{subject}_P00A+010E-20.bad", b"bad image")
    for name in sorted(names):
        subject = name.split("/")[1]
        expected.add(f"extended-yale-dataset-b.zip:{name}", subjects.index(subject), split=pose_split[name.split("_")[1][:3]])
    return expected


def write_ppmi(folder: pathlib.Path) -> Expected:
    classes = sorted(f"norm_image/{a}_instrument/{i}" for a in ("play", "with") for i in ("bassoon", "violin", "guitar"))
    expected = Expected(random={"train": TRAIN}, class_names=classes)
    names = []
    with zipfile.ZipFile(folder / "norm_ppmi_12class.zip", "w") as zf:
        zf.writestr("README", b"PPMI 12 classes")
        for cls in reversed(classes):
            instrument = cls.split("/")[-1]
            for part in ("train", "test"):
                zf.writestr(f"{cls}/{part}/", b"")
                for n in (1, 2, 3) if part == "train" else (1, 2):
                    name = f"{cls}/{part}/{instrument}_{part}_{n:04d}.jpg"
                    zf.writestr(name, image_bytes("JPEG", size=(18, 18)))
                    names.append(name)
    for name in sorted(names):
        label = classes.index("/".join(name.split("/")[:3]))
        if "/test/" in name:
            expected.add(f"norm_ppmi_12class.zip:{name}", label, split="test")
        else:
            expected.add(f"norm_ppmi_12class.zip:{name}", label, group="train")
    return expected


def write_oxford_flowers_17(folder: pathlib.Path) -> Expected:
    import scipy.io

    expected = Expected(random={"train": TRAIN_DEV})
    numbers = [1, 2, 3, 4, 5, 80, 81, 82, 83, 84, 161, 162, 163, 1281, 1282, 1283, 1360, 640, 641]
    trn, val, tst = [1, 3, 4, 81, 83, 84, 161, 1281, 1283, 640], [2, 82, 162, 1360], [5, 80, 163, 1282]  # 641: in no split
    scipy.io.savemat(folder / "datasplits.mat", {
        "trn1": np.array([trn], dtype=float), "val1": np.array([val], dtype=float), "tst1": np.array([tst], dtype=float),
        "trn2": np.array([val], dtype=float), "val2": np.array([tst], dtype=float), "tst2": np.array([trn], dtype=float),
        "trn3": np.array([tst], dtype=float), "val3": np.array([trn], dtype=float), "tst3": np.array([val], dtype=float),
    })
    order = numbers[::-1]  # archive order differs from numeric order
    with tarfile.open(folder / "17flowers.tgz", "w:gz") as tar:
        add_tar_dir(tar, "jpg")
        add_tar_member(tar, "jpg/files.txt", "".join(f"image_{n:04d}.jpg\n" for n in numbers).encode())
        for n in order:
            add_tar_member(tar, f"jpg/image_{n:04d}.jpg", image_bytes("JPEG", size=(20, 16)))
    for n in order:
        example_id = f"17flowers.tgz:jpg/image_{n:04d}.jpg"
        label = (n - 1) // 80
        if n in trn:
            expected.add(example_id, label, group="train")
        elif n in val:
            expected.add(example_id, label, split="dev_test")
        elif n in tst:
            expected.add(example_id, label, split="test")
    return expected


FMD = ["fabric", "foliage", "glass", "leather", "metal", "paper", "plastic", "stone", "water", "wood"]


def write_flickr_material_database(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=FMD)
    names = [f"image/{m}/{m}_{kind}_{n:03d}_new.jpg" for m in FMD for kind, n in (("moderate", 19), ("object", 41))]
    with zipfile.ZipFile(folder / "FMD.zip", "w") as zf:
        for i, name in enumerate(reversed(names)):
            zf.writestr(name, image_bytes("JPEG", size=(32, 24), seed=800 + i))
            zf.writestr("mask/" + name[len("image/"):], image_bytes("PNG", size=(32, 24), mode="L"))
        zf.writestr("image/Thumbs.db", b"windows")
        zf.writestr("image/fabric/Thumbs.db", b"windows")
        zf.writestr("showImage.m", b"% matlab")
        zf.writestr("image/readImage.asv", b"% autosave")
    for name in sorted(names):
        expected.add(f"FMD.zip:{name}", FMD.index(name.split("/")[1]), group="all")
    return expected


def write_belgium_tsc(folder: pathlib.Path) -> Expected:
    names = ["A13", "A14", "A15", "A1A"] + [f"S{k}" for k in range(4, 62)]  # one sign code per class folder
    expected = Expected(random={"train": TRAIN}, class_names=names)
    (folder / "reducedSetTS.txt").write_text("62 used traffic signs types (codes as on the signs)\r\n" + "\r\n".join(names) + "\r\n")
    for zip_name, root, classes, test in (
        ("BelgiumTSC_Training.zip", "Training", (0, 1, 7, 22, 61), False),
        ("BelgiumTSC_Testing.zip", "Testing", (0, 7, 61), True),
    ):
        members = []
        with zipfile.ZipFile(folder / zip_name, "w") as zf:
            zf.writestr(f"{root}/Readme.txt", b"BelgiumTSC")
            for cls in reversed(classes):
                zf.writestr(f"{root}/{cls:05d}/GT-{cls:05d}.csv", b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
                for pole, n in ((1957, 2), (1153, 0), (4, 1)):
                    name = f"{root}/{cls:05d}/{pole:05d}_{n:05d}.ppm"
                    zf.writestr(name, image_bytes("PPM", size=(21, 19)))
                    members.append(name)
        for name in sorted(members):
            label = int(name.split("/")[1])
            expected.add(f"{zip_name}:{name}", label, split="test" if test else None, group=None if test else "train")
    return expected


def write_german_tsr(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": TRAIN}, class_names=[f"{k:05d}" for k in range(43)])
    train = []
    with zipfile.ZipFile(folder / "GTSRB_Final_Training_Images.zip", "w") as zf:
        zf.writestr("GTSRB/Readme-Images.txt", b"GTSRB")
        for cls in (42, 0, 13, 5):
            zf.writestr(f"GTSRB/Final_Training/Images/{cls:05d}/GT-{cls:05d}.csv", b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
            for track, n in ((0, 0), (0, 1), (3, 29)):
                name = f"GTSRB/Final_Training/Images/{cls:05d}/{track:05d}_{n:05d}.ppm"
                zf.writestr(name, image_bytes("PPM", size=(25, 27)))
                train.append((name, cls))
    for name, cls in sorted(train):
        expected.add(f"GTSRB_Final_Training_Images.zip:{name}", cls, group="train")
    test_labels = {f"{k:05d}.ppm": label for k, label in enumerate([16, 1, 38, 33, 11, 38, 18, 12, 25, 35, 0, 42])}
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_Images.zip", "w") as zf:
        zf.writestr("GTSRB/Readme-Images-Final-test.txt", b"GTSRB test")
        zf.writestr("GTSRB/Final_Test/Images/GT-final_test.test.csv", b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\n")
        for name in reversed(list(test_labels)):
            zf.writestr(f"GTSRB/Final_Test/Images/{name}", image_bytes("PPM", size=(25, 27)))
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_GT.zip", "w") as zf:
        rows = "".join(f"{name};53;54;6;5;48;49;{label}\r\n" for name, label in test_labels.items())
        zf.writestr("GT-final_test.csv", "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\r\n" + rows)
    for name, label in sorted(test_labels.items()):
        expected.add(f"GTSRB_Final_Test_Images.zip:GTSRB/Final_Test/Images/{name}", label, split="test")
    return expected


def _tar_bytes(entries) -> bytes:
    """A plain tar of ``(name, bytes)`` files, ``(name, None, link target)`` symlinks and ``(name, "hard", target)`` hard links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for entry in entries:
            if entry[1] is None or entry[1] == "hard":
                info = tarfile.TarInfo(entry[0])
                info.type = tarfile.SYMTYPE if entry[1] is None else tarfile.LNKTYPE
                info.linkname = entry[2]
                tar.addfile(info)
            else:
                add_tar_member(tar, entry[0], entry[1])
    return buffer.getvalue()


def write_vistex(folder: pathlib.Path) -> Expected:
    groups = {"Bark": ["Bark.0000", "Bark.0006", "Bark.0011"], "Brick": ["Brick.0001", "Brick.0004"], "WheresWaldo": ["WheresWaldo.0000", "WheresWaldo.0002"], "Fabric": ["Fabric.0000", "Fabric.0017"]}
    classes = sorted(groups)
    expected = Expected(random={"all": ALL}, class_names=classes)
    flat = [(f"VisTex/Images/FLAT/512x512/{name}.ppm", image_bytes("PPM", size=(24, 24), seed=900 + i))
            for i, name in enumerate(n for names in groups.values() for n in names)]
    flat += [(f"VisTex/Images/FLAT/128x128/{name}.ppm", image_bytes("PPM", size=(8, 8))) for names in groups.values() for name in names]
    flat.append(("VisTex/Images/FLAT/786x512/GrassPlantsSky.context1.ppm", image_bytes("PPM", size=(12, 8))))
    links = [("VisTex/Images/Scenes/GrassPlantsSky/context1.ppm", None, "../../FLAT/786x512/GrassPlantsSky.context1.ppm")]
    for group, names in groups.items():
        for name in names:
            if name == "Fabric.0017":  # a hard link (tar stores its target as an archive path)
                links.append((f"VisTex/Images/Reference/{group}/{name}.ppm", "hard", f"VisTex/Images/FLAT/512x512/{name}.ppm"))
            else:
                links.append((f"VisTex/Images/Reference/{group}/{name}.ppm", None, f"../../FLAT/512x512/{name}.ppm"))
    links.append(("VisTex/Images/Reference.128x128/Bark/Bark.0000.ppm", None, "../../FLAT/128x128/Bark.0000.ppm"))
    with tarfile.open(folder / "VisTex.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "VisionTexture")
        add_tar_member(tar, "VisionTexture/README", b"Vision Texture")
        add_tar_member(tar, "VisionTexture/VisTex.links.tar.Z", lzw_compress(_tar_bytes(links)))
        add_tar_member(tar, "VisionTexture/VisTex.images.512.tar.Z", lzw_compress(_tar_bytes(flat[: len(flat) // 2])))
        add_tar_member(tar, "VisionTexture/VisTex.images.rest.tar", _tar_bytes(flat[len(flat) // 2 :]))
    paths = sorted(f"VisTex/Images/Reference/{group}/{name}.ppm" for group, names in groups.items() for name in names)
    for path in paths:
        expected.add(f"VisTex.tar.gz:{path}", classes.index(path.split("/")[3]), group="all")
    return expected


WRITERS = {
    "magellan_venus_volcanoes": write_magellan_venus_volcanoes,
    "aberdeen": write_aberdeen,
    "landsat": write_landsat,
    "olivetti_face": write_olivetti_face,
    "coil20": write_coil20,
    "mpeg7": write_mpeg7,
    "butterflies": write_butterflies,
    "umist": write_umist,
    "cmu_amp_expression": write_cmu_amp_expression,
    "aloi": write_aloi,
    "scenes8": write_scenes8,
    "extended_yaleb": write_extended_yaleb,
    "ppmi": write_ppmi,
    "oxford_flowers_17": write_oxford_flowers_17,
    "flickr_material_database": write_flickr_material_database,
    "belgium_tsc": write_belgium_tsc,
    "german_tsr": write_german_tsr,
    "vistex": write_vistex,
}
