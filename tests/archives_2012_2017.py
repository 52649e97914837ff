"""Small archives in the publisher's layout for the 2012-2017 NEVIS handlers (issue 16).

Each ``write_<handler>(folder)`` writes tiny fake versions of the dataset's original files (same archive
types, member paths, annotation formats) and returns an :class:`Expected` (see tests/nevis_archives.py):
examples in handler order with their labels and fixed splits, and the groups of the random draws.
"""

from __future__ import annotations

import json
import pathlib
import tarfile
import zipfile

import numpy as np
import scipy.io

from tests.nevis_archives import ALL, TRAIN as FOR_TRAIN, TRAIN_DEV, Expected, add_tar_dir, add_tar_member, image_bytes, mat_bytes


# ---- textures --------------------------------------------------------------------------------------


def write_umd(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=[str(n) for n in range(1, 26)])
    written = {}
    for archive, classes in (("textures-2.zip", (13, 25)), ("textures-1.zip", (1, 2, 12))):  # read in name order
        members = []
        with zipfile.ZipFile(folder / archive, "w") as zf:
            for number in reversed(classes):
                zf.writestr(f"{number}/", b"")
                for i in (2, 1):
                    name = f"{number}/T{number:02d}_{i:02d}.jpg"
                    zf.writestr(name, image_bytes("JPEG", size=(24, 18), mode="L"))
                    members.append((name, number - 1))
                zf.writestr(f"{number}/Thumbs.db", b"thumbs")
                zf.writestr(f"{number}/image.db", b"db")
            zf.writestr("readme.txt", b"not an image")
        written[archive] = members
    expected.add_in_name_order(written, group="all")
    return expected


def write_kth_tips_tar(folder: pathlib.Path, archive: str, top: str, classes: list[str], samples: bool, size=(70, 66)) -> Expected:
    expected = Expected(random={"all": ALL}, class_names=sorted(classes))
    with tarfile.open(folder / archive, "w") as tar:
        add_tar_dir(tar, top)
        for class_name in classes:  # not sorted: ids must still follow sorted names
            add_tar_dir(tar, f"{top}/{class_name}")
            for sample in (["sample_a", "sample_b"] if samples else [""]):
                base = f"{top}/{class_name}/{sample + '/' if sample else ''}"
                if sample:
                    add_tar_dir(tar, base.rstrip("/"))
                for i in range(2 if samples else 4):
                    name = f"{base}{i + 1}-scale_{i + 1}_im_{i + 1}_col.png"
                    add_tar_member(tar, name, image_bytes("PNG", size=size))
                    expected.add(f"{archive}:{name}", sorted(classes).index(class_name), group="all")
            add_tar_member(tar, f"{top}/{class_name}/Thumbs.db", b"thumbs")
        add_tar_member(tar, f"{top}/README.txt", b"kth")
    return expected


def write_kth_tips(folder: pathlib.Path) -> Expected:
    return write_kth_tips_tar(folder, "kth_tips_col_200x200.tar", "KTH_TIPS", ["linen", "aluminium_foil", "sponge"], samples=False)


def write_kth_tips_2a(folder: pathlib.Path) -> Expected:
    return write_kth_tips_tar(folder, "kth-tips2-a_col_200x200.tar", "KTH-TIPS2-a", ["wool", "brown_bread", "cork"], samples=True)


def write_kth_tips_2b(folder: pathlib.Path) -> Expected:
    return write_kth_tips_tar(folder, "kth-tips2-b_col_200x200.tar", "KTH-TIPS2-b", ["wool", "lettuce_leaf", "cotton"], samples=True)


def write_uiuc_texture(folder: pathlib.Path) -> Expected:
    archives = {
        "T01-T05.zip": ["T01_bark1", "T02_bark2"], "T06-T10.zip": ["T06_wood1"], "T11-T15.zip": ["T11_water"],
        "T16-T20.zip": ["T16_glass1"], "T21-T25.zip": ["T21_fur", "T25_plaid"],
    }
    classes = sorted(c for names in archives.values() for c in names)
    expected = Expected(random={"all": ALL}, class_names=classes)
    written = {}
    for archive in reversed(list(archives)):  # written out of order; read in name order
        with zipfile.ZipFile(folder / archive, "w") as zf:
            members = []
            for class_name in reversed(archives[archive]):
                zf.writestr(f"{class_name}/", b"")
                for i in (3, 1, 2):
                    name = f"{class_name}/{class_name[:3]}_{i:02d}.jpg"
                    zf.writestr(name, image_bytes("JPEG", size=(80, 70), mode="L"))
                    members.append((name, classes.index(class_name)))
            zf.writestr(f"{archives[archive][0]}/Thumbs.db", b"thumbs")
        written[archive] = members
    expected.add_in_name_order(written, group="all")
    return expected


