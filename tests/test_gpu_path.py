"""The GPU execution options of the shared recipe, exercised on CPU (no GPU needed).

Prefetching must not change results; bf16 autocast must train to an error within noise of fp32;
bf16 and channels-last must leave the FLOP counts unchanged.
"""

import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.data.loader import AugmentConfig, PrefetchingBatches, TrainBatches, step_batches
from nevis_bench.learner_kit.flops import count_train_step
from nevis_bench.learner_kit.models import Classifier, make_backbone
from nevis_bench.learner_kit.training import RecipeConfig, fit, prepare_model
from nevis_bench.protocol import TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run.context import event_context
from nevis_bench.stream import StreamData
from tests.helpers import REPO


def _setup(data_dir, index=1):
    stream = STREAMS.get("synthetic-debug").factory()
    data = StreamData(stream, 2020, data_dir, 32)
    task = stream.entries[index].task  # 1: coil20 single-label; 0: pascal multi-label
    return data, task


def _fit(data, task, **options):
    recipe = RecipeConfig(**{"batch_size": 16, "max_steps": 10, "min_steps": 10, "patience": 0,
                             "eval_every_epochs": 1.0, **options})
    ctx = event_context(data, TrainEvent(0, task), seed=3, progress=False)
    with ctx.seeded("init"):
        model = Classifier(make_backbone("small_convnet"), nn.Linear(256, task.num_classes))
    result = fit(model, task, ctx, recipe)
    return model, result


def test_prefetching_loader_yields_exactly_the_synchronous_batches(data_dir):
    data, task = _setup(data_dir)
    split = data.split(task.key, "train")
    config = AugmentConfig(input_size=32, crop_scale=(0.35, 1.0))
    reference = TrainBatches(split, 16, config, seed=11)
    with PrefetchingBatches(TrainBatches(split, 16, config, seed=11), 5, 40, depth=3) as feed:
        steps = 0
        for step, x, y in feed:
            rx, ry = reference.batch(step)
            assert torch.equal(x, rx) and torch.equal(y, ry)
            steps += 1
    assert steps == 35
    # closing early stops the thread
    feed = step_batches(TrainBatches(split, 16, config, seed=11), 0, 10_000, prefetch=2)
    next(feed)
    feed.close()
    assert not feed._thread.is_alive()


@pytest.mark.parametrize("index", [0])  # multi-label (float targets); int targets: the loader test
def test_cpu_results_identical_with_prefetch_on_and_off(data_dir, index):
    data, task = _setup(data_dir, index)
    model_a, result_a = _fit(data, task, prefetch=0)
    model_b, result_b = _fit(data, task, prefetch=3)
    assert result_a == result_b
    for (ka, va), (kb, vb) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_bf16_and_channels_last_train_on_cpu_within_noise_of_fp32_and_count_the_same_flops(data_dir):
    data, task = _setup(data_dir)
    budget = dict(batch_size=32, max_steps=40, min_steps=40, eval_every_epochs=3.0)
    _, fp32 = _fit(data, task, **budget)
    _, bf16 = _fit(data, task, **budget, precision="bf16", channels_last=True)
    chance = 1 - 1 / task.num_classes
    assert fp32.steps == bf16.steps == 40
    # both learn (well below chance error, 0.95) and agree within noise (dev split of 40 images)
    assert fp32.best_dev_error < 0.6 * chance and bf16.best_dev_error < 0.6 * chance, (fp32, bf16)
    assert abs(fp32.best_dev_error - bf16.best_dev_error) <= 0.2, (fp32, bf16)
    # FLOPs are counted in the model's own shapes on the meta device: precision/layout do not matter
    assert fp32.flops_train == bf16.flops_train > 0


def test_flop_counts_independent_of_channels_last_and_autocast():
    model = Classifier(make_backbone("small_convnet"), nn.Linear(256, 5))
    plain = count_train_step(model, (4, 3, 32, 32), (4,), F.cross_entropy)
    nhwc = Classifier(make_backbone("small_convnet"), nn.Linear(256, 5))
    prepare_model(nhwc, RecipeConfig(channels_last=True, precision="bf16"), "cpu")
    assert nhwc.backbone.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert count_train_step(nhwc, (4, 3, 32, 32), (4,), F.cross_entropy) == plain
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert count_train_step(model, (4, 3, 32, 32), (4,), F.cross_entropy) == plain


def test_recipe_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        RecipeConfig(precision="fp8")


def test_gpu_benchmark_smoke_on_cpu():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_gpu.py"), "--device", "cpu", "--small", "--steps", "2",
         "--warmup", "1", "--batch-size", "8", "--no-compile", "--matmul-size", "256"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for label in ("fp32 eager", "bf16 eager", "loader alone", "bf16 matmul peak"):
        assert label in out, out
    rows = [line for line in out.splitlines() if line.startswith("| fp32 eager") or line.startswith("| bf16 eager")]
    assert len(rows) == 2
    for row in rows:
        images_per_second = float(row.split("|")[2])
        assert images_per_second > 0
    assert time.monotonic() - started < 60


def test_distillation_learners_honour_prefetch_precision_and_channels_last(tmp_path, data_dir):
    # comformer/muhdi train through learners/_distillation.train_loop, which takes the recipe's
    # execution options from the shared ones: prefetching gives the same weights as synchronous
    # batches, and bf16 + channels-last really change the arithmetic (so they are not ignored).
    from nevis_bench.run import runner
    from nevis_bench.run.checkpoint import load as load_checkpoint

    def backbone(name, **options):
        values = {
            "stream": "synthetic-class-incremental", "learner": "comformer", "runs_dir": str(tmp_path / "runs"),
            "data_dir": str(data_dir), "progress": False, "run_name": name,
            "stream_options": {"tasks": 2, "classes_per_task": 2, "train_per_class": 8, "eval_per_class": 4},
            "learner_config": {"max_steps": 4, "min_steps": 4, "input_size": 16, "batch_size": 8, **options},
        }
        run_dir, evaluator = runner.start(values)
        assert evaluator.run() == "complete"
        return load_checkpoint(run_dir.checkpoint_path)["learner_state"]["backbone"]

    sync, prefetched = backbone("sync", prefetch=0), backbone("prefetch", prefetch=2)
    assert all(torch.equal(sync[k], prefetched[k]) for k in sync)
    bf16 = backbone("bf16", precision="bf16", channels_last=True)
    assert all(torch.isfinite(v).all() for v in bf16.values() if v.is_floating_point())
    assert not all(torch.equal(sync[k], bf16[k]) for k in sync)
