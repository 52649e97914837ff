"""Handlers of the 2012-2017 NEVIS datasets (issue 16) on small archives in the publisher's layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.archives_2012_2017 import WRITERS
from nevis_bench.data.catalog import DATASETS
from nevis_bench.data.handlers import HANDLERS
from nevis_bench.data.prepared import write_prepared


def expected_splits(expected) -> dict[str, str]:
    """Fixed splits as given; random ones by the reference's draw, one example at a time per group."""
    states = {group: np.random.RandomState(0) for group in expected.random}
    out = {}
    for example_id, _ in expected.order:
        if example_id in expected.splits:
            out[example_id] = expected.splits[example_id]
        else:
            group = expected.groups[example_id]
            fractions = expected.random[group]
            out[example_id] = fractions[int(np.argmax(states[group].multinomial(1, [f for _, f in fractions])))][0]
    return out


def prepare(name, tmp_path, handler=None):
    source = tmp_path / "originals"
    source.mkdir(exist_ok=True)
    expected = WRITERS[name](source)
    dataset = write_prepared(handler or HANDLERS[name], [source], tmp_path / "data", progress=False, force=True)
    return expected, dataset


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_handler_converts_publisher_archive(name, tmp_path, monkeypatch):
    monkeypatch.delenv("NEVIS_TEXTURE_CROPS", raising=False)
    expected, dataset = prepare(name, tmp_path)
    handler = HANDLERS[name]
    facts = DATASETS[handler.dataset_key]
    assert facts.source == f"nevis:{name}" and dataset.ready and dataset.verify() == []
    metadata, manifest = dataset.metadata, dataset.manifest
    split_of = expected_splits(expected)
    labels = dict(expected.order)
    assert len(labels) == len(expected.order)
    for split in ("train", "dev", "dev_test", "test"):
        ids = [i for i, _ in expected.order if split_of[i] == split]
        assert manifest["splits"][split]["ids"] == ids, split
        assert manifest["splits"][split]["labels"] == [labels[i] for i in ids], split
    assert sum(metadata["counts"].values()) == len(expected.order)
    if expected.class_names is not None:
        assert metadata["class_names"] == expected.class_names
    assert metadata["dataset_key"] == facts.key and metadata["channels"] == facts.channels
    assert metadata["counts"]["train"] > 0
    images = {i: Image.open(io.BytesIO(png)) for split in manifest["splits"] for i, png, _ in dataset.examples(split)}
    for example_id, size in getattr(expected, "sizes", {}).items():  # crops and resizes
        assert images[example_id].size == size, example_id
    for example_id, pixels in getattr(expected, "pixels", {}).items():
        np.testing.assert_array_equal(np.asarray(images[example_id]), pixels)
    if hasattr(expected, "duplicates"):
        assert metadata["notes"]["duplicates_removed"] == expected.duplicates
    print(name, "classes", metadata["num_classes"], "counts", metadata["counts"])