# ---- OCR / writers -----------------------------------------------------------------------------------


def write_cvc_muscima(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.cvc_muscima import CLASS_NAMES

    expected = Expected(random={"train": FOR_TRAIN}, class_names=CLASS_NAMES)
    writers = ["w-05", "w-01", "w-50"]
    pages = {w: [f"p{i:03d}.png" for i in (3, 1, 2, 4)] for w in writers}
    train = [f"{w}/{p}" for w in writers for p in pages[w][:3]]
    test = [f"{w}/{p}" for w in writers for p in pages[w][3:]]
    order = []
    with zipfile.ZipFile(folder / "CVCMUSCIMA_WI.zip", "w") as zf:
        zf.writestr("CVCMUSCIMA_WI/", b"")
        for w in writers:  # archive order, not sorted
            zf.writestr(f"CVCMUSCIMA_WI/PNG_GT_Gray/{w}/", b"")
            for p in pages[w]:
                name = f"CVCMUSCIMA_WI/PNG_GT_Gray/{w}/{p}"
                zf.writestr(name, image_bytes("PNG", size=(30, 20), mode="L"))
                zf.writestr(f"CVCMUSCIMA_WI/PNG_GT_BW/{w}/{p}", image_bytes("PNG", size=(30, 20), mode="L"))
                order.append((name, f"{w}/{p}"))
        zf.writestr("CVCMUSCIMA_WI/PNG_GT_Gray/w-05/p999.png", image_bytes("PNG", size=(30, 20), mode="L"))  # in no list
    with zipfile.ZipFile(folder / "Partitions_Set.zip", "w") as zf:
        zf.writestr("Partitions_Set/set_2_Independent/set_2_training_01.txt", "\r\n".join(train) + "\r\n")
        zf.writestr("Partitions_Set/set_2_Independent/set_2_testing_01.txt", "\r\n".join(test) + "\r\n")
        zf.writestr("Partitions_Set/set_1_Dependent/set_1_training_01.txt", "\n".join(test))
    for wanted, kwargs in ((train, {"group": "train"}), (test, {"split": "test"})):
        for name, key in order:
            if key in wanted:
                expected.add(f"CVCMUSCIMA_WI.zip:{name}", CLASS_NAMES.index(key.split("/")[0]), **kwargs)
    return expected


# ---- scenes, paintings, objects ----------------------------------------------------------------------


def write_iaprtc12(folder: pathlib.Path) -> Expected:
    words = ["man", "woman", "", "sky", "tree"]
    expected = Expected(random={"all": ALL}, class_names=["man", "woman", " ", "sky", "tree"])
    regions = {  # image id -> (folder, word ids from 1 of its regions, in labels.txt order)
        25: (0, [4, 1, 4]), 30: (0, [2]), 31: (0, [5, 3]), 7: (0, [1, 2, 5]), 40: (1, [4]), 41: (1, [1, 4]),
        1003: (1, [2, 2]), 1010: (1, [5]), 50: (1, [1]), 60: (0, [3]), 1020: (1, [4, 5]), 12: (0, [1]),
    }
    training, validation, testing = [25, 30, 31, 7, 1003, 12, 77], [40, 41, 1010, 1020], [50, 60]  # 77: no labels
    with zipfile.ZipFile(folder / "iapr-tc12.zip", "w") as zf:
        zf.writestr("saiaprtc12ok/benchmark/wlist.txt", "".join(f"{i + 1}\t{w}\n" for i, w in enumerate(words)))
        for f in (0, 1):
            rows = [f"{image_id:d} {r + 1:d} {word:d}\n" for image_id, (g, ws) in regions.items() if g == f for r, word in enumerate(ws)]
            zf.writestr(f"saiaprtc12ok/benchmark/saiapr_tc-12/{f:02d}/labels.txt", "".join(rows))
        for name, ids in (("training", training), ("validation", validation), ("testing", testing)):
            zf.writestr(f"saiaprtc12ok/matlab/matlab/{name}.mat", mat_bytes({name: np.array([ids], dtype=np.float64).T}))
        members = []
        for image_id, (f, _) in list(regions.items()) + [(77, (0, []))]:
            base = f"benchmark/saiapr_tc-12/{f:02d}"
            zf.writestr(f"{base}/images/{image_id}.jpg", image_bytes("JPEG", size=(20, 16), mode="L" if image_id == 7 else "RGB"))
            zf.writestr(f"saiaprtc12ok/{base}/images/{image_id}.jpg", image_bytes("JPEG", size=(20, 16)))  # the duplicate tree
            zf.writestr(f"{base}/segmentation_masks/{image_id}_1.mat", mat_bytes({"segimg_t": np.zeros((2, 2))}))
            zf.writestr(f"{base}/images/{image_id}.txt", "not an image")
            members.append(f"{base}/images/{image_id}.jpg")
        zf.writestr("benchmark/saiapr_tc-12/00/images/99.jpg", image_bytes("JPEG", size=(20, 16)))  # in no list
    wanted = set(training + validation)
    for name in sorted(members):
        image_id = int(name.rsplit("/", 1)[1][:-4])
        if image_id in wanted and image_id in regions:
            expected.add(f"iapr-tc12.zip:{name}", sorted({w - 1 for w in regions[image_id][1]}), group="all")
    return expected


def write_wiki_paintings_style(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.wiki_paintings_style import CLASS_NAMES

    expected = Expected(random={"train": FOR_TRAIN}, class_names=CLASS_NAMES)
    expected.sizes = {}
    train = [("Impressionism/claude-monet_a.jpg", 12), ("Baroque/rembrandt_b.jpg", 4), ("Ukiyo_e/hokusai_c.jpg", 26),
             ("Realism/courbet_d.jpg", 21), ("Impressionism/degas_e.jpg", 12), ("Cubism/picasso_f.jpg", 7),
             ("Rococo/boucher_g.jpg", 22), ("Abstract_Expressionism/pollock_h.jpg", 0)]
    val = [("Realism/millet_i.jpg", 21), ("Baroque/caravaggio_j.jpg", 4), ("Pop_Art/warhol_k.jpg", 19)]
    sizes = {"Ukiyo_e/hokusai_c.jpg": (300, 120), "Realism/millet_i.jpg": (90, 400)}
    with zipfile.ZipFile(folder / "wikiart.zip", "w") as zf:
        for path, _ in sorted(train + val):
            zf.writestr(f"wikiart/{path}", image_bytes("JPEG", size=sizes.get(path, (30, 24))))
    with zipfile.ZipFile(folder / "wikiart_csv.zip", "w") as zf:
        zf.writestr("style_train.csv", "".join(f"{p},{c}\n" for p, c in train + [("Baroque/missing.jpg", 4)]))
        zf.writestr("style_val.csv", "".join(f"{p},{c}\n" for p, c in val))
        zf.writestr("genre_train.csv", "Impressionism/claude-monet_a.jpg,4\n")
        zf.writestr("style_class.txt", "0 Abstract_Expressionism\n")
    for rows, kwargs in ((train, {"group": "train"}), (val, {"split": "test"})):
        for path, label in rows:
            expected.add(f"wikiart.zip:wikiart/{path}", label, **kwargs)
    expected.sizes = {"wikiart.zip:wikiart/Ukiyo_e/hokusai_c.jpg": (256, 102), "wikiart.zip:wikiart/Realism/millet_i.jpg": (57, 256),
                      "wikiart.zip:wikiart/Baroque/rembrandt_b.jpg": (30, 24)}
    return expected


def write_mit_scenes(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.mit_scenes import CLASS_NAMES

    expected = Expected(random={"train": FOR_TRAIN}, class_names=CLASS_NAMES)
    train = [f"{c}/{c}_{i}.jpg" for c in ("kitchen", "stairscase", "office", "computerroom") for i in range(3)]
    test = ["office/office_9.jpg", "kitchen/kitchen_9.jpg", "bar/bar_1.jpg"]
    with zipfile.ZipFile(folder / "indoor-scenes-cvpr-2019.zip", "w") as zf:
        zf.writestr("TrainImages.txt", "\r\n".join(train) + "\r\n")
        zf.writestr("TestImages.txt", "\n".join(test))
        for path in sorted(train + test + ["bar/unlisted.jpg"]):
            zf.writestr(f"indoorCVPR_09/Images/{path}", image_bytes("JPEG", size=(26, 20)))
        zf.writestr("indoorCVPR_09/Images/bar/palette.gif", image_bytes("GIF", size=(26, 20), mode="L"))
    for rows, kwargs in ((train, {"group": "train"}), (test, {"split": "test"})):
        for path in rows:
            expected.add(f"indoor-scenes-cvpr-2019.zip:indoorCVPR_09/Images/{path}", CLASS_NAMES.index(path.split("/")[0]), **kwargs)
    return expected


def write_coco_single_label(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"train": FOR_TRAIN})
    expected.sizes = {}
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 90, "name": "toothbrush"}]
    names = ["person", "unused_2", "car"] + [f"unused_{i}" for i in range(4, 90)] + ["toothbrush"]
    expected.class_names = names
    annotation_id = 100
    for part, fixed in (("train2017", None), ("val2017", "test")):
        images = [{"id": 9 + k, "file_name": f"{k + 1:012d}.jpg", "width": 60, "height": 50} for k in range(3 if fixed else 4)]
        boxes = [  # (image index, bbox, category id)
            (0, [2.4, 3.6, 20.2, 17.0], 1), (1, [40.0, 30.0, 30.0, 30.0], 3), (0, [5, 5, 15.9, 30], 90),  # too narrow
            (2, [0, 0, 60, 50], 90), (1, [10.5, 10.5, 16, 16], 1), (0, [30, 1, 16, 40], 3), (2, [3, 3, 40, 10], 1),
        ]
        if not fixed:
            boxes += [(3, [1, 1, 20, 20], 3), (3, [4, 4, 17, 30], 90), (1, [0, 0, 16, 16], 1)]
        annotations = []
        for index, bbox, category in boxes:
            if index >= len(images):
                continue
            annotation_id += 1
            annotations.append({"id": annotation_id, "image_id": images[index]["id"], "category_id": category, "bbox": bbox,
                                "area": bbox[2] * bbox[3], "iscrowd": 0})
            if bbox[2] >= 16 and bbox[3] >= 16:
                example_id = f"{part}.zip:{part}/{images[index]['file_name']}#{annotation_id}"
                expected.add(example_id, category - 1, **({"split": fixed} if fixed else {"group": "train"}))
                x0, y0 = round(bbox[0]), round(bbox[1])
                x1, y1 = round(min(60, bbox[0] + bbox[2])), round(min(50, bbox[1] + bbox[3]))
                expected.sizes[example_id] = (x1 - x0, y1 - y0)
        info = {"images": images, "annotations": annotations, "categories": categories}
        with zipfile.ZipFile(folder / f"{part}.zip", "w") as zf:
            zf.writestr(f"{part}/", b"")
            for k, image in enumerate(images):
                zf.writestr(f"{part}/{image['file_name']}", image_bytes("JPEG", size=(60, 50), mode="L" if k == 1 else "RGB"))
        with zipfile.ZipFile(folder / "annotations_trainval2017.zip", "a") as zf:
            zf.writestr(f"annotations/instances_{part}.json", json.dumps(info))
            zf.writestr(f"annotations/captions_{part}.json", json.dumps({"annotations": []}))
    return expected


