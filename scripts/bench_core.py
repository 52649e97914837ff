"""Core benchmarks of the harness; writes results/benchmarks/core.md.

(a) Harness overhead: the evaluator running ``independent`` on a synthetic stream, against a bare
    PyTorch loop that does the same optimisation steps, validations and predictions on the same
    cached arrays with the same model, batches and augmentation (target: at most 1.10x).
(b) FLOP-counting overhead: time spent inside the FLOP counter during (a), relative to the rest of
    the run (target: at most 2%).
(c) Cache read throughput: images/s from the memory-mapped cache to torch tensors (with and without
    augmentation), against the small convnet's training speed (target: at least 20x).
(d) Wall time of the default ``nevis-bench run`` (no arguments) on this machine, from an empty data
    directory, generation included (target: at most 10 minutes).
(e) Cache verification: the time a run spends checking its cached tasks (shapes, dtypes, label range
    and the SHA-256 of every array, once per process per task) for every task of
    ``synthetic-short`` (all years, more than the default run uses), best of 3 with the process's
    memo cleared, relative to the default run's wall time (d) (target: under 3%).

Usage: python scripts/bench_core.py [--stream synthetic-tiny] [--skip-default-run] [--verification-only]
(``--verification-only`` measures (e) alone and updates its row in the existing report, against the
default run's time recorded there.)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.data import cache as cache_module
from nevis_bench.data.loader import AugmentConfig, TrainBatches, eval_batches
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.learner_kit.models import Classifier, make_backbone
from nevis_bench.learner_kit.training import learning_rate_at, step_budget
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS, STREAMS
from nevis_bench.run import runner
from nevis_bench.stream import StreamData

REPO = pathlib.Path(__file__).resolve().parents[1]


class TimedFlopCounter(FlopCounter):
    """A FlopCounter that also measures the time spent counting."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def forward(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().forward(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def train_step(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().train_step(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def harness_run(stream: str, data_dir: str, runs_dir: str):
    run_dir, evaluator = runner.start({
        "stream": stream, "learner": "independent", "data_dir": data_dir, "runs_dir": runs_dir,
        "progress": False, "run_name": f"bench-{time.time_ns()}",
    })
    evaluator.flops = TimedFlopCounter()
    evaluator.data.prepare(progress=False)
    start = time.perf_counter()
    assert evaluator.run() == "complete"
    return time.perf_counter() - start, evaluator, run_dir.read_events()


