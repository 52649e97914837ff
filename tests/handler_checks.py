"""Checks shared by the handler tests (tests/test_nevis_handlers.py, tests/test_handlers_*.py).

An archive writer (tests/nevis_archives.py, tests/archives_*.py) returns an :class:`Expected`;
:func:`check_prepared` checks a dataset prepared from that archive against it: ids, labels and split
of every example (random draws recomputed one at a time by :func:`expected_split_of`), counts, class
names, the catalogue facts in ``metadata.json``, the manifest's integrity and a build of 8 x 8 images.
"""

from __future__ import annotations

import pathlib

import numpy as np

from nevis_bench.data.catalog import DATASETS
from nevis_bench.data.handlers import HANDLERS
from nevis_bench.data.prepared import PreparedSource, write_prepared

SPLITS = ("train", "dev", "dev_test", "test")


def expected_split_of(expected) -> dict[str, str]:
    """The split of every example: fixed ones as given, random ones by the reference's per-example draw,
    one ``np.random.RandomState(0).multinomial`` per group, one example at a time."""
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


def normalised(label):
    """A multi-label example's positives in sorted order (the order the handlers store them); else the label."""
    return sorted(label) if isinstance(label, (list, tuple)) else label


def prepare(writers: dict, name: str, tmp_path: pathlib.Path, handler=None, data: str = "data"):
    """Write the archive of ``writers[name]`` (once per ``tmp_path``; ``expected`` is None when it was
    already there) and prepare it into ``tmp_path / data``; returns ``(expected, dataset)``."""
    source = tmp_path / "originals"
    expected = None
    if not source.exists():
        source.mkdir(parents=True)
        expected = writers[name](source)
    dataset = write_prepared(handler or HANDLERS[name], [source], tmp_path / data, progress=False)
    return expected, dataset


def check_prepared(name: str, expected, dataset, data_dir: pathlib.Path, normalise_labels: bool = False) -> None:
    """The checks every handler test makes of ``dataset`` (prepared by handler ``name`` into ``data_dir``)."""
    facts = DATASETS[HANDLERS[name].dataset_key]
    assert facts.source == f"nevis:{name}"
    assert dataset.ready and dataset.path == data_dir / "prepared" / name
    metadata, manifest = dataset.metadata, dataset.manifest
    split_of = expected_split_of(expected)
    labels = {i: normalised(label) if normalise_labels else label for i, label in expected.order}
    assert len(labels) == len(expected.order)  # ids are unique
    for split in SPLITS:
        ids = [i for i, _ in expected.order if split_of[i] == split]
        assert manifest["splits"][split]["ids"] == ids, split
        assert manifest["splits"][split]["labels"] == [labels[i] for i in ids], split
        assert metadata["counts"][split] == len(ids), split
    assert sum(metadata["counts"].values()) == len(expected.order) and metadata["counts"]["train"] > 0
    if expected.class_names is not None:
        assert metadata["class_names"] == expected.class_names
    assert metadata["dataset_key"] == facts.key and metadata["channels"] == facts.channels
    assert metadata["domain"] == facts.domain and isinstance(metadata["year"], int)
    assert metadata["licence"] and metadata["split_rule"]
    assert metadata["source_files"] and all(f["md5"] for f in metadata["source_files"])
    assert dataset.verify() == []

    source = PreparedSource(name, facts.key, data_dir=str(data_dir))
    assert source.availability().available
    splits = source.build(8)
    for split, (images, split_labels, ids) in splits.items():
        assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, facts.channels)
        assert split_labels.dtype == (np.int64 if split_labels.ndim == 1 else np.float32)  # class ids, or multi-hot rows
        assert len(split_labels) == len(images) == len(ids)
        assert list(ids) == manifest["splits"][split]["ids"]
    assert sum(len(s[1]) for s in splits.values()) == len(expected.order)
