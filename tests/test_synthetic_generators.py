"""The synthetic generator families: shapes, determinism, splits, learnability, the debug stream."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from nevis_bench.streams.synthetic import generators
from nevis_bench.streams.synthetic.generators import FAMILIES, GENERATOR_VERSION, generate_task, viewpoint_angles

from nevis_bench.data import catalog
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import STREAMS

SPLITS = ("train", "dev", "dev_test", "test")

# One dataset per (family, style) pair of the catalog.
VARIANTS = {}
for _facts in catalog.DATASETS.values():
    VARIANTS.setdefault((_facts.family, _facts.style), _facts.key)

# Representative task per family for the learnability check: key, classes, classifier.
REPRESENTATIVES = {
    "ocr": ("mnist", 10, "logreg"),
    "texture": ("dtd", 10, "logreg"),
    "shape": ("fashion_mnist", 10, "logreg"),
    "object": ("cifar_10", 10, "logreg"),
    "viewpoint": ("coil100", 10, "logreg"),
    "face": ("olivetti_face", 10, "logreg"),
    "scene": ("scenes15", 10, "logreg"),
    "xray": ("pneumonia_chest_x_ray", 2, "logreg"),
    "medical": ("path_mnist", 8, "logreg"),
    "counting": ("trancos", 10, "logreg"),
    "quality": ("tid2008", 5, "1nn"),
    "multi_label": ("pascal_2007", 10, "logreg"),
}
NEEDS_FEATURES = ("texture", "object", "face")  # raw pixels must not solve these


def _digest(data: dict) -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        images, labels = data[split]
        h.update(images.tobytes())
        h.update(labels.tobytes())
    return h.hexdigest()


def _check(facts, num_classes, sizes, image_size, data):
    assert set(data) == set(SPLITS)
    for split in SPLITS:
        images, labels = data[split]
        n = sizes[split]
        assert images.shape == (n, image_size, image_size, facts.channels), (facts.key, split)
        assert images.dtype == np.uint8
        assert images.std() > 2.0, f"{facts.key}/{split}: images are (nearly) constant"
        if facts.kind == MULTI_LABEL:
            assert labels.dtype == np.float32 and labels.shape == (n, num_classes)
            assert set(np.unique(labels)) <= {0.0, 1.0}
            assert (labels.sum(axis=1) >= 1).all(), f"{facts.key}/{split}: an example without a positive label"
        else:
            assert labels.dtype == np.int64 and labels.shape == (n,)
            assert labels.min() >= 0 and labels.max() < num_classes


def test_families_cover_catalog():
    assert {f.family for f in catalog.DATASETS.values()} <= set(FAMILIES)
    assert set(REPRESENTATIVES) == set(FAMILIES)
    assert isinstance(GENERATOR_VERSION, int)


@pytest.mark.parametrize("variant", sorted(VARIANTS), ids=lambda v: f"{v[0]}-{v[1] or 'default'}")
def test_shapes_dtypes_labels(variant):
    facts = catalog.DATASETS[VARIANTS[variant]]
    num_classes = min(facts.num_classes, 12)
    sizes = {"train": 2 * num_classes + 3, "dev": 5, "dev_test": num_classes, "test": 7}
    data = generate_task(facts, num_classes, sizes, 32, 0)
    _check(facts, num_classes, sizes, 32, data)
    if facts.kind != MULTI_LABEL:  # balanced single-label training sets
        counts = np.bincount(data["train"][1], minlength=num_classes)
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("image_size", [16, 64])
@pytest.mark.parametrize("key", ["mnist", "coil20", "lfw", "celeba", "brodatz", "caltech101"])
def test_other_image_sizes(key, image_size):
    facts = catalog.DATASETS[key]
    num_classes = min(facts.num_classes, 6)
    sizes = {"train": 12, "dev": 6, "dev_test": 6, "test": 6}
    _check(facts, num_classes, sizes, image_size, generate_task(facts, num_classes, sizes, image_size, 0))


@pytest.mark.parametrize("family", sorted(REPRESENTATIVES))
def test_deterministic(family):
    facts = catalog.DATASETS[REPRESENTATIVES[family][0]]
    num_classes = min(facts.num_classes, 7)
    sizes = {"train": 20, "dev": 6, "dev_test": 9, "test": 5}
    a = generate_task(facts, num_classes, sizes, 32, 0)
    b = generate_task(facts, num_classes, sizes, 32, 0)
    assert _digest(a) == _digest(b)
    c = generate_task(facts, num_classes, sizes, 32, 1)
    assert _digest(a) != _digest(c), "the data seed must change the data"


def test_deterministic_across_processes():
    """Another interpreter (different hash salt, cold caches) gives the same bytes."""
    keys = ["mnist", "pascal_2007", "coil20", "lfw", "scenes15", "trancos"]
    sizes = {"train": 14, "dev": 4, "dev_test": 4, "test": 4}
    code = (
        "import hashlib, sys\n"
        "from nevis_bench.data import catalog\n"
        "from nevis_bench.streams.synthetic.generators import generate_task\n"
        f"for key in {keys!r}:\n"
        "    f = catalog.DATASETS[key]\n"
        f"    d = generate_task(f, min(f.num_classes, 5), {sizes!r}, 32, 0)\n"
        "    h = hashlib.sha256()\n"
        "    for s in ('train', 'dev', 'dev_test', 'test'):\n"
        "        h.update(d[s][0].tobytes()); h.update(d[s][1].tobytes())\n"
        "    print(key, h.hexdigest())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    theirs = dict(line.split() for line in out.strip().splitlines())
    for key in keys:
        f = catalog.DATASETS[key]
        assert theirs[key] == _digest(generate_task(f, min(f.num_classes, 5), sizes, 32, 0)), key


def test_tasks_of_a_family_share_classes():
    """Child tasks reuse their parent's class prototypes: same generator bank, overlapping classes."""
    from nevis_bench.streams.synthetic import _faces, _objects

    assert list(_objects.bank_classes(0, "cifar_10", 10)) == list(_objects.bank_classes(0, "cifar_100", 100)[:10])
    assert list(_objects.bank_classes(0, "pascal_2012", 20)) == list(_objects.bank_classes(0, "pascal_2007", 20))
    lfw = generators.make_family_task(catalog.DATASETS["lfw"], 100, 32, 0)
    lfwa = generators.make_family_task(catalog.DATASETS["lfwa"], 100, 32, 0)
    assert list(lfw.ids) == list(lfwa.ids) and len(set(lfw.ids)) == 100
    assert _faces.identity_bank(0)["face_w"].shape == (_faces.BANK,)


