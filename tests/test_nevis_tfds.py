"""TFDS sources through ``tfds.testing.mock_data`` (offline), the split rules on constructed inputs, and an
end-to-end run of nevis-tiny's structure on mock TFDS data plus a prepared fake ISIC archive.

TensorFlow is imported once for this module (the first ``mock_data`` use); nothing here downloads.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from nevis_bench.data.sources import DataMissingError
from nevis_bench.data.tfds_source import (
    COIL100, DOMAINNET, IMAGENET, SMALLNORB, TFDS_SPECS, TRAIN_TEST, TRAIN_VAL_TEST, VOC2012, TfdsSource,
    plan_splits,
)

tfds = pytest.importorskip("tensorflow_datasets")

N = 40  # mock examples per TFDS split


@pytest.fixture(autouse=True)
def read_in_process(monkeypatch):
    """mock_data patches this process only: read TFDS here even when torch is loaded."""
    monkeypatch.setenv("NEVIS_BENCH_TFDS_IN_PROCESS", "1")


@pytest.fixture()
def mock():
    with tfds.testing.mock_data(num_examples=N, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def raw_feature(builder_name: str, feature: str) -> list:
    """A feature of the mock ``train`` split, read directly with TFDS (inside ``mock``).

    The same features as the source decodes are requested: the mock generator's values depend on them.
    """
    spec = next(s for s in TFDS_SPECS.values() if builder_name in s.builder_names)
    wanted = {"image": True, spec.multi_label or spec.label: True, feature: True}
    builder = tfds.builder(f"{builder_name}:{spec.version}")
    dataset = builder.as_dataset(split="train", shuffle_files=False, decoders=tfds.decode.PartialDecoding(wanted))
    return [example[feature] for example in tfds.as_numpy(dataset)]


def expected_sizes(name: str) -> dict[str, int]:
    spec = TFDS_SPECS[name]
    if spec.rule == TRAIN_TEST:
        a, b = int(0.7 * N), int(0.7 * N) + int(0.15 * N)
        return {"train": a, "dev": b - a, "dev_test": N - b, "test": N}
    if spec.rule == IMAGENET:
        a, b = int(0.9 * N), int(0.9 * N) + int(0.05 * N)
        return {"train": a, "dev": b - a, "dev_test": N - b, "test": N}
    if spec.rule == TRAIN_VAL_TEST:
        return {"train": int(0.8 * N), "dev": N - int(0.8 * N), "dev_test": N, "test": N}
    if spec.rule == VOC2012:
        return {"train": int(0.8 * N), "dev": N - int(0.8 * N), "dev_test": int(0.5 * N), "test": N - int(0.5 * N)}
    if spec.rule == DOMAINNET:
        return {"train": 5 * N, "dev": 5 * N, "dev_test": N, "test": N}
    if spec.rule == COIL100:
        angle = np.asarray(raw_feature("coil100", "angle_label"))
        bins = {"train": (70, 71, 0, 1, 2), "dev": range(16, 21), "dev_test": range(50, 55)}
        sizes = {s: int(np.isin(angle, list(b)).sum()) for s, b in bins.items()}
        return {**sizes, "test": N - sum(sizes.values())}
    if spec.rule == SMALLNORB:
        instance = np.asarray(raw_feature("smallnorb", "instance"))
        return {"train": int(np.isin(instance, [7, 8, 9]).sum()), "dev": int((instance == 4).sum()),
                "dev_test": int((instance == 6).sum()), "test": N}
    raise AssertionError(spec.rule)


@pytest.mark.parametrize("name", sorted(TFDS_SPECS))
def test_tfds_source_on_mock_data(name, mock, tmp_path):
    spec = TFDS_SPECS[name]
    splits = TfdsSource(name, data_dir=str(tmp_path)).build(16)
    assert set(splits) == {"train", "dev", "dev_test", "test"}
    sizes = expected_sizes(name)
    all_ids = []
    for split, (images, labels, ids) in splits.items():
        assert len(images) == len(labels) == len(ids) == sizes[split], split
        assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, spec.channels)
        if spec.multi_label:
            assert labels.dtype == np.float32 and labels.shape[1:] == (spec.num_classes,)
            assert set(np.unique(labels)) <= {0.0, 1.0}
        else:
            assert labels.dtype == np.int64 and labels.ndim == 1
            assert ((0 <= labels) & (labels < spec.num_classes)).all()
        all_ids += list(ids)
    assert len(all_ids) == len(set(all_ids))  # disjoint splits (ids are builder:split:index)
    if spec.rule in (TRAIN_TEST, IMAGENET, TRAIN_VAL_TEST, VOC2012):  # contiguous slices in TFDS order
        builder = spec.builder_names[0]
        train_ids = list(splits["train"][2]) + list(splits["dev"][2])
        if spec.rule in (TRAIN_TEST, IMAGENET):
            train_ids += list(splits["dev_test"][2])
        assert train_ids == [f"{builder}:train:{i}" for i in range(len(train_ids))]


def test_multi_hot_targets_follow_the_tfds_labels(mock, tmp_path):
    labels = raw_feature("voc/2007", "labels")
    _, hot, _ = TfdsSource("voc/2007", data_dir=str(tmp_path)).build(8)["train"]
    for row, positives in zip(hot, labels):
        assert set(np.flatnonzero(row)) == set(int(k) for k in positives)
    attributes = raw_feature("celeb_a", "attributes")
    _, hot, _ = TfdsSource("celeb_a", data_dir=str(tmp_path)).build(8)["train"]
    for row, attrs in zip(hot, attributes):
        assert list(row) == [float(attrs[k]) for k in sorted(attrs)]


def test_rules_on_reference_sizes():
    mnist = TFDS_SPECS["mnist"]
    plan = plan_splits(mnist, {("mnist", "train"): 60000, ("mnist", "test"): 10000})
    assert {s: sum(len(i) for _, _, i in p) for s, p in plan.items()} == {"train": 42000, "dev": 9000, "dev_test": 9000, "test": 10000}
    imagenet = TFDS_SPECS["imagenet2012"]
    plan = plan_splits(imagenet, {("imagenet2012", "train"): 1281167, ("imagenet2012", "validation"): 50000})
    assert len(plan["dev"][0][2]) == 64058 and plan["test"][0][1] == "validation"
    voc = TFDS_SPECS["voc/2012"]
    plan = plan_splits(voc, {("voc/2012", "train"): 5717, ("voc/2012", "validation"): 5823})
    assert len(plan["dev_test"][0][2]) == 2911 and len(plan["test"][0][2]) == 2912
    assert plan["train"][0][2][-1] + 1 == plan["dev"][0][2][0]


def test_coil100_rule_on_constructed_angles():
    angles = np.tile(np.arange(72), 100)  # 100 objects x 72 viewing-angle bins
    plan = plan_splits(TFDS_SPECS["coil100"], {("coil100", "train"): 7200}, {("coil100", "train"): {"angle_label": angles}})
    sizes = {s: len(p[0][2]) for s, p in plan.items()}
    assert sizes == {"train": 500, "dev": 500, "dev_test": 500, "test": 5700}
    assert set(angles[plan["train"][0][2]]) == {70, 71, 0, 1, 2}
    assert set(angles[plan["dev_test"][0][2]]) == {50, 51, 52, 53, 54}
    assert np.intersect1d(plan["test"][0][2], plan["dev"][0][2]).size == 0


def test_smallnorb_rule_on_constructed_instances():
    instance = np.repeat([4, 6, 7, 8, 9], 10)
    plan = plan_splits(TFDS_SPECS["smallnorb"], {("smallnorb", "train"): 50, ("smallnorb", "test"): 30},
                       {("smallnorb", "train"): {"instance": instance}})
    assert {s: len(p[0][2]) for s, p in plan.items()} == {"train": 30, "dev": 10, "dev_test": 10, "test": 30}
    assert set(instance[plan["dev"][0][2]]) == {4} and set(instance[plan["train"][0][2]]) == {7, 8, 9}


def test_domainnet_rule_trains_on_five_domains_and_tests_on_sketch():
    spec = TFDS_SPECS["domainnet"]
    counts = {(b, s): 10 + i for i, (b, s) in enumerate((b, s) for b in spec.builder_names for s in ("train", "test"))}
    plan = plan_splits(spec, counts)
    assert [b for b, _, _ in plan["train"]] == [f"domainnet/{d}" for d in ("real", "painting", "clipart", "quickdraw", "infograph")]
    assert all(s == "test" for _, s, _ in plan["dev"])
    assert plan["dev_test"][0][:2] == ("domainnet/sketch", "train") and plan["test"][0][:2] == ("domainnet/sketch", "test")


def test_pinned_versions_are_the_installed_defaults():
    for spec in TFDS_SPECS.values():
        for builder_name in spec.builder_names:
            assert str(tfds.builder(builder_name, data_dir="/nonexistent-nevis").info.version) == spec.version, builder_name


def test_missing_tfds_data_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    with pytest.raises(DataMissingError, match="nevis-bench data prepare mnist --download"):
        TfdsSource("mnist", data_dir=str(tmp_path)).build(8)


def test_training_processes_read_tfds_in_a_child(monkeypatch):
    import sys

    from nevis_bench.data import tfds_source

    monkeypatch.delenv("NEVIS_BENCH_TFDS_IN_PROCESS")
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    assert not tfds_source.should_isolate()  # TensorFlow is already here: nothing to protect
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert tfds_source.should_isolate()
    monkeypatch.setenv("NEVIS_BENCH_TFDS_IN_PROCESS", "1")
    assert not tfds_source.should_isolate()
    monkeypatch.delenv("NEVIS_BENCH_TFDS_IN_PROCESS")
    monkeypatch.delitem(sys.modules, "torch")
    assert not tfds_source.should_isolate()


CHILD_UNDER_MOCK = """
import sys
import tensorflow_datasets as tfds
from nevis_bench.data.tfds_source import _child_main
with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    sys.exit(_child_main(sys.argv[1:]))
"""


def test_child_process_build_equals_in_process_build(tmp_path, monkeypatch):
    from nevis_bench.data import tfds_source

    script = tmp_path / "child.py"
    script.write_text(CHILD_UNDER_MOCK)
    monkeypatch.setattr(tfds_source, "WORKER_COMMAND", [sys.executable, str(script)])
    source = TfdsSource("voc/2012", data_dir=str(tmp_path))
    from_child = tfds_source.build_in_child(source, 8)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        here = source.build(8)
    for split in here:
        for a, b in zip(from_child[split], here[split]):
            np.testing.assert_array_equal(a, b)
    assert not list((tmp_path / "tmp").iterdir())  # scratch files removed


def test_child_process_reports_missing_data(tmp_path, monkeypatch):
    from nevis_bench.data import tfds_source

    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    with pytest.raises(DataMissingError, match="nevis-bench data prepare mnist --download"):
        tfds_source.build_in_child(TfdsSource("mnist", data_dir=str(tmp_path)), 8)


# ---------------------------------------------------------------------------------------------------
# End to end: nevis-tiny's structure through the command line, on mock TFDS data and a prepared archive


def _tfds_markers(folder, names):
    """Empty TFDS dataset folders, so that availability() (a disk check) passes while mock_data serves reads."""
    for name in names:
        spec = TFDS_SPECS[name]
        for builder_name in spec.builder_names:
            path = folder / builder_name / spec.version
            path.mkdir(parents=True, exist_ok=True)
            (path / "dataset_info.json").write_text("{}")


def test_nevis_tiny_end_to_end(tmp_path, monkeypatch, capsys):
    from nevis_bench import cli
    from tests.nevis_archives import write_melanoma

    data_dir, runs = tmp_path / "data", tmp_path / "runs"
    monkeypatch.setenv("NEVIS_BENCH_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    originals = tmp_path / "isic"
    originals.mkdir()
    write_melanoma(originals)

    assert cli.main(["data", "status", "--stream", "nevis-tiny", "--data-dir", str(data_dir)]) == 0
    assert "0 cached, 0 available, 6 missing" in capsys.readouterr().out
    assert cli.main(["data", "prepare", "melanoma", "--from", str(originals), "--data-dir", str(data_dir), "--no-cache"]) == 0
    assert cli.main(["data", "verify", "melanoma", "--data-dir", str(data_dir)]) == 0

    _tfds_markers(data_dir / "tensorflow_datasets", ["mnist", "caltech101", "voc/2012", "cifar100"])
    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        code = cli.main(["data", "prepare", "--stream", "nevis-tiny", "--stop-year", "2020", "--data-dir", str(data_dir)])
    assert code == 0
    capsys.readouterr()
    assert cli.main(["data", "status", "--stream", "nevis-tiny", "--data-dir", str(data_dir), "--stop-year", "2020"]) == 0
    assert "5 cached, 0 available, 0 missing" in capsys.readouterr().out

    code = cli.main([
        "run", "--stream", "nevis-tiny", "--learner", "independent", "--data-dir", str(data_dir),
        "--runs-dir", str(runs), "--run-name", "tiny", "--quiet",
        "-o", f"stream.data_dir={data_dir}", "-o", "max_steps=2", "-o", "min_steps=1", "-o", "batch_size=8",
        "-o", "epochs=1", "-o", "eval_batch_size=32",
    ])
    assert code == 0, capsys.readouterr().err
    events = [json.loads(line) for line in (runs / "tiny" / "events.jsonl").read_text().splitlines()]
    trains = [e for e in events if e["event_type"] == "train"]
    assert [e["task_key"] for e in trains] == [
        "mnist", "caltech101", "pascal_2012", "cifar_100", "mnist", "isbi_isic_2017_melanoma_classification_challenge"]
    assert [e["year"] for e in trains] == [2004, 2010, 2014, 2018, 2018, 2018]
    predicts = [e for e in events if e["event_type"] == "predict"]
    assert [e["task_kind"] for e in predicts][2] == "multi_label" and all(e["split"] == "dev_test" for e in predicts)
