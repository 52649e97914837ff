"""The conformance kit every learner passes: ``check_learner(name)``.

It runs the learner on a small synthetic stream several times and checks:

1. protocol types: ``init``/``train``/``predict`` exist; ``init()``'s state and the state after every
   event survive a checkpoint round-trip (``torch.save`` + ``weights_only`` load: plain data);
2. FLOPs are reported: every train event has headline FLOPs > 0, every predict event inference
   FLOPs > 0, all finite and non-negative;
3. determinism: two runs with the same seed give identical records (wall times aside);
4. kill-and-resume: a run stopped at the first within-event checkpoint (when the learner takes one)
   and a run stopped after its first event both resume to exactly the records of the
   uninterrupted run.

Use it in a test::

    from nevis_bench.conformance import check_learner
    def test_my_learner(tmp_path):
        check_learner("my_learner", tmp_path, overrides={"max_steps": 10})
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import torch

from nevis_bench.run import checkpoint as ckpt
from nevis_bench.run import runner
from nevis_bench.run.evaluator import StopControl
from nevis_bench.protocol import Learner

VOLATILE_FIELDS = ("wall_seconds", "run_id")


class ConformanceError(AssertionError):
    pass


@dataclass
class ConformanceReport:
    learner: str
    events: int
    within_event_checkpoints: int
    resumed_mid_event: bool


def comparable(events: list[dict]) -> list[dict]:
    """Records without the fields that legitimately differ between runs."""
    return [{k: v for k, v in e.items() if k not in VOLATILE_FIELDS} for e in events]


def _states_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_states_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _values(name: str, root: pathlib.Path, run: str, stream: str, seed: int, overrides: dict,
            learner_module: str | None, data_dir: pathlib.Path) -> dict:
    return {
        "stream": stream, "learner": name, "seed": seed, "runs_dir": str(root / "runs"),
        "data_dir": str(data_dir), "run_name": run, "final_eval": True, "progress": False,
        "checkpoint_every_steps": 3, "checkpoint_every_seconds": 1e9, "learner_config": dict(overrides),
        "learner_module": learner_module,
    }


def check_learner(
    name: str,
    workdir: str | pathlib.Path,
    overrides: dict[str, Any] | None = None,
    stream: str = "synthetic-debug",
    seed: int = 0,
    learner_module: str | None = None,
    data_dir: str | pathlib.Path | None = None,
) -> ConformanceReport:
    """Run the conformance checks for learner ``name``; raises ConformanceError on the first failure."""
    root = pathlib.Path(workdir)
    data = pathlib.Path(data_dir) if data_dir else root / "data"
    overrides = overrides or {}

    def values(run: str) -> dict:
        return _values(name, root, run, stream, seed, overrides, learner_module, data)

    # 1. protocol types and plain-data state
    prepared = runner.validate(values("probe"))
    learner = prepared.learner
    if not isinstance(learner, Learner):
        raise ConformanceError(f"{name}: the factory must return an object with init, train and predict")
    try:
        initial = learner.init()
        if not _states_equal(initial, ckpt.round_trip(initial)):
            raise ConformanceError(f"{name}: init() state changes in a checkpoint round-trip")
    except ckpt.CheckpointError as error:
        raise ConformanceError(f"{name}: init() state is not plain data: {error}") from error

    # 2. a reference run
    run_dir, evaluator = runner.start(values("reference"))
    if evaluator.run() != "complete":
        raise ConformanceError(f"{name}: the reference run did not complete")
    reference = run_dir.read_events()
    saved = ckpt.load(run_dir.checkpoint_path)["learner_state"]
    if not _states_equal(saved, ckpt.round_trip(saved)):
        raise ConformanceError(f"{name}: final state changes in a checkpoint round-trip")
    for e in reference:
        if e["event_type"] == "train" and not e["flops_train"] + e["flops_search"] + e["flops_selection"] > 0:
            raise ConformanceError(f"{name}: train event {e['event_index']} reports no FLOPs")
        if e["event_type"] == "predict" and not e["flops_inference"] > 0:
            raise ConformanceError(f"{name}: predict event {e['event_index']} reports no inference FLOPs")

    # 3. determinism
    run_dir, evaluator = runner.start(values("repeat"))
    evaluator.run()
    if comparable(run_dir.read_events()) != comparable(reference):
        raise ConformanceError(f"{name}: two runs with seed {seed} gave different records")

    # 4a. stop at the first within-event checkpoint, then resume
    stop = StopControl(stop_after_checkpoints=1)
    run_dir, evaluator = runner.start(values("stopped-mid-event"), stop)
    status = evaluator.run()
    mid_event = status == "interrupted"
    checkpoints = stop.checkpoints_done
    if mid_event:
        run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
        if evaluator.run() != "complete":
            raise ConformanceError(f"{name}: resuming after a mid-event stop did not complete")
    if comparable(run_dir.read_events()) != comparable(reference):
        raise ConformanceError(f"{name}: records after a mid-event stop and resume differ from an uninterrupted run")

    # 4b. stop after the first event, then resume
    run_dir, evaluator = runner.start(values("stopped-after-event"), StopControl(stop_after_events=1))
    if evaluator.run() != "interrupted":
        raise ConformanceError(f"{name}: a stop request after the first event was not honoured")
    run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
    evaluator.run()
    if comparable(run_dir.read_events()) != comparable(reference):
        raise ConformanceError(f"{name}: records after an event-boundary stop and resume differ from an uninterrupted run")

    return ConformanceReport(name, len(reference), checkpoints, mid_event)