def test_viewpoint_splits_use_disjoint_angles():
    from nevis_bench.streams.synthetic import _viewpoint

    facts = catalog.DATASETS["coil100"]
    sizes = {"train": 300, "dev": 100, "dev_test": 100, "test": 100}
    angles = viewpoint_angles(facts, 20, sizes, 32, 0)
    again = viewpoint_angles(facts, 20, sizes, 32, 0)
    assert all(np.array_equal(angles[s], again[s]) for s in SPLITS)
    ranges = _viewpoint.SPLIT_RANGES
    for split in SPLITS:
        assert len(angles[split]) == sizes[split]
        assert (angles[split] >= 0).all() and (angles[split] < 360).all()
        lo, hi = ranges[split]
        phase = angles[split] % _viewpoint.PERIOD
        assert ((phase >= lo) & (phase < hi)).all(), split
        assert (_viewpoint.split_of_angle(angles[split]) == split).all()
    # the ranges themselves do not overlap
    spans = sorted(ranges.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # and the rendering really depends on the angle: the same object at two angles differs
    task = generators.make_family_task(facts, 20, 32, 0)
    rng = np.random.default_rng(0)
    labels = np.zeros(2, dtype=np.int64)
    views = task.render(labels, rng, "train", angle=np.array([10.0, 100.0]))
    assert np.abs(views[0] - views[1]).mean() > 0.01


def _features(images: np.ndarray) -> np.ndarray:
    """Flattened pixels, 2x2 average-pooled (keeps the linear model small and fast)."""
    x = images.astype(np.float32) / 255.0
    n, s, _, c = x.shape
    x = x.reshape(n, s // 2, 2, s // 2, 2, c).mean(axis=(2, 4))
    return x.reshape(n, -1)


@pytest.mark.parametrize("family", sorted(REPRESENTATIVES))
def test_learnable_from_pixels(family):
    """A linear model (or 1-NN) on raw pixels beats chance clearly, but does not solve the tasks that
    should need real features."""
    from threadpoolctl import threadpool_limits

    key, num_classes, method = REPRESENTATIVES[family]
    facts = catalog.DATASETS[key]
    per_class = 40 if num_classes > 2 else 120
    sizes = {"train": per_class * num_classes, "dev": 2, "dev_test": max(200, 20 * num_classes), "test": 2}
    data = generate_task(facts, num_classes, sizes, 32, 0)
    (xtr, ytr), (xte, yte) = data["train"], data["dev_test"]
    with threadpool_limits(1):  # small problems: threads only add contention on a busy machine
        _fit_and_check(family, key, facts, num_classes, method, xtr, ytr, xte, yte)


def _fit_and_check(family, key, facts, num_classes, method, xtr, ytr, xte, yte):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(_features(xtr))
    ftr, fte = scaler.transform(_features(xtr)), scaler.transform(_features(xte))
    if facts.kind == MULTI_LABEL:
        aps, prevalence = [], []
        for j in range(num_classes):
            model = LogisticRegression(C=0.05, max_iter=1000).fit(ftr, ytr[:, j])
            aps.append(average_precision_score(yte[:, j], model.predict_proba(fte)[:, 1]))
            prevalence.append(yte[:, j].mean())
        assert np.mean(aps) > 1.5 * np.mean(prevalence), (np.mean(aps), np.mean(prevalence))
        return
    if method == "1nn":
        model = KNeighborsClassifier(1).fit(ftr, ytr)
    else:
        model = LogisticRegression(C=0.05, max_iter=1000).fit(ftr, ytr)
    pred = model.predict(fte)
    acc = float((pred == yte).mean())
    chance = 1.0 / num_classes
    if family == "counting":  # ordinal classes: neighbouring buckets differ by one or two objects
        mae, chance_mae = float(np.abs(pred - yte).mean()), (num_classes**2 - 1) / (3 * num_classes)
        assert acc > 1.5 * chance and mae < 0.65 * chance_mae, f"{key}: accuracy {acc:.3f}, bucket error {mae:.2f}"
    else:
        assert acc > max(1.5 * chance, chance + 0.12), f"{key}: accuracy {acc:.3f}, chance {chance:.3f}"
    if family in NEEDS_FEATURES:
        assert acc < 0.95, f"{key}: raw pixels solve the task ({acc:.3f})"


def test_debug_stream_builds():
    stream = STREAMS.get("synthetic-debug").factory()
    assert len(stream.entries) == 2
    for entry in stream.entries:
        data = entry.source.build(32)
        sizes = dict(entry.source.sizes)
        facts = dataclasses.replace(entry.source.facts)
        _check(facts, entry.task.num_classes, sizes, 32, data)
        assert data["train"][0].shape[-1] == entry.task.channels
        assert "synthetic:v" in entry.source.fingerprint(32)


def test_bad_arguments():
    facts = dataclasses.replace(catalog.DATASETS["mnist"], family="no_such_family")
    with pytest.raises(ValueError, match="no_such_family"):
        generate_task(facts, 10, {"train": 10, "dev": 2, "dev_test": 2, "test": 2}, 32, 0)
    facts = dataclasses.replace(catalog.DATASETS["mnist"], kind=MULTI_LABEL)
    with pytest.raises(ValueError, match="multi-label"):
        generate_task(facts, 10, {"train": 10, "dev": 2, "dev_test": 2, "test": 2}, 32, 0)
