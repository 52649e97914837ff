"""The 1992-2011 NEVIS handlers (issue 15) on small archives in their publishers' layouts."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from tests.archives_1992_2011 import WRITERS, cmu_plan, lzw_compress, write_aberdeen, write_german_tsr, write_vistex
from tests.handler_checks import check_prepared, prepare
from nevis_bench.data.handlers import HANDLERS, HandlerError
from nevis_bench.data.prepared import write_prepared


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_handler_converts_original_archive(name, tmp_path):
    expected, dataset = prepare(WRITERS, name, tmp_path)
    check_prepared(name, expected, dataset, tmp_path / "data")


def test_every_handler_has_its_archive_writer_and_download_or_manual_step():
    for name in WRITERS:
        handler = HANDLERS[name]
        assert all(a.url and a.md5 for a in handler.artefacts) or (handler.manual_step and "kaggle" in handler.manual_step.lower())
    assert not HANDLERS["olivetti_face"].artefacts[0].url and not HANDLERS["extended_yaleb"].artefacts[0].url


def test_aberdeen_label_map_follows_the_reference_list():
    from nevis_bench.data.handlers.aberdeen import CLASS_NAMES, label_of

    assert len(CLASS_NAMES) == 92 and CLASS_NAMES[22] == "jsheenang"
    assert label_of("jsheenang1.jpg") == label_of("jsheenan3.jpg") == 83
    assert label_of("clean_adrian2.jpg") == label_of("adrian1.jpg") == 16
    assert label_of("dave_faquhar4.jpg") == 91 and label_of("kim1.jpg") == 90
    with pytest.raises(HandlerError, match="cannot tell the person"):
        label_of("nobody1.jpg")


def test_landsat_patch_is_the_first_three_bands_row_by_row():
    from nevis_bench.data.handlers.landsat import parse_row

    values = list(range(36))
    image, label = parse_row(" ".join(map(str, values)) + " 7", "x")
    pixels = np.asarray(image)
    assert label == 6 and pixels.shape == (3, 3, 3)
    assert pixels[0, 0].tolist() == [0, 1, 2] and pixels[0, 1].tolist() == [4, 5, 6] and pixels[2, 2].tolist() == [32, 33, 34]
    with pytest.raises(HandlerError):
        parse_row("1 2 3 4", "x")


def test_cmu_amp_expression_plan_has_the_reference_sizes():
    from nevis_bench.data.handlers.cmu_amp_expression import split_plan

    plan = split_plan()
    assert plan == cmu_plan() and len(plan) == 13 * 75
    for subject in "AM":
        counts = {s: sum(1 for k, v in plan.items() if k[0] == subject and v == s) for s in ("train", "dev", "dev_test", "test")}
        assert counts == {"train": 41, "dev": 9, "dev_test": 9, "test": 16}


def test_magellan_label_needs_a_confidence_one_volcano():
    from nevis_bench.data.handlers.magellan_venus_volcanoes import has_definite_volcano

    assert has_definite_volcano("3 1 2 3\n1 4 5 6\n") and not has_definite_volcano("2 1 2 3\n4 1 1 1\n")
    assert not has_definite_volcano("") and not has_definite_volcano("11 1 2 3\n")


def test_german_tsr_test_image_without_label_is_named(tmp_path):
    write_german_tsr(tmp_path)
    with zipfile.ZipFile(tmp_path / "GTSRB_Final_Test_GT.zip", "w") as zf:
        zf.writestr("GT-final_test.csv", "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000.ppm;1;1;0;0;1;1;16\n")
    with pytest.raises(HandlerError, match=r"00001\.ppm has no row"):
        write_prepared(HANDLERS["german_tsr"], [tmp_path], tmp_path / "data", progress=False)


def test_aberdeen_unknown_person_stops_the_conversion(tmp_path):
    write_aberdeen(tmp_path)
    with zipfile.ZipFile(tmp_path / "Aberdeen.zip", "a") as zf:
        zf.writestr("stranger1.jpg", b"x")
    with pytest.raises(HandlerError, match="stranger1.jpg"):
        write_prepared(HANDLERS["aberdeen"], [tmp_path], tmp_path / "data", progress=False)


@pytest.mark.parametrize("max_bits", [10, 12, 16])
def test_lzw_decoder_reads_compress_streams(max_bits):
    from nevis_bench.data.handlers.vistex import lzw_decompress

    rng = np.random.default_rng(max_bits)
    data = bytes(rng.integers(0, 7, size=60000, dtype=np.uint8)) + bytes(rng.integers(0, 256, size=40000, dtype=np.uint8))
    for payload in (b"", b"a", b"abababababababab", data):
        encoded = lzw_compress(payload, max_bits=max_bits)
        assert lzw_decompress(encoded) == payload
        if shutil.which("gzip") and payload:  # gzip reads .Z: the test's compressor writes the real format
            assert subprocess.run(["gzip", "-dc"], input=encoded, capture_output=True, check=True).stdout == payload
    with pytest.raises(ValueError, match="not a compress"):
        lzw_decompress(b"\x1f\x8b\x08")


def test_vistex_without_system_gzip_uses_the_python_decoder(tmp_path, monkeypatch):
    import nevis_bench.data.handlers.vistex as vistex

    monkeypatch.setattr(vistex.shutil, "which", lambda name: None)
    write_vistex(tmp_path)
    dataset = write_prepared(HANDLERS["vistex"], [tmp_path], tmp_path / "data", progress=False)
    assert dataset.metadata["class_names"] == ["Bark", "Brick", "Fabric", "WheresWaldo"]
    assert sum(dataset.metadata["counts"].values()) == 9


def test_vistex_dangling_link_is_named(tmp_path):
    import io
    import tarfile

    write_vistex(tmp_path)
    with tarfile.open(tmp_path / "VisTex.tar.gz", "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(tmp_path / "VisTex.tar.gz", "w:gz") as tar:
        for member, data in members:
            if member.name != "VisionTexture/VisTex.images.512.tar.Z":
                tar.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(HandlerError, match="links to VisTex/Images/FLAT/512x512"):
        write_prepared(HANDLERS["vistex"], [tmp_path], tmp_path / "data", progress=False)