def write_animal(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    layout = {"non_rigid_shape_B.zip": ("B", ["rabbit", "cat"]), "non_rigid_shape_A.zip": ("A", ["horse", "bird", "dog"])}
    classes = sorted(c for _, names in layout.values() for c in names)
    expected.class_names = classes
    written = {}
    for archive, (top, names) in layout.items():
        members = []
        with zipfile.ZipFile(folder / archive, "w") as zf:
            zf.writestr(f"{top}/", b"")
            for class_name in names:
                zf.writestr(f"{top}/{class_name}/", b"")
                for i in (3, 1, 2):
                    name = f"{top}/{class_name}/{class_name}{i}.tif"
                    zf.writestr(name, image_bytes("TIFF", size=(18, 14)))
                    members.append((name, classes.index(class_name)))
            zf.writestr(f"{top}/Thumbs.db", b"thumbs")
        written[archive] = members
    expected.add_in_name_order(written, group="all")
    return expected


def write_silhouettes_28(folder: pathlib.Path) -> Expected:
    rng = np.random.default_rng(5)
    classnames = np.empty((1, 101), dtype=object)
    for k in range(101):
        classnames[0, k] = f"class_{k:03d}" if k else "airplanes"
    scipy.io.savemat(folder / "caltech101_silhouettes_28.mat", {"classnames": classnames, "X": np.zeros((1, 784)), "Y": np.ones((1, 1))})
    parts = {"train": 9, "val": 3, "test": 4}
    arrays = {}
    expected = Expected(random={"train": TRAIN_DEV}, class_names=[classnames[0, k] for k in range(101)])
    expected.pixels = {}
    for part, count in parts.items():
        data = rng.integers(0, 2, size=(count, 784)).astype(np.float64)
        labels = rng.integers(1, 102, size=(count, 1)).astype(np.float64)
        labels[0, 0] = 101
        arrays[f"{part}_data"], arrays[f"{part}_labels"] = data, labels
        for row in range(count):
            example_id = f"caltech101_silhouettes_28_split1.mat:{part}#{row}"
            where = {"group": "train"} if part == "train" else {"split": "dev_test" if part == "val" else "test"}
            expected.add(example_id, int(labels[row, 0]) - 1, **where)
            expected.pixels[example_id] = (data[row].reshape(28, 28) * 255).astype(np.uint8)  # row-major, as the reference
    scipy.io.savemat(folder / "caltech101_silhouettes_28_split1.mat", arrays)
    return expected


def write_interact(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.interact import RATIOS, TRUNCATED

    names = {label: f"person {label} interaction" for label in range(60)}
    counts = {label: 1 for label in range(60)}
    counts.update({7: 9, 0: 6, 59: 11})
    annotation = []  # lines in file order; classes first appear in the order 7, 0, 1, ..., 59
    by_class = {}
    for label in [7] + [k for k in range(60) if k != 7]:
        for i in range(counts[label]):
            fname = f"S{label:02d}X{i:02d}_{i:02d}.jpg"
            annotation.append(f"{label + 1};{fname};{names[label]}")
            by_class.setdefault(label, []).append(f"imgs/{fname}")
    truncated = sorted(TRUNCATED)[0]
    annotation.insert(3, f"8;{truncated[5:]};{names[7]}")
    illustrations = [(3, "ill_03_a.png"), (3, "ill_03_b.png"), (59, "ill_59_a.png")]
    with zipfile.ZipFile(folder / "interact_stand-alone_dataset_annotations.zip", "w") as zf:
        zf.writestr("interact_final_dataset_labels_and_images.txt", "\n".join(annotation) + "\n")
    with zipfile.ZipFile(folder / "interact_illustration_category_dataset_annotations.zip", "w") as zf:
        zf.writestr("interact_illustration_category_dataset_labels_and_images.txt",
                    "".join(f"{label + 1};{fname};{names[label]}\n" for label, fname in illustrations))
    with zipfile.ZipFile(folder / "interact_stand-alone_dataset_images.zip", "w") as zf:
        for paths in by_class.values():
            for path in paths:
                zf.writestr(path, image_bytes("JPEG", size=(10, 8)))
        zf.writestr(truncated, image_bytes("JPEG", size=(10, 8)))
        zf.writestr("imgs/unlisted.jpg", image_bytes("JPEG", size=(10, 8)))
    with zipfile.ZipFile(folder / "interact_illustration_category_dataset_images.zip", "w") as zf:
        for _, fname in illustrations:
            zf.writestr(f"imgs/{fname}", image_bytes("PNG", size=(10, 8)))
    # the reference's rule, written out with np.split: per class in first-appearance order, one shared rng
    rng = np.random.default_rng(1)
    split_of = {}
    for paths in by_class.values():
        sizes = (len(paths) * np.array([0.8 * 0.7, 0.8 * 0.15, 0.8 * 0.15])).astype(np.int32)
        assert np.allclose(RATIOS, [0.56, 0.12, 0.12])
        parts = np.split(rng.permutation(len(paths)), np.cumsum(sizes))
        for split, indices in zip(("train", "dev", "dev_test", "test"), parts):
            for i in indices:
                split_of[paths[i]] = split
    expected = Expected(class_names=[names[k] for k in range(60)])
    label_of = {p: label for label, paths in by_class.items() for p in paths}
    for path in sorted(split_of):
        expected.add(f"interact_stand-alone_dataset_images.zip:{path}", label_of[path], split=split_of[path])
    for label, fname in sorted(illustrations, key=lambda x: x[1]):
        expected.add(f"interact_illustration_category_dataset_images.zip:imgs/{fname}", label, split="train")
    return expected


def write_voc_actions(folder: pathlib.Path) -> Expected:
    from nevis_bench.data.handlers.voc_actions import ACTIONS

    expected = Expected(random={"all": ALL}, class_names=ACTIONS)
    expected.sizes = {}
    root = "VOCdevkit/VOC2012"
    images = {  # image id -> objects: (name, box, positive actions or None for no <actions>)
        "2011_000005": [("person", (10, 5, 30, 40), ["reading", "other"]), ("chair", (0, 0, 5, 5), None),
                        ("person", (1.0, 2.0, 21.7, 22.2), ["phoning"])],
        "2010_000002": [("person", (3, 4, 33, 44), ["jumping"])],
        "2012_000100": [("person", (0, 0, 48, 40), ["walking", "running"]), ("person", (5, 6, 25, 26), []),
                        ("person", (7, 7, 40, 30), ["usingcomputer"])],
        "2010_000300": [("person", (2, 2, 12, 12), ["ridinghorse"])],
        "2011_000999": [("person", (2, 2, 12, 12), ["takingphoto"])],  # listed, but no annotation file
        "2012_000200": [("person", (1, 1, 30, 30), ["playinginstrument"]), ("person", (2, 3, 20, 30), ["reading", "phoning"])],
        "2012_000201": [("person", (4, 4, 44, 40), ["ridingbike"]), ("bicycle", (0, 0, 9, 9), None)],
    }
    with tarfile.open(folder / "VOCtrainval_11-May-2012.tar", "w") as tar:
        add_tar_dir(tar, "VOCdevkit")
        written = ("2012_000100", "2010_000002", "2012_000201", "2011_000005", "2010_000300", "2011_000999", "2012_000200",
                   "2009_000001")
        for image_id in written:
            add_tar_member(tar, f"{root}/JPEGImages/{image_id}.jpg", image_bytes("JPEG", size=(50, 45)))
        for image_id, objects in images.items():
            if image_id == "2011_000999":
                continue
            parts = []
            for name, box, actions in objects:
                action_xml = "" if actions is None else "<actions>" + "".join(
                    f"<{a}>{1 if a in actions else 0}</{a}>" for a in ACTIONS) + "</actions>"
                coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
                parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><bndbox>{coords}</bndbox>{action_xml}</object>")
            xml = f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>{''.join(parts)}</annotation>"
            add_tar_member(tar, f"{root}/Annotations/{image_id}.xml", xml.encode())
        add_tar_member(tar, f"{root}/Annotations/2009_000001.xml", b"<annotation><object><name>dog</name></object></annotation>")
        for action in ACTIONS[:-1]:
            rows = [f"{image_id}  {k} {' 1' if action in actions else '-1'}\n"
                    for image_id, objects in sorted(images.items())
                    for k, actions in enumerate((o[2] for o in objects if o[2] is not None), start=1)]
            add_tar_member(tar, f"{root}/ImageSets/Action/{action}_trainval.txt", "".join(rows).encode())
            add_tar_member(tar, f"{root}/ImageSets/Action/{action}_train.txt", b"2009_000001 1 1\n")
        add_tar_member(tar, f"{root}/ImageSets/Main/train.txt", b"2009_000001\n")
    for image_id in sorted(images):
        if image_id == "2011_000999":
            continue
        k = 0
        for _, box, actions in images[image_id]:
            if actions is None:
                continue
            k += 1
            example_id = f"VOCtrainval_11-May-2012.tar:{root}/JPEGImages/{image_id}.jpg#{k}"
            expected.add(example_id, sorted(ACTIONS.index(a) for a in actions), group="all")
            x0, y0, x1, y1 = (int(float(v)) for v in box)
            expected.sizes[example_id] = (x1 - x0, y1 - y0)
    return expected


# ---- characters, faces, attributes ---------------------------------------------------------------------


def _lists_mat(all_names: list[str], test_indices: list[int]) -> bytes:
    width = max(map(len, all_names))
    assert all(len(n) == width for n in all_names)  # MATLAB char matrix rows
    record = {"ALLnames": np.array(all_names), "is_good": np.ones((len(all_names), 1)), "ALLlabels": np.ones((len(all_names), 1)),
              "TSTind": np.array([[i, i] for i in test_indices], dtype=np.float64), "TRNind": np.ones((1, 2))}
    return mat_bytes({"list": record})


def write_chars74k(folder: pathlib.Path) -> Expected:
    expected = Expected(random={"all": ALL})
    from nevis_bench.data.handlers.chars74k import CLASS_NAMES

    expected.class_names = CLASS_NAMES
    same = image_bytes("PNG", size=(12, 12), mode="L", seed=99)
    same_rgb = image_bytes("PNG", size=(12, 12), mode="RGB", seed=98)
    layout = {  # category -> (archive, [(member, sample number, test, bytes)])
        "Img": ("EnglishImg.tgz", [
            ("English/Img/GoodImg/Bmp/Sample001/img001-00001.png", 1, False, same_rgb),
            ("English/Img/GoodImg/Bmp/Sample001/img001-00002.png", 1, True, None),
            ("English/Img/GoodImg/Bmp/Sample037/img037-00001.png", 37, False, None),
            ("English/Img/BadImag/Bmp/Sample037/img037-00003.png", 37, False, same_rgb),  # same pixels, other class: kept
            ("English/Img/GoodImg/Bmp/Sample062/img062-00001.png", 62, True, None),
        ]),
        "Hnd": ("EnglishHnd.tgz", [
            ("English/Hnd/Img/Sample011/img011-001.png", 11, False, None),
            ("English/Hnd/Img/Sample011/img011-002.png", 11, True, None),
            ("English/Hnd/Img/Sample002/img002-001.png", 2, False, None),
        ]),
        "Fnt": ("EnglishFnt.tgz", [
            ("English/Fnt/Sample005/img005-00001.png", 5, False, same),
            ("English/Fnt/Sample005/img005-00002.png", 5, False, same),  # duplicate: dropped
            ("English/Fnt/Sample005/img005-00003.png", 5, True, same),  # duplicate of a train-list image: dropped
            ("English/Fnt/Sample036/img036-00001.png", 36, True, None),
            ("English/Fnt/Sample036/img036-00002.png", 36, False, None),
        ]),
    }
    with tarfile.open(folder / "Lists.tgz", "w:gz") as tar:
        for category, (_, members) in layout.items():
            prefix = f"English/{category}/"
            names = [m[len(prefix):-4] for m, _, _, _ in members]
            tests = [k + 1 for k, (_, _, test, _) in enumerate(members) if test]
            if category == "Img":  # a var_size list read first, then lists.mat (the last one read counts)
                add_tar_member(tar, f"{prefix}lists_var_size.mat", _lists_mat(names, [1]))
            add_tar_member(tar, f"{prefix}lists.mat", _lists_mat(names, tests))
        add_tar_member(tar, "Kannada/Hnd/lists.mat", _lists_mat(["x"], [1]))
    for category, (archive, members) in layout.items():
        with tarfile.open(folder / archive, "w:gz") as tar:
            add_tar_dir(tar, "English")
            for member, _, _, data in members:
                mode = "L" if category == "Fnt" else "RGB"
                add_tar_member(tar, member, data or image_bytes("PNG", size=(12, 12), mode=mode))
            if category == "Img":
                add_tar_member(tar, "English/Img/GoodImg/Msk/Sample001/img001-00001.png", image_bytes("PNG", size=(12, 12), mode="L"))
            if category == "Hnd":
                add_tar_member(tar, "English/Hnd/Trj/Sample011/img011-001.txt", b"trajectory")
    dropped = {"English/Fnt/Sample005/img005-00002.png", "English/Fnt/Sample005/img005-00003.png"}
    for test in (False, True):
        for category in ("Img", "Hnd", "Fnt"):
            archive, members = layout[category]
            for member, sample, is_test, _ in members:
                if is_test == test and member not in dropped:
                    expected.add(f"{archive}:{member}", sample - 1, group="all")
    expected.duplicates = 2
    return expected


def write_lfwa(folder: pathlib.Path) -> Expected:
    people = [("Zico", 5), ("Aaron_Peirsol", 7), ("Bill_Gates", 4)]  # entry order, not sorted; Bill_Gates dropped
    expected = Expected(class_names=["Zico", "Aaron_Peirsol"])
    with zipfile.ZipFile(folder / "lfwa.zip", "w") as zf:
        zf.writestr("lfw2/", b"")
        for person, count in people:
            zf.writestr(f"lfw2/{person}/", b"")
            for i in reversed(range(count)):  # entry order decides the split, not the file number
                zf.writestr(f"lfw2/{person}/{person}_{i + 1:04d}.jpg", image_bytes("JPEG", size=(25, 25), mode="L"))
            zf.writestr(f"lfw2/{person}/Thumbs.db", b"thumbs")
        for label, (person, count) in enumerate(people[:2]):
            for position, i in enumerate(reversed(range(count))):
                split = ("test" if position >= count - 2 else "dev_test" if position == count - 3
                         else "dev" if position == count - 4 else "train")
                expected.add(f"lfwa.zip:lfw2/{person}/{person}_{i + 1:04d}.jpg", label, split=split)
    return expected


def write_sun_attributes(folder: pathlib.Path) -> Expected:
    rng = np.random.default_rng(3)
    names = [f"{s[0]}/{s}/sun_{s[:3]}{k:03d}.jpg" for s in ("abbey", "beach", "kitchen") for k in range(5)]
    votes = rng.choice([0.0, 0.0, 0.0, 1 / 3, 2 / 3, 1.0], size=(len(names), 102))
    votes[4, :] = 0.0  # no attribute at all: an example without labels
    cells = np.empty((len(names), 1), dtype=object)
    for k, name in enumerate(names):
        cells[k, 0] = name
    attributes = np.empty((102, 1), dtype=object)
    for k in range(102):
        attributes[k, 0] = f"attr {k}"
    with tarfile.open(folder / "SUNAttributeDB.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "SUNAttributeDB")
        add_tar_member(tar, "SUNAttributeDB/images.mat", mat_bytes({"images": cells}))
        add_tar_member(tar, "SUNAttributeDB/attributeLabels_continuous.mat", mat_bytes({"labels_cv": votes}))
        add_tar_member(tar, "SUNAttributeDB/attributes.mat", mat_bytes({"attributes": attributes}))
        add_tar_member(tar, "SUNAttributeDB/README.txt", b"sun")
    expected = Expected(random={"all": ALL}, class_names=[f"attr {k}" for k in range(102)])
    order = list(range(len(names)))
    order = order[7:] + order[:7]  # archive order differs from the list order
    with tarfile.open(folder / "SUNAttributeDB_Images.tar.gz", "w:gz") as tar:
        add_tar_dir(tar, "images")
        for k in order:
            add_tar_member(tar, f"images/{names[k]}", image_bytes("JPEG", size=(16, 12)))
            expected.add(f"SUNAttributeDB_Images.tar.gz:images/{names[k]}", np.flatnonzero(votes[k]).tolist(), group="all")
        add_tar_member(tar, "images/z/zoo/sun_unlisted.jpg", image_bytes("JPEG", size=(16, 12)))
    return expected


WRITERS = {
    "umd": write_umd,
    "kth_tips": write_kth_tips,
    "kth_tips_2a": write_kth_tips_2a,
    "kth_tips_2b": write_kth_tips_2b,
    "uiuc_texture": write_uiuc_texture,
    "cvc_muscima": write_cvc_muscima,
    "iaprtc12": write_iaprtc12,
    "wiki_paintings_style": write_wiki_paintings_style,
    "mit_scenes": write_mit_scenes,
    "coco_single_label": write_coco_single_label,
    "animal": write_animal,
    "silhouettes_28": write_silhouettes_28,
    "interact": write_interact,
    "voc_actions": write_voc_actions,
    "chars74k": write_chars74k,
    "lfwa": write_lfwa,
    "sun_attributes": write_sun_attributes,
}