def bare_loop(evaluator, events) -> float:
    """The same training, validation and prediction work in a plain PyTorch loop."""
    recipe = LEARNERS.get("independent").config_class()
    data = evaluator.data
    infos = {e["event_index"]: e["learner_info"] for e in events if e["event_type"] == "train"}
    start = time.perf_counter()
    for event in evaluator.events:
        task = event.task
        if event.index in infos:
            info = infos[event.index]
            torch.manual_seed(event.index)
            model = Classifier(make_backbone(recipe.backbone), nn.Linear(256, task.num_classes))
            train, dev = data.split(task.key, "train"), data.split(task.key, "dev")
            batches = TrainBatches(train, recipe.batch_size, recipe.augment, seed=event.index)
            total = step_budget(recipe, len(train))
            warmup = min(total - 1, round(recipe.warmup_epochs * batches.steps_per_epoch))
            decay = [p for p in model.parameters() if p.ndim > 1]
            other = [p for p in model.parameters() if p.ndim <= 1]
            optimizer = torch.optim.SGD([{"params": decay, "weight_decay": recipe.weight_decay},
                                         {"params": other, "weight_decay": 0.0}],
                                        lr=recipe.learning_rate, momentum=0.9, nesterov=True)
            loss_fn = F.binary_cross_entropy_with_logits if task.kind == MULTI_LABEL else F.cross_entropy
            validations_left = info["validations"]
            period = max(1, info["steps"] // max(1, info["validations"] - 1))
            model.train()
            for step in range(info["steps"]):
                if step % period == 0 and validations_left > 1:
                    _forward_all(model, dev, recipe)
                    validations_left -= 1
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate_at(step, total, warmup, recipe.learning_rate)
                x, y = batches.batch(step)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            for _ in range(validations_left):
                _forward_all(model, dev, recipe)
        else:
            _forward_all(model_for_predict(recipe, task), data.split(task.key, event.split), recipe)
    return time.perf_counter() - start


def model_for_predict(recipe, task):
    return Classifier(make_backbone(recipe.backbone), nn.Linear(256, task.num_classes))


@torch.no_grad()
def _forward_all(model, split, recipe):
    model.eval()
    for _, x, _ in eval_batches(split, recipe.eval_batch_size, recipe.input_size):
        torch.softmax(model(x), 1).numpy()
    model.train()


def cache_throughput(evaluator) -> dict[str, float]:
    key = max(evaluator.data.task_keys(), key=lambda k: len(evaluator.data.split(k, "train")))
    split = evaluator.data.split(key, "train")
    results = {}
    for name, config in (("augmented", AugmentConfig()), ("plain", AugmentConfig(random_crop=False, flip=False))):
        batches = TrainBatches(split, 128, config, seed=0)
        steps = 200
        start = time.perf_counter()
        for step in range(steps):
            batches.batch(step)
        results[name] = steps * batches.batch_size / (time.perf_counter() - start)
    model = Classifier(make_backbone("small_convnet"), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    for _ in range(3):
        F.cross_entropy(model(x), y).backward()
    steps = 30
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    results["train"] = steps * 128 / (time.perf_counter() - start)
    results["task"] = key
    results["task_size"] = len(split)
    return results


def verification_seconds(stream_name: str = "synthetic-short", repeats: int = 3) -> dict:
    """Seconds to check every cached task of ``stream_name`` as a run does on first use (best of ``repeats``)."""
    stream = STREAMS.get(stream_name).factory()
    with tempfile.TemporaryDirectory() as folder:
        StreamData(stream, 10_000, folder, 32).prepare(progress=False)
        times = []
        for _ in range(repeats):
            cache_module.forget_checks()
            data = StreamData(stream, 10_000, folder, 32)
            start = time.perf_counter()
            for key in data.task_keys():
                data.task(key)
            times.append(time.perf_counter() - start)
        size = sum(f.stat().st_size for f in pathlib.Path(folder, "cache").rglob("*.npy"))
        tasks = len(list(data.task_keys()))
    return {"seconds": min(times), "bytes": size, "tasks": tasks, "stream": stream_name}


def default_run_seconds() -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as folder:
        # The console script of this interpreter's environment, also when that is not on PATH.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        env = {**os.environ, "PATH": path, "NEVIS_BENCH_DATA_DIR": os.path.join(folder, "data")}
        start = time.perf_counter()
        result = subprocess.run(["nevis-bench", "run", "--quiet"], cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"default run failed: {result.stderr[-2000:]}")
        average = [line for line in result.stdout.splitlines() if line.startswith("average error")]
        return seconds, (average[0] if average else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", default="synthetic-tiny")
    parser.add_argument("--skip-default-run", action="store_true")
    parser.add_argument("--output", default=str(REPO / "results" / "benchmarks" / "core.md"))
    parser.add_argument("--verification-only", action="store_true",
                        help="measure (e) only and update it in the existing report (against its (d))")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.verification_only:
        update_verification(args.output, verification_seconds())
        return

    with tempfile.TemporaryDirectory() as folder:
        data_dir, runs_dir = os.path.join(folder, "data"), os.path.join(folder, "runs")
        harness_runs, bare_runs = [], []
        for _ in range(2):  # alternate to spread machine noise over both
            seconds, evaluator, events = harness_run(args.stream, data_dir, runs_dir)
            harness_runs.append((seconds, evaluator.flops.seconds))
            bare_runs.append(bare_loop(evaluator, events))
        throughput = cache_throughput(evaluator)
    harness = min(s for s, _ in harness_runs)
    counting = min(c for _, c in harness_runs)
    bare = min(bare_runs)
    verification = verification_seconds()
    write_report(args, harness, counting, bare, throughput, None)  # (a)-(c) are kept even if (d) is stopped
    if not args.skip_default_run:
        write_report(args, harness, counting, bare, throughput, default_run_seconds())
        update_verification(args.output, verification)


def verification_lines(verification: dict, default_seconds: float) -> tuple[str, list[str]]:
    ratio = verification["seconds"] / default_seconds
    row = (
        f"| (e) cache verification, every task of `{verification['stream']}` / default run (d) | "
        f"{verification['seconds']:.2f} s / {default_seconds:.0f} s = **{100 * ratio:.2f}%** | < 3% | "
        f"{'yes' if ratio < 0.03 else 'no'} |"
    )
    note = [
        f"- (e) times checking every cached task of {verification['stream']} ({verification['tasks']} tasks, "
        f"{verification['bytes'] / 1e6:.0f} MB of arrays, all years)",
        "  as a run does on first use: shapes, dtypes, label range and the SHA-256 of every array, once per process",
        "  per task (best of 3, page cache warm as after generation; the default run checks only the tasks before",
        f"  2020). Measured on {time.strftime('%Y-%m-%d')} with `python scripts/bench_core.py --verification-only`.",
    ]
    return row, note


def update_verification(output: str, verification: dict) -> None:
    """Put the (e) row and note into the report at ``output``, against the (d) time it records."""
    path = pathlib.Path(output)
    lines = [l for l in path.read_text().splitlines() if not l.startswith("| (e)")]
    drop = next((i for i, l in enumerate(lines) if l.startswith("- (e)")), None)
    if drop is not None:  # the old note: its first line and the indented ones that follow
        end = drop + 1
        while end < len(lines) and lines[end].startswith("  "):
            end += 1
        del lines[drop:end]
    d_row = next((i for i, l in enumerate(lines) if l.startswith("| (d)")), None)
    if d_row is None:
        raise SystemExit(f"{output} records no default run (d); run the full benchmark first")
    default_seconds = float(re.search(r"\(([\d.]+) s\)", lines[d_row]).group(1))
    row, note = verification_lines(verification, default_seconds)
    lines.insert(d_row + 1, row)
    lines += note
    path.write_text("\n".join(lines) + "\n")
    print(row)
    print("\n".join(note))


def write_report(args, harness, counting, bare, throughput, default) -> None:
    lines = [
        "# Core benchmarks",
        "",
        f"Produced by `python scripts/bench_core.py` on {time.strftime('%Y-%m-%d')}; machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads. Best of 2 runs each. "
        f"Load average (1 min) when written: {os.getloadavg()[0]:.1f} (other processes on the machine slow every timing).",
        "",
        "| measurement | value | target | met |",
        "|---|---|---|---|",
        f"| (a) harness / bare PyTorch loop, `independent` on `{args.stream}` | {harness:.1f} s / {bare:.1f} s = **{harness / bare:.3f}x** | <= 1.10x | {'yes' if harness / bare <= 1.10 else 'no'} |",
        f"| (b) FLOP counting time / rest of the run | {counting:.2f} s / {harness - counting:.1f} s = **{100 * counting / (harness - counting):.2f}%** | <= 2% | {'yes' if counting / (harness - counting) <= 0.02 else 'no'} |",
        f"| (c) cache -> torch, augmented batches of 128 | **{throughput['augmented']:,.0f} img/s** = {throughput['augmented'] / throughput['train']:.0f}x training speed | >= 20x | {'yes' if throughput['augmented'] / throughput['train'] >= 20 else 'no'} |",
        f"| (c) cache -> torch, plain batches of 128 | {throughput['plain']:,.0f} img/s = {throughput['plain'] / throughput['train']:.0f}x training speed | | |",
        f"| (c) small convnet training speed, batch 128, 32x32 | {throughput['train']:,.0f} img/s | | |",
    ]
    if default is not None:
        lines.append(
            f"| (d) default `nevis-bench run`, empty data directory | **{default[0] / 60:.1f} min** ({default[0]:.0f} s) | <= 10 min | {'yes' if default[0] <= 600 else 'no'} |"
        )
    lines += [
        "",
        "Notes:",
        "- (a) times `Evaluator.run()` after the task cache exists; the bare loop does the same steps, validations and",
        "  predictions with the same batches and augmentation, without records, checkpoints, FLOP counting or TensorBoard.",
        f"- (c) reads the largest training split of the stream ({throughput['task']}, {throughput['task_size']} images).",
    ]
    if default is not None:
        lines.append(f"- (d) includes generating the synthetic task cache; the run printed: `{default[1]}`.")
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
