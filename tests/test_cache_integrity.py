"""Cache integrity and cache keys (issue 13, reproductions 1, 2 and 8).

1. A damaged cached split (inverted pixels, out-of-range labels) stops a run with a clear error naming
   the task and the command that rebuilds it; it is never used silently.
2. A changed TFDS build (other split sizes) gets a new cache entry instead of reusing the old one.
8. A ``COMPLETE`` marker without ``manifest.json`` is the same clear error, not a traceback.

Plus ``nevis-bench data verify --stream`` and the rebuild through ``data prepare --stream``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nevis_bench import cli
from nevis_bench.data import cache as cache_module
from nevis_bench.data.cache import CacheError
from nevis_bench.errors import InputError
from nevis_bench.registry import STREAMS
from nevis_bench.stream import Stream, StreamData, StreamEntry

QUICK = ["-o", "max_steps=2", "-o", "min_steps=1", "-o", "batch_size=8", "-o", "epochs=1", "-o", "eval_batch_size=32"]


@pytest.fixture()
def debug_data(tmp_path):
    """A fresh synthetic-debug task cache of this test's own (the shared one must stay intact)."""
    folder = tmp_path / "data"
    StreamData(STREAMS.get("synthetic-debug").factory(), 2020, folder, 32).prepare(progress=False)
    cache_module.forget_checks()
    return folder


def entry_dir(data_dir, key):
    (folder,) = list((data_dir / "cache" / key).iterdir())
    return folder


def open_task(data_dir, key):
    return StreamData(STREAMS.get("synthetic-debug").factory(), 2020, data_dir, 32).task(key)


def run(data_dir, tmp_path, name="r") -> int:
    return cli.main(["run", "--stream", "synthetic-debug", "--learner", "independent", "--data-dir", str(data_dir),
                     "--runs-dir", str(tmp_path / "runs"), "--run-name", name, "--quiet", *QUICK])


# ---------------------------------------------------------------------------------------------------
# Reproduction 1: a damaged cache is never used


def test_inverted_pixels_stop_the_run_with_a_clear_error(debug_data, tmp_path, capsys):
    path = entry_dir(debug_data, "coil20") / "dev_test.images.npy"
    np.save(path, 255 - np.load(path))
    with pytest.raises(CacheError) as caught:
        open_task(debug_data, "coil20")
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert "'coil20'" in message and "dev_test.images: content hash differs" in message
    assert "nevis-bench data prepare --stream synthetic-debug" in message

    assert run(debug_data, tmp_path) == 2  # an input error: one line, no traceback, no compute
    err = capsys.readouterr().err
    assert "\nerror: task 'coil20'" in err and "dev_test.images" in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "r" / "events.jsonl").exists() or not (tmp_path / "runs" / "r" / "events.jsonl").read_text()


def test_out_of_range_labels_are_refused_even_with_a_matching_hash(debug_data):
    folder = entry_dir(debug_data, "coil20")
    labels = np.load(folder / "train.labels.npy")
    labels[0] = 20  # coil20 has classes 0..19
    np.save(folder / "train.labels.npy", labels)
    with pytest.raises(CacheError, match="train.labels: content hash differs"):
        open_task(debug_data, "coil20")
    # someone also rewrote the manifest's hash: the label range still catches it
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["train"]["labels_sha256"] = cache_module._array_sha256(labels)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match=r"train.labels: values 0..20 outside the task's classes 0..19"):
        open_task(debug_data, "coil20")


def test_multi_hot_targets_out_of_range_are_refused(debug_data):
    folder = entry_dir(debug_data, "pascal_2007")
    labels = np.load(folder / "dev.labels.npy")
    labels[0, 0] = 2.0
    np.save(folder / "dev.labels.npy", labels)
    with pytest.raises(CacheError, match="dev.labels"):
        open_task(debug_data, "pascal_2007")


