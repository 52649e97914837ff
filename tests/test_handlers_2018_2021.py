"""Handlers of the 2018-2021 NEVIS datasets (issue 17), on small archives in the publishers' layouts.

The archives are written by ``tests/archives_2018_2021.py``; each test prepares one with
``write_prepared`` and checks ids, labels, class names and split membership against the reference's
rule (random draws recomputed one at a time with ``np.random.RandomState(0).multinomial``).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tests import archives_2018_2021 as archives
from tests import handler_checks
from nevis_bench.data.catalog import DATASETS
from nevis_bench.data.handlers import HANDLERS
from nevis_bench.data.prepared import PreparedSource, write_prepared

WRITERS = {name[len("write_"):]: getattr(archives, name) for name in dir(archives) if name.startswith("write_") and name[len("write_"):] in HANDLERS}
prepare = functools.partial(handler_checks.prepare, WRITERS)  # (name, tmp_path) -> (expected, dataset)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_handler_converts_original_archive(name, tmp_path):
    expected, dataset = prepare(name, tmp_path)
    handler_checks.check_prepared(name, expected, dataset, tmp_path / "data", normalise_labels=True)


def test_every_group_dataset_has_a_handler_and_a_test():
    group = {
        "tid2008", "tid2013", "semeion", "caltech_camera_traps", "casia_hwdb", "trancos", "mall", "not_mnist",
        "tiny_imagenet", "food101", "mnist_rotation", "awa2", "food101n", "shanghai_tech", "animal_web", "biwi",
        "pneumonia_chest_xray", "path_mnist", "nih_chest_xray", "tubercolosis", "covid_19_xray", "ddsm",
        "synthetic_covid19_xray",
    }
    assert group <= set(HANDLERS)
    assert group <= set(WRITERS)
    for name in group:
        handler = HANDLERS[name]
        assert DATASETS[handler.dataset_key].source == f"nevis:{name}"
        assert all(a.url for a in handler.artefacts) or handler.manual_step, name


# ----------------------------------------------------------------------------------------------------
# Dataset-specific checks


def test_semeion_pixels_and_label(tmp_path):
    from nevis_bench.data.handlers.semeion import parse_line

    values = ["1.0000" if k in (0, 17, 255) else "0.0000" for k in range(256)]
    pixels, label = parse_line(" ".join(values) + " 0 0 0 0 0 0 0 1 0 0\n", "x")
    assert label == 7 and pixels.dtype == np.uint8 and pixels.shape == (16, 16)
    assert pixels[0, 0] == 255 and pixels[1, 1] == 255 and pixels[15, 15] == 255 and pixels.sum() == 3 * 255


def test_not_mnist_drops_duplicates(tmp_path):
    _, dataset = prepare("not_mnist", tmp_path)
    assert dataset.metadata["notes"]["duplicates_removed"] == 1


def test_mnist_rotation_rotates_training_digits_only(tmp_path):
    import gzip

    import scipy.ndimage

    _, dataset = prepare("mnist_rotation", tmp_path)
    source = tmp_path / "originals"
    with gzip.open(source / "train-images-idx3-ubyte.gz") as handle:
        train = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(source / "t10k-images-idx3-ubyte.gz") as handle:
        test = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    angles = np.random.RandomState(99_999)
    wanted = {f"train-images-idx3-ubyte.gz:{i}": scipy.ndimage.rotate(image, angles.randint(0, 360), reshape=False) for i, image in enumerate(train)}
    wanted.update({f"t10k-images-idx3-ubyte.gz:{i}": image for i, image in enumerate(test)})
    source_images = PreparedSource("mnist_rotation", "mnist_rot", data_dir=str(tmp_path / "data")).build(28)
    for split, (images, _, ids) in source_images.items():
        for image, example_id in zip(images, ids):
            assert np.array_equal(image[:, :, 0], wanted[example_id]), example_id


def test_covid_19_xray_labels_and_duplicates(tmp_path):
    from nevis_bench.data.handlers.covid_19_xray import label_of

    assert label_of("COVID-19_Radiography_Dataset/Viral Pneumonia/Viral Pneumonia-1.png") == 3
    assert label_of("COVID-19_Radiography_Dataset/Lung_Opacity/images/Lung_Opacity-1.png") == 1  # later layout
    assert label_of("COVID-19_Radiography_Dataset/Lung_Opacity/masks/Lung_Opacity-1.png") is None
    assert label_of("COVID-19_Radiography_Dataset/COVID.metadata.xlsx") is None
    _, dataset = prepare("covid_19_xray", tmp_path)
    assert dataset.metadata["notes"]["duplicates_removed"] == 1 and dataset.metadata["num_classes"] == 4


def test_path_mnist_pixels(tmp_path):
    _, dataset = prepare("path_mnist", tmp_path)
    import csv
    import zipfile

    with zipfile.ZipFile(tmp_path / "originals" / "colorectal-histology-mnist.zip") as zf:
        rows = list(csv.reader(zf.read("hmnist_28_28_RGB.csv").decode().splitlines()))[1:]
    built = PreparedSource("path_mnist", "path_mnist", data_dir=str(tmp_path / "data")).build(28)
    for images, _, ids in built.values():
        for image, example_id in zip(images, ids):
            row = int(example_id.rsplit(" ", 1)[1])
            assert np.array_equal(image, np.array(rows[row][:-1], dtype=np.uint8).reshape(28, 28, 3))


def test_synthetic_covid19_rejects_other_folders(tmp_path):
    from nevis_bench.data.handlers import HandlerError

    archives.write_synthetic_covid19_xray(tmp_path)
    archives.write_zip(tmp_path / "G_NC.zip", [("G3/0000.png", archives.rgb_bytes(1))])
    with pytest.raises(HandlerError, match="G1/ or G2/"):
        write_prepared(HANDLERS["synthetic_covid19_xray"], [tmp_path], tmp_path / "data", progress=False)


def test_biwi_angles_and_bin_edges():
    from nevis_bench.data.handlers.biwi import bin_edges, bin_of, labels_of, yaw_pitch_roll

    assert np.allclose(yaw_pitch_roll(archives.rotation(-50, 20, 7.5)), [-50, 20, 7.5])
    assert np.allclose(yaw_pitch_roll(np.eye(3)), [0, 0, 0])
    with pytest.raises(ValueError, match="orthogonal"):
        yaw_pitch_roll(np.eye(3) * 1.01)
    values = np.arange(10.0)  # 10 poses: edges at positions 0, 2, 4, 6, 8, 10 (clamped to 9)
    edges = bin_edges(values)
    assert np.allclose(edges, [0, 2, 4, 6, 8, 9])
    assert [bin_of(v, edges) for v in values] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # 9.0 = top edge: last bin
    assert bin_of(1.999, edges) == 0 and bin_of(2.0, edges) == 1  # an edge opens the next bin
    angles = {f"f{i}": [float(i), 10.0 - i, 5.0] for i in range(10)}
    labels = labels_of(angles)
    assert labels["f0"] == [0, 5 + 4, 10 + 4] and labels["f9"] == [4, 5 + 0, 10 + 4]  # equal values: top edge


def test_casia_records_and_class_order(tmp_path):
    from nevis_bench.data.handlers import HandlerError
    from nevis_bench.data.handlers.casia_hwdb import records

    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = archives.gnt_record("中".encode("gb2312"), pixels) + archives.gnt_record(b"\xa3\xa1", pixels.T)
    parsed = list(records(data, "x"))
    assert [t for t, _ in parsed] == ["中".encode("gb2312"), b"\xa3\xa1"]
    assert np.array_equal(parsed[0][1], pixels) and np.array_equal(parsed[1][1], pixels.T)
    with pytest.raises(HandlerError, match="bad record"):
        list(records(data[:-1], "x"))
    _, dataset = prepare("casia_hwdb", tmp_path)
    assert dataset.metadata["class_names"] == ["！", "啊", "中", "齄"]
    built = PreparedSource("casia_hwdb", "casia_hwdb1_1", data_dir=str(tmp_path / "data"))
    assert built.availability().available


def test_awa2_shrinks_large_images():
    from PIL import Image

    from nevis_bench.data.handlers.awa2 import resized

    assert resized(Image.new("RGB", (300, 40))).size == (256, 34)
    assert resized(Image.new("RGB", (100, 700))).size == (36, 256)
    small = Image.new("RGB", (256, 10))
    assert resized(small) is small


def test_count_bins_follow_the_reference_cuts():
    from nevis_bench.data.handlers import HandlerError
    from nevis_bench.data.handlers._counting import count_bins, label_of_count

    # 100 images, counts 0..99 once each, max_size 100: cut k = last count with cumsum < 10k = 10k - 2,
    # so class 0 holds counts 0..8 and class k (1..8) holds 10k - 1 .. 10k + 8; class 9 holds 89..99.
    labels, names = count_bins(list(range(100)), 100, "t")
    assert [labels[c] for c in (0, 8, 9, 18, 19, 88, 89, 99)] == [0, 0, 1, 1, 2, 8, 9, 9]
    assert names[0] == "0-8" and names[1] == "9-18" and names[8] == "79-88" and names[9] == "89+"
    # equal groups of 10 distinct values: each value opens the next class (class 0 stays empty)
    labels, _ = count_bins([v for v in range(20, 50, 3) for _ in range(5)], 100, "t")
    assert [labels[v] for v in range(20, 50, 3)] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9] and labels[19] == 0
    # coinciding cuts (cuts 1-5 all at 49): the class moves up at most once per count, so counts
    # 50, 51, 52, 53 take classes 1-4 and class 5 runs from 54 to the next cut, 59
    labels, _ = count_bins([0] * 5 + [50] * 45 + list(range(51, 101)), 100, "t")
    assert [labels[c] for c in (49, 50, 51, 53, 54, 59, 60, 89, 90)] == [0, 1, 2, 4, 5, 5, 6, 8, 9]
    assert label_of_count(labels, 250) == labels[99]  # beyond the table: last cell
    with pytest.raises(HandlerError, match="bins"):
        count_bins([0] * 11 + [1] * 89, 100, "t")  # over a tenth at the lowest count: no first cut
    with pytest.raises(HandlerError, match="bins"):
        count_bins([0] * 5 + [1] * 95, 5, "t")  # the walk runs out of counts before class 9


def test_trancos_counts_lines_like_readlines():
    from nevis_bench.data.handlers.trancos import line_count

    assert [line_count(b""), line_count(b"1 2\n"), line_count(b"1 2\n3 4"), line_count(b"1 2\n\n")] == [0, 1, 2, 2]


def test_shanghai_tech_image_of_annotation():
    from nevis_bench.data.handlers.shanghai_tech import head_count, image_of

    assert image_of("ShanghaiTech/part_A/train_data/ground-truth/GT_IMG_12.mat") == "ShanghaiTech/part_A/train_data/images/IMG_12.jpg"
    assert head_count(archives.head_mat(17), "x") == 17


def test_rar_reader_checks_and_needs_a_tool_for_compressed_entries(tmp_path, monkeypatch):
    from nevis_bench.data.handlers import HandlerError
    from nevis_bench.data.handlers import _rar

    archives.write_rar(tmp_path / "a.rar", [("d/", b""), ("d/x.txt", b"hello"), ("y.bin", b"\x00\x01")])
    with _rar.rar_archive(tmp_path / "a.rar", "t") as members:
        assert [(n, read()) for n, read in members] == [("d/x.txt", b"hello"), ("y.bin", b"\x00\x01")]
    damaged = bytearray((tmp_path / "a.rar").read_bytes())
    damaged[damaged.index(b"hello")] ^= 1
    (tmp_path / "b.rar").write_bytes(bytes(damaged))
    with pytest.raises(HandlerError, match="CRC"), _rar.rar_archive(tmp_path / "b.rar", "t") as members:
        [read() for _, read in members]
    archives.write_rar(tmp_path / "c.rar", [("x.txt", b"hello")], method=0x33)  # "compressed"
    monkeypatch.setattr(_rar.shutil, "which", lambda tool: None)
    with pytest.raises(HandlerError, match="unrar, 7z or bsdtar"), _rar.rar_archive(tmp_path / "c.rar", "t"):
        pass
    (tmp_path / "d.rar").write_bytes(b"PK\x03\x04not a rar")
    with pytest.raises(HandlerError, match="not a RAR"), _rar.rar_archive(tmp_path / "d.rar", "t"):
        pass


def test_tid_quality_bins_and_ties():
    from nevis_bench.data.handlers._tid import bin_of, image_names, quality_bins

    assert len(image_names(2008)) == 1700 and len(image_names(2013)) == 3000
    assert image_names(2008)[:2] == ["i01_01_1.bmp", "i01_01_2.bmp"] and image_names(2008)[4] == "i01_02_1.bmp"
    values = [0.1, 0.2, 0.3, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]  # 11 values, groups of 2, one left over
    ordered, size = quality_bins(values)
    assert size == 2
    assert [bin_of(v, ordered, size) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9)] == [0, 0, 1, 2, 2, 3, 4]
    assert bin_of(0.95, ordered, size) is None  # only in the remainder: the reference gives it no class
    ordered, size = quality_bins([0.1, 0.2, 0.2, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert bin_of(0.2, ordered, size) == 0  # a value across a cut takes the first group holding it


def test_rar_compressed_entries_go_through_the_unpacking_tool(tmp_path, monkeypatch):
    import sys

    from nevis_bench.data.handlers import _rar

    archives.write_rar(tmp_path / "c.rar", [("b/y.txt", b"world"), ("a.txt", b"hello")], method=0x33)
    # a stand-in for unrar: writes the members (stored bytes in this test archive) into the target folder
    script = (
        "import sys, pathlib, struct\n"
        "data = pathlib.Path(sys.argv[1]).read_bytes(); target = pathlib.Path(sys.argv[2]); offset = 7\n"
        "while offset + 7 <= len(data):\n"
        "    crc, kind, flags, size = struct.unpack_from('<HBHH', data, offset)\n"
        "    extra = struct.unpack_from('<I', data, offset + 7)[0] if flags & 0x8000 else 0\n"
        "    if kind == 0x74:\n"
        "        n = struct.unpack_from('<H', data, offset + 7 + 19)[0]\n"
        "        name = data[offset + 32: offset + 32 + n].decode().replace(chr(92), '/')\n"
        "        (target / name).parent.mkdir(parents=True, exist_ok=True)\n"
        "        (target / name).write_bytes(data[offset + size: offset + size + extra])\n"
        "    offset += size + extra\n"
    )
    monkeypatch.setattr(_rar, "_tool_command", lambda archive, target: [sys.executable, "-c", script, str(archive), str(target)])
    with _rar.rar_archive(tmp_path / "c.rar", "t") as members:
        assert [(n, read()) for n, read in members] == [("a.txt", b"hello"), ("b/y.txt", b"world")]


def test_animal_web_drops_duplicates_and_unknown_species(tmp_path):
    from nevis_bench.data.handlers import HandlerError
    from nevis_bench.data.handlers.animal_web import CLASS_NAMES, label_of

    _, dataset = prepare("animal_web", tmp_path)
    assert dataset.metadata["notes"]["duplicates_removed"] == 1 and len(CLASS_NAMES) == 352
    assert label_of("saluki_12.jpg") == 0 and label_of("urial_3.jpg") == 351
    with pytest.raises(HandlerError, match="dragon"):
        label_of("dragon_1.jpg")
