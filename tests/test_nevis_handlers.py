"""Handlers and the prepared format, on small archives in the original layout (tests/nevis_archives.py)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.handler_checks import check_prepared, prepare
from tests.nevis_archives import WRITERS, write_sketch, write_usps
from nevis_bench.data.handlers import HANDLERS, Artefact, CorruptImageError, Handler, HandlerError
from nevis_bench.data.handlers._util import ALL_DATA, CategoricalSplitter
from nevis_bench.data.handlers.usps import parse_line
from nevis_bench.data.prepared import (
    PreparedDataset, PreparedError, PreparedSource, check_md5, download_artefacts, md5_file, write_prepared,
)
from nevis_bench.data.catalog import DATASETS


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_handler_converts_original_archive(name, tmp_path):
    expected, dataset = prepare(WRITERS, name, tmp_path)
    check_prepared(name, expected, dataset, tmp_path / "data")


def test_handlers_are_registered_with_their_facts():
    assert set(WRITERS) <= set(HANDLERS)
    for handler in HANDLERS.values():
        assert handler.artefacts and handler.split_rule
        assert DATASETS[handler.dataset_key].source == f"nevis:{handler.name}"


def test_same_archive_gives_same_manifest(tmp_path):
    source_dir = tmp_path / "originals"
    source_dir.mkdir()
    write_sketch(source_dir)
    first = write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "a", progress=False)
    second = write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "b", progress=False)
    assert (first.path / "splits.json").read_bytes() == (second.path / "splits.json").read_bytes()
    with pytest.raises(PreparedError, match="--force"):
        write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "a", progress=False)
    write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "a", force=True, progress=False)


def test_originals_may_sit_in_a_named_subfolder(tmp_path):
    (tmp_path / "all" / "sketch").mkdir(parents=True)
    write_sketch(tmp_path / "all" / "sketch")
    assert write_prepared(HANDLERS["sketch"], [tmp_path / "all"], tmp_path / "data", progress=False).ready


def test_corrupt_image_is_named_or_skipped(tmp_path):
    source_dir = tmp_path / "originals"
    source_dir.mkdir()
    write_sketch(source_dir, corrupt=True)
    with pytest.raises(CorruptImageError, match=r"sketches_png\.zip:png/zebra/broken\.png"):
        write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "data", progress=False)
    assert not PreparedDataset(tmp_path / "data" / "prepared" / "sketch").ready
    assert not list((tmp_path / "data" / "prepared").glob(".sketch.staging-*"))  # staging cleaned up
    dataset = write_prepared(HANDLERS["sketch"], [source_dir], tmp_path / "data", skip_corrupt=True, progress=False)
    assert dataset.metadata["skipped_corrupt"] == ["sketches_png.zip:png/zebra/broken.png"]
    assert sum(dataset.metadata["counts"].values()) == 12


def test_missing_files_are_listed_with_urls(tmp_path):
    with pytest.raises(HandlerError) as info:
        write_prepared(HANDLERS["melanoma"], [tmp_path], tmp_path / "data", progress=False)
    message = str(info.value)
    assert "6 original file(s) not found" in message
    assert "ISIC-2017_Test_v2_Part3_GroundTruth.csv" in message
    assert "https://isic-challenge-data.s3.amazonaws.com/2017/ISIC-2017_Training_Data.zip" in message


def test_verify_detects_changes(tmp_path):
    source_dir = tmp_path / "originals"
    source_dir.mkdir()
    write_usps(source_dir)
    dataset = write_prepared(HANDLERS["usps"], [source_dir], tmp_path / "data", progress=False)
    assert dataset.verify() == []
    shard = dataset.path / dataset.manifest["splits"]["test"]["shards"][0]["file"]
    arrays = dict(np.load(shard))
    arrays["png"] = arrays["png"].copy()
    arrays["labels"] = (arrays["labels"] + 1) % 10
    np.savez(shard, **arrays)
    problems = dataset.verify()
    assert any("test: shard" in p and "content hash" in p for p in problems)
    assert any("test: labels differ" in p for p in problems)
    (dataset.path / "status").write_text("not_ready\n")
    assert not PreparedSource("usps", "usps", data_dir=str(tmp_path / "data")).availability().available


def test_prepared_source_fingerprint_follows_the_manifest(tmp_path):
    source = PreparedSource("usps", "usps", data_dir=str(tmp_path / "data"))
    absent = source.fingerprint(32)
    (tmp_path / "o").mkdir()
    write_usps(tmp_path / "o")
    write_prepared(HANDLERS["usps"], [tmp_path / "o"], tmp_path / "data", progress=False)
    present = source.fingerprint(32)
    assert present != absent and present != source.fingerprint(64)
    metadata = json.loads((tmp_path / "data" / "prepared" / "usps" / "metadata.json").read_text())
    assert metadata["splits_sha256"] in present


def test_usps_parses_sparse_libsvm_lines():
    pixels, label = parse_line("3 1:-1 2:1 256:0.5\n", "x")
    assert label == 2 and pixels.shape == (16, 16) and pixels.dtype == np.uint8
    assert pixels[0, 0] == 0 and pixels[0, 1] == 255 and pixels[0, 2] == 127 and pixels[15, 15] == 191
    with pytest.raises(HandlerError, match="out of range"):
        parse_line("11 1:0", "x")


def test_splitter_chunks_match_one_draw_at_a_time():
    splitter = CategoricalSplitter(ALL_DATA, chunk=7)
    state = np.random.RandomState(0)
    names = [name for name, _ in ALL_DATA]
    one_by_one = [names[np.argmax(state.multinomial(1, [f for _, f in ALL_DATA]))] for _ in range(100)]
    assert splitter.assign(100) == one_by_one
    counts = {n: 0 for n in names}
    for name in CategoricalSplitter(ALL_DATA).assign(20000):
        counts[name] += 1
    assert abs(counts["train"] / 20000 - 0.56) < 0.02 and abs(counts["test"] / 20000 - 0.20) < 0.02


def test_md5_and_offline_download(tmp_path):
    original = tmp_path / "remote" / "data.bin"
    original.parent.mkdir()
    original.write_bytes(b"nevis" * 100)
    digest = md5_file(original)
    assert digest == hashlib.md5(b"nevis" * 100).hexdigest()

    def handler_with(url, md5):
        return Handler("fake", "usps", (Artefact("data.bin", url, md5),), convert=lambda ctx: None, split_rule="-")

    target = download_artefacts(handler_with(original.as_uri(), digest), tmp_path / "downloads")
    assert (target / "data.bin").read_bytes() == original.read_bytes()
    with pytest.raises(HandlerError, match="checksum mismatch"):
        download_artefacts(handler_with(original.as_uri(), "0" * 32), tmp_path / "other")
    assert not (tmp_path / "other" / "data.bin").exists() and not (tmp_path / "other" / "data.bin.part").exists()
    with pytest.raises(HandlerError, match="cannot download"):
        download_artefacts(handler_with((tmp_path / "absent.bin").as_uri(), None), tmp_path / "third")
    check_md5(original, digest, "data.bin")
    with pytest.raises(HandlerError, match="checksum mismatch"):
        check_md5(original, "1" * 32, "data.bin")
    assert not original.exists()  # a bad download is removed
    with pytest.raises(HandlerError, match="cannot be downloaded automatically"):
        download_artefacts(HANDLERS["pacs"], tmp_path / "pacs")
