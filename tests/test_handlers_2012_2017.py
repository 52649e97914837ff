"""Handlers of the 2012-2017 NEVIS datasets (issue 16) on small archives in the publisher's layout."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image

from tests import handler_checks
from tests.archives_2012_2017 import WRITERS
from nevis_bench.data.handlers import HANDLERS
from nevis_bench.data.prepared import write_prepared

prepare = functools.partial(handler_checks.prepare, WRITERS)  # (name, tmp_path, handler=None, data="data")


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_handler_converts_publisher_archive(name, tmp_path, monkeypatch):
    monkeypatch.delenv("NEVIS_TEXTURE_CROPS", raising=False)
    expected, dataset = prepare(name, tmp_path)
    handler_checks.check_prepared(name, expected, dataset, tmp_path / "data")
    metadata, manifest = dataset.metadata, dataset.manifest
    images = {i: Image.open(io.BytesIO(png)) for split in manifest["splits"] for i, png, _ in dataset.examples(split)}
    for example_id, size in getattr(expected, "sizes", {}).items():  # crops and resizes
        assert images[example_id].size == size, example_id
    for example_id, pixels in getattr(expected, "pixels", {}).items():
        np.testing.assert_array_equal(np.asarray(images[example_id]), pixels)
    if hasattr(expected, "duplicates"):
        assert metadata["notes"]["duplicates_removed"] == expected.duplicates
    print(name, "classes", metadata["num_classes"], "counts", metadata["counts"])


def _stored(dataset) -> dict[str, tuple[str, np.ndarray]]:
    return {
        i: (split, np.asarray(Image.open(io.BytesIO(png))))
        for split in dataset.manifest["splits"] for i, png, _ in dataset.examples(split)
    }


@pytest.mark.parametrize("name, how", [("kth_tips", "env"), ("kth_tips_2b", "env"), ("uiuc_texture", "handler")])
def test_texture_crops_are_an_option(name, how, tmp_path, monkeypatch):
    """Whole images by default (the reference's effective data); 64x64 crops per split on request."""
    import importlib

    monkeypatch.delenv("NEVIS_TEXTURE_CROPS", raising=False)
    _, whole = prepare(name, tmp_path, data="whole")
    if how == "env":
        monkeypatch.setenv("NEVIS_TEXTURE_CROPS", "1")
        handler = HANDLERS[name]
    else:
        handler = importlib.import_module(f"nevis_bench.data.handlers.{name}").HANDLER_WITH_CROPS
    _, cropped = prepare(name, tmp_path, handler, data="crops")
    assert cropped.path.name == name  # the option replaces the dataset's images; it is not a second dataset
    assert whole.metadata["notes"]["preprocessing"].startswith("none")
    assert "64x64" in cropped.metadata["notes"]["preprocessing"]
    assert whole.manifest["splits"]["train"]["ids"] == cropped.manifest["splits"]["train"]["ids"]
    for split in ("train", "dev", "dev_test", "test"):
        assert whole.manifest["splits"][split]["labels"] == cropped.manifest["splits"][split]["labels"]
    full, crops = _stored(whole), _stored(cropped)
    rngs = {}
    for split in ("train", "dev", "dev_test", "test"):
        for example_id in whole.manifest["splits"][split]["ids"]:
            image = full[example_id][1]
            rng = rngs.setdefault(split, np.random.default_rng(0))
            left = rng.integers(0, image.shape[1] - 64)
            top = rng.integers(0, image.shape[0] - 64)
            np.testing.assert_array_equal(crops[example_id][1], image[top : top + 64, left : left + 64])
    assert {a.shape[:2] for _, a in crops.values()} == {(64, 64)}
    assert {a.shape[:2] for _, a in full.values()} != {(64, 64)}


def test_cropper_keeps_short_sides_whole():
    from nevis_bench.data.handlers._util import SplitCropper

    image = Image.fromarray(np.arange(50 * 100, dtype=np.uint32).reshape(50, 100).astype(np.uint8))
    assert SplitCropper()(image, "train").size == (64, 50)


@pytest.mark.parametrize("name, note, count", [
    ("wiki_paintings_style", "missing", 1), ("iaprtc12", "unlabelled", 1), ("voc_actions", "no_annotation", 1),
])
def test_skipped_rows_are_counted(name, note, count, tmp_path):
    _, dataset = prepare(name, tmp_path)
    assert dataset.metadata["notes"][note] == count


@pytest.mark.parametrize("name, page, filename", [
    ("mit_scenes", "kaggle.com/datasets/itsahmad/indoor-scenes-cvpr-2019", "indoor-scenes-cvpr-2019.zip"),
    ("iaprtc12", "kaggle.com/datasets/nastyatima/iapr-tc12", "iapr-tc12.zip"),
])
def test_login_datasets_name_their_page_and_file(name, page, filename, tmp_path):
    from nevis_bench.data.handlers import HandlerError

    handler = HANDLERS[name]
    assert not any(a.url for a in handler.artefacts)
    with pytest.raises(HandlerError) as info:
        write_prepared(handler, [tmp_path], tmp_path / "data", progress=False)
    assert page in str(info.value) and filename in str(info.value)


def test_download_urls_and_checksums_where_the_publisher_allows():
    for name in sorted(WRITERS):
        if name in ("mit_scenes", "iaprtc12"):
            continue
        assert all(a.url and len(a.md5 or "") == 32 for a in HANDLERS[name].artefacts), name


def test_interact_illustrations_only_in_train_and_every_class_present(tmp_path):
    expected, dataset = prepare("interact", tmp_path)
    ids = dataset.manifest["splits"]
    assert all("illustration" not in i for s in ("dev", "dev_test", "test") for i in ids[s]["ids"])
    assert len(set(ids["test"]["labels"])) == 60  # single-image classes land in test (int(0.56) == 0)
