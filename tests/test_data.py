import numpy as np
import pytest
import torch

from nevis_bench.data import catalog
from nevis_bench.data.cache import CacheError, TaskCache
from nevis_bench.data.loader import (
    AugmentConfig, TrainBatches, augment, center_square_resize, eval_batches, to_model_input,
)
from nevis_bench.registry import STREAMS


def _splits(n=10, size=8, channels=3):
    rng = np.random.default_rng(0)
    return {s: (rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8), np.arange(n) % 3)
            for s in ("train", "dev", "dev_test", "test")}


def test_cache_round_trip_memory_maps_and_verifies(tmp_path):
    cache = TaskCache(tmp_path)
    splits = _splits()
    task = cache.write("demo", "fp-1", splits, {"kind": "single_label"})
    train = task.split("train")
    assert isinstance(train.images, np.memmap)
    np.testing.assert_array_equal(train.images, splits["train"][0])
    both = task.split("train_and_dev")
    assert len(both) == 20
    images, labels = both.take(np.array([0, 12]))
    np.testing.assert_array_equal(images[1], splits["dev"][0][2])
    assert task.verify() == []
    assert cache.get("demo", "fp-2") is None  # a different fingerprint is a different entry
    data = np.load(task.path / "test.images.npy", mmap_mode="r+")
    data[0, 0, 0, 0] ^= 1
    data.flush()
    assert task.verify() and "test.images" in task.verify()[0]


def test_cache_rejects_missing_splits_and_leaves_nothing(tmp_path):
    cache = TaskCache(tmp_path)
    splits = _splits()
    del splits["dev"]
    with pytest.raises(CacheError, match="dev"):
        cache.write("demo", "fp", splits, {})
    assert cache.get("demo", "fp") is None
    folder = tmp_path / "cache" / "demo"
    assert not folder.exists() or not list(folder.iterdir())


def test_model_input_scaling_grey_to_rgb_and_eval_crop():
    grey = np.zeros((2, 6, 10, 1), np.uint8)
    grey[..., 0] = 255
    x = to_model_input(grey)
    assert x.shape == (2, 3, 6, 10) and torch.all(x == 1.0)
    assert center_square_resize(x, 4).shape == (2, 3, 4, 4)


def test_augmentation_shapes_ranges_and_determinism():
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    config = AugmentConfig(input_size=24)
    a = augment(x, config, torch.Generator().manual_seed(1))
    b = augment(x, config, torch.Generator().manual_seed(1))
    c = augment(x, config, torch.Generator().manual_seed(2))
    assert a.shape == (5, 3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    # full-image crop without flip reproduces the resized image
    identity = augment(x, AugmentConfig(input_size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False),
                       torch.Generator().manual_seed(0))
    assert torch.allclose(identity, x, atol=1e-5)


def test_train_batches_are_a_function_of_seed_and_step(tmp_path):
    task = TaskCache(tmp_path).write("demo", "fp", _splits(n=10), {})
    first = TrainBatches(task.split("train"), 4, AugmentConfig(input_size=8), seed=3)
    second = TrainBatches(task.split("train"), 4, AugmentConfig(input_size=8), seed=3)
    assert first.steps_per_epoch == 2
    seen = np.concatenate([first.indices(0), first.indices(1)])
    assert len(set(seen.tolist())) == 8  # one epoch draws without replacement
    for step in (5, 0, 3):  # any order, as after a resume
        xa, ya = first.batch(step)
        xb, yb = second.batch(step)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    batches = list(eval_batches(task.split("test"), 4, 8))
    assert [len(b[0]) for b in batches] == [4, 4, 2]


def test_synthetic_streams_mirror_the_reference_entry_by_entry():
    for name, variant in (("synthetic-full", catalog.FULL), ("synthetic-short", catalog.SHORT),
                          ("synthetic-tiny", catalog.TINY), ("synthetic-debug", catalog.DEBUG)):
        stream = STREAMS.get(name).factory()
        assert [(e.year, e.task.key) for e in stream.entries] == list(variant)
        for entry in stream.entries:
            facts = catalog.DATASETS[entry.task.key]
            assert entry.task.kind == facts.kind and entry.task.channels == facts.channels
            assert entry.task.num_classes == min(facts.num_classes, 100)
            sizes = dict(entry.source.sizes)
            assert sizes["train"] >= 5 * entry.task.num_classes
    full = STREAMS.get("synthetic-full").factory()
    assert len(full.entries) == 106 and len({e.task.key for e in full.entries}) == 97
    assert len(full.entries_before(2020)) == 92
    for stream_name in ("synthetic-full", "synthetic-short"):
        train_sizes = [dict(e.source.sizes)["train"] for e in STREAMS.get(stream_name).factory().entries]
        assert max(train_sizes) / min(train_sizes) >= 100  # two orders of magnitude
    # a repeated dataset is the same task: same key and the same source, hence identical data
    mnist = [e for e in full.entries if e.task.key == "mnist"]
    assert len(mnist) == 2 and mnist[0].source == mnist[1].source
    assert mnist[0].source.fingerprint(32) == mnist[1].source.fingerprint(32)


def test_events_hold_out_years_and_append_the_final_evaluation():
    stream = STREAMS.get("synthetic-tiny").factory()
    events = stream.events(stop_year=2020, predict_split="dev_test", final_eval=True)
    in_stream = [e for e in events if not getattr(e, "final_eval", False)]
    assert len(in_stream) == 12  # 6 tasks before 2020, train + predict each
    final = events[len(in_stream):]
    assert [e.task.key for e in final] == ["mnist", "caltech101", "pascal_2012", "cifar_100",
                                            "isbi_isic_2017_melanoma_classification_challenge"]
    assert [e.index for e in events] == list(range(len(events)))