def test_an_intact_cache_is_hashed_once_per_process(debug_data, monkeypatch):
    task = open_task(debug_data, "coil20")
    calls = []
    original = cache_module._array_sha256
    monkeypatch.setattr(cache_module, "_array_sha256", lambda a: calls.append(1) or original(a))
    open_task(debug_data, "coil20")
    assert calls == []  # already checked in this process: shapes and labels only
    path = task.path / "test.images.npy"
    np.save(path, np.load(path))  # rewritten (same bytes): checked again
    open_task(debug_data, "coil20")
    assert calls


def test_intact_cache_runs_and_gives_the_same_numbers(debug_data, tmp_path, data_dir):
    """Checking changes no number: the run on a fresh cache equals the run on the shared one."""
    assert run(debug_data, tmp_path, "fresh") == 0
    assert run(data_dir, tmp_path, "shared") == 0
    errors = []
    for name in ("fresh", "shared"):
        events = [json.loads(l) for l in (tmp_path / "runs" / name / "events.jsonl").read_text().splitlines()]
        errors.append([e["error"] for e in events if e["event_type"] == "predict"])
    assert errors[0] == errors[1]


# ---------------------------------------------------------------------------------------------------
# Reproduction 8: COMPLETE without manifest.json


def test_missing_manifest_is_a_clear_error(debug_data, tmp_path, capsys):
    (entry_dir(debug_data, "pascal_2007") / "manifest.json").unlink()
    data = StreamData(STREAMS.get("synthetic-debug").factory(), 2020, debug_data, 32)
    with pytest.raises(CacheError) as caught:
        data.check_available()
    message = str(caught.value)
    assert "'pascal_2007'" in message and "no manifest.json" in message
    assert "nevis-bench data prepare --stream synthetic-debug" in message
    assert run(debug_data, tmp_path) == 2
    err = capsys.readouterr().err
    assert "no manifest.json" in err and "Traceback" not in err and "FileNotFoundError" not in err
    assert cli.main(["data", "status", "--stream", "synthetic-debug", "--data-dir", str(debug_data)]) == 0
    assert "1 damaged" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# data verify --stream, and the rebuild


def test_data_verify_stream_finds_damage_and_prepare_rebuilds_it(debug_data, capsys):
    args = ["--stream", "synthetic-debug", "--data-dir", str(debug_data)]
    assert cli.main(["data", "verify", *args]) == 0
    out = capsys.readouterr().out
    assert "synthetic-debug: OK" in out and out.count("checked task cache") == 2
    folder = entry_dir(debug_data, "coil20")
    before = json.loads((folder / "manifest.json").read_text())["splits"]
    path = folder / "dev_test.images.npy"
    np.save(path, 255 - np.load(path))
    assert cli.main(["data", "verify", *args]) == 1
    out = capsys.readouterr().out
    assert "cache: coil20:" in out and "dev_test.images: content hash differs" in out
    assert "nevis-bench data prepare --stream synthetic-debug" in out
    # a task named directly (a synthetic entry, not the catalog's TFDS source) is found too
    assert cli.main(["data", "verify", "coil20", "--data-dir", str(debug_data)]) == 1
    assert "dev_test.images: content hash differs" in capsys.readouterr().out

    assert cli.main(["data", "prepare", *args]) == 0
    assert "coil20: the task cache entry is damaged" in capsys.readouterr().err
    assert cli.main(["data", "verify", *args]) == 0
    after = json.loads((entry_dir(debug_data, "coil20") / "manifest.json").read_text())["splits"]
    assert {k: v["images_sha256"] for k, v in after.items()} == {k: v["images_sha256"] for k, v in before.items()}
    open_task(debug_data, "coil20")


def test_data_verify_needs_a_stream_or_names(debug_data, capsys):
    assert cli.main(["data", "verify", "--data-dir", str(debug_data)]) == 2
    assert cli.main(["data", "verify", "--stream", "synthetic-debug", "--data-dir", str(debug_data / "empty")]) == 2
    assert "nothing to verify" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# Reproduction 2: a different TFDS build is a different cache entry


def _tfds_build(folder, train: int, test: int):
    """The dataset_info.json of a TFDS mnist build with these split sizes (mock_data serves the reads)."""
    from nevis_bench.data.tfds_source import TFDS_SPECS

    spec = TFDS_SPECS["mnist"]
    path = folder / "mnist" / spec.version
    path.mkdir(parents=True)
    info = {"name": "mnist", "version": spec.version, "splits": [
        {"name": "train", "shardLengths": [str(train)], "numBytes": str(train * 300)},
        {"name": "test", "shardLengths": [str(test)], "numBytes": str(test * 300)},
    ]}
    (path / "dataset_info.json").write_text(json.dumps(info))
    return folder


def test_a_changed_tfds_build_gets_a_new_cache_entry(tmp_path, monkeypatch, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    from nevis_bench.data.catalog import DATASETS
    from nevis_bench.data.sources import source_for, task_info

    monkeypatch.setenv("NEVIS_BENCH_TFDS_IN_PROCESS", "1")
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    data_dir = tmp_path / "data"
    facts = DATASETS["mnist"]

    def train_size(tfds_dir, n):
        source = source_for(facts, str(data_dir), str(tfds_dir))
        stream = Stream("mnist-only", [StreamEntry(2004, task_info(facts, 2004), source)])
        with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
            return len(StreamData(stream, 2020, data_dir, 8).split("mnist", "train"))

    first = _tfds_build(tmp_path / "build-a", 40, 40)
    second = _tfds_build(tmp_path / "build-b", 30, 30)
    assert train_size(first, 40) == 28
    assert train_size(second, 30) == 21  # not the 28 of the first build's entry
    assert len(list((data_dir / "cache" / "mnist").iterdir())) == 2
    assert train_size(first, 99) == 28  # the same build again: its entry is reused, nothing is read
    assert len(list((data_dir / "cache" / "mnist").iterdir())) == 2
    # verify names the entry of the build now configured, and the older one as such
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(data_dir), "--tfds-data-dir", str(second),
                     "--image-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "built from the source as it is now" in out and "not the entry of the current source" in out


def test_data_verify_compares_a_tfds_entry_with_the_build_on_disk(tmp_path, monkeypatch, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    from nevis_bench.data.catalog import DATASETS
    from nevis_bench.data.sources import source_for, task_info

    monkeypatch.setenv("NEVIS_BENCH_TFDS_IN_PROCESS", "1")
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    data_dir, facts = tmp_path / "data", DATASETS["mnist"]
    build = _tfds_build(tmp_path / "build", 50, 50)  # says 50 examples a split; the files served hold 40
    source = source_for(facts, str(data_dir), str(build))
    stream = Stream("mnist-only", [StreamEntry(2004, task_info(facts, 2004), source)])
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        StreamData(stream, 2020, data_dir, 8).task("mnist")
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(data_dir), "--tfds-data-dir", str(build),
                     "--image-size", "8"]) == 1
    assert "train: 28 examples cached, the TFDS build in" in capsys.readouterr().out


def test_staging_folders_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    import os

    import numpy as np

    from nevis_bench.data.cache import TaskCache

    cache = TaskCache(tmp_path)
    task_folder = cache.task_dir("t", "f1").parent
    task_folder.mkdir(parents=True)
    dead = task_folder / ".writing-4194305-abc"  # above Linux's largest PID: no such process
    live = task_folder / f".writing-{os.getpid()}-xyz"
    dead.mkdir()
    live.mkdir()
    images = np.zeros((4, 8, 8, 1), np.uint8)
    labels = np.zeros(4, np.int64)
    cache.write("t", "f2", {name: (images, labels) for name in ("train", "dev", "dev_test", "test")}, {})
    assert not dead.exists() and live.exists()
