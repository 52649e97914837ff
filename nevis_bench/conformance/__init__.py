"""The conformance kit every learner passes: named checks, each selectable, all failures reported.

Checks (``CHECKS``, in order):

* ``protocol_types``: ``init``/``train``/``predict`` exist, and ``init()``'s state is plain data
  (it survives ``torch.save`` + a ``weights_only`` load unchanged);
* ``plain_state``: the state after the stream survives the same round-trip;
* ``reports_flops``: every train event has headline FLOPs > 0 and every predict event inference
  FLOPs > 0;
* ``flop_audit``: the first train event and its predict event, run on the real tensors under
  ``FlopCounterMode``, measure no more than the learner reported (``nevis_bench.run.audit``);
* ``deterministic``: two runs with the same seed give identical records (wall times aside);
* ``resume_mid_event``: a run stopped at its first within-event checkpoint resumes to the records of
  the uninterrupted run. A learner that never checkpoints inside an event declares
  ``checkpoints_within_event = False``; the check then verifies that it indeed never does;
* ``resume_after_event``: the same after a stop at the first event boundary;
* ``host_syncs``: no training step makes more than one host sync (``item``, ``tolist``, ``cpu``,
  ... from the learner's code; :mod:`nevis_bench.conformance.host_syncs` says what counts).

In a test, one case per (learner, check), like scikit-learn's ``parametrize_with_checks``::

    @pytest.mark.parametrize("check", CHECKS)
    def test_my_learner(check, tmp_path):
        run_check("my_learner", check, tmp_path, overrides={"max_steps": 10})

or everything at once with :func:`check_learner`, which raises one :class:`ConformanceError`
listing every failing check. ``nevis_bench.conformance.cheaters`` holds the learners that try to
break the protocol; the kit's own tests show each is refused.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from nevis_bench.conformance.host_syncs import CountingLearner, SyncCounter
from nevis_bench.protocol import Learner
from nevis_bench.records.schema import accounted_flops
from nevis_bench.run import checkpoint as ckpt
from nevis_bench.run import runner
from nevis_bench.run.evaluator import StopControl

VOLATILE_FIELDS = ("wall_seconds", "run_id")


class ConformanceError(AssertionError):
    pass


def comparable(events: list[dict]) -> list[dict]:
    """Records without the fields that legitimately differ between runs."""
    return [{k: v for k, v in e.items() if k not in VOLATILE_FIELDS} for e in events]


def states_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


@dataclass
class LearnerUnderTest:
    """One learner with its settings; runs shared by several checks are made once and kept."""

    name: str
    workdir: pathlib.Path
    overrides: dict[str, Any] = field(default_factory=dict)
    stream: str = "synthetic-debug"
    seed: int = 0
    learner_module: str | None = None
    data_dir: pathlib.Path | None = None
    _reference: Any = field(default=None, repr=False)
    notes: dict[str, Any] = field(default_factory=dict)

    def values(self, run: str) -> dict:
        return {
            "stream": self.stream, "learner": self.name, "seed": self.seed, "runs_dir": str(self.workdir / "runs"),
            "data_dir": str(self.data_dir or self.workdir / "data"), "run_name": run, "final_eval": True,
            "progress": False, "checkpoint_every_steps": 3, "checkpoint_every_seconds": 1e9,
            "learner_config": dict(self.overrides), "learner_module": self.learner_module,
        }

    def learner(self) -> Learner:
        return runner.validate(self.values("probe")).learner

    def reference(self):
        """The run directory of an uninterrupted run (made on first use)."""
        if self._reference is None:
            counter = SyncCounter()  # the host_syncs check reads what this run counted
            with counter:
                run_dir, evaluator = runner.start(self.values("reference"),
                                                  learner=CountingLearner(self.learner(), counter))
                status = evaluator.run()
            self.notes["host_syncs_per_step"] = list(counter.steps)
            if status != "complete":
                raise ConformanceError(f"{self.name}: the reference run did not complete")
            self._reference = run_dir
        return self._reference

    def reference_events(self) -> list[dict]:
        return self.reference().read_events()


def _fail(message: str) -> None:
    raise ConformanceError(message)


def check_protocol_types(subject: LearnerUnderTest) -> None:
    learner = subject.learner()
    if not isinstance(learner, Learner):
        _fail(f"{subject.name}: the factory must return an object with init, train and predict")
    try:
        initial = learner.init()
        if not states_equal(initial, ckpt.round_trip(initial)):
            _fail(f"{subject.name}: init() state changes in a checkpoint round-trip")
    except ckpt.CheckpointError as error:
        _fail(f"{subject.name}: init() state is not plain data: {error}")


def check_plain_state(subject: LearnerUnderTest) -> None:
    saved = ckpt.load(subject.reference().checkpoint_path)["learner_state"]
    if not states_equal(saved, ckpt.round_trip(saved)):
        _fail(f"{subject.name}: the state after the stream changes in a checkpoint round-trip")


def check_reports_flops(subject: LearnerUnderTest) -> None:
    for e in subject.reference_events():
        if not accounted_flops(e) > 0:
            what = "FLOPs" if e["event_type"] == "train" else "inference FLOPs"
            _fail(f"{subject.name}: {e['event_type']} event {e['event_index']} reports no {what}")


def check_flop_audit(subject: LearnerUnderTest) -> None:
    from nevis_bench.run.audit import audit_events

    _, evaluator = runner.start(subject.values("flop-audit"))
    evaluator.sinks = []
    results = audit_events(evaluator, [0, 1])  # the first train event and its predict event
    subject.notes["flop_audit"] = results
    failed = [r.describe() for r in results if not r.passed]
    if failed:
        _fail(f"{subject.name}: FLOP audit failed: " + "; ".join(failed))


def check_deterministic(subject: LearnerUnderTest) -> None:
    run_dir, evaluator = runner.start(subject.values("repeat"))
    evaluator.run()
    if comparable(run_dir.read_events()) != comparable(subject.reference_events()):
        _fail(f"{subject.name}: two runs with seed {subject.seed} gave different records")


def check_resume_mid_event(subject: LearnerUnderTest) -> None:
    declared = getattr(subject.learner(), "checkpoints_within_event", True)
    stop = StopControl(stop_after_checkpoints=1)
    run_dir, evaluator = runner.start(subject.values("stopped-mid-event"), stop)
    status = evaluator.run()
    subject.notes["within_event_checkpoints"] = stop.checkpoints_done
    if not declared:
        if status != "complete" or stop.checkpoints_done:
            _fail(f"{subject.name}: declares checkpoints_within_event = False but checkpointed inside an event")
        return
    if status != "interrupted":
        _fail(f"{subject.name}: never checkpointed inside an event; call ctx.checkpoint in long loops, or declare "
              "checkpoints_within_event = False on the learner")
    run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
    if evaluator.run() != "complete":
        _fail(f"{subject.name}: resuming after a mid-event stop did not complete")
    if comparable(run_dir.read_events()) != comparable(subject.reference_events()):
        _fail(f"{subject.name}: records after a mid-event stop and resume differ from an uninterrupted run")


def check_resume_after_event(subject: LearnerUnderTest) -> None:
    run_dir, evaluator = runner.start(subject.values("stopped-after-event"), StopControl(stop_after_events=1))
    if evaluator.run() != "interrupted":
        _fail(f"{subject.name}: a stop request after the first event was not honoured")
    run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
    evaluator.run()
    if comparable(run_dir.read_events()) != comparable(subject.reference_events()):
        _fail(f"{subject.name}: records after an event-boundary stop and resume differ from an uninterrupted run")


def check_host_syncs(subject: LearnerUnderTest) -> None:
    subject.reference()
    steps = subject.notes["host_syncs_per_step"]  # counted during the reference run
    if steps and max(steps) > 1:
        worst = max(steps)
        _fail(f"{subject.name}: a training step made {worst} host syncs (item/tolist/cpu/float/bool of a tensor); "
              f"at most 1 per step: keep losses and diagnostics on the device and read them once after the loop")


CHECKS: dict[str, Callable[[LearnerUnderTest], None]] = {
    "protocol_types": check_protocol_types,
    "plain_state": check_plain_state,
    "reports_flops": check_reports_flops,
    "flop_audit": check_flop_audit,
    "deterministic": check_deterministic,
    "resume_mid_event": check_resume_mid_event,
    "resume_after_event": check_resume_after_event,
    "host_syncs": check_host_syncs,
}

_SUBJECTS: dict[tuple, LearnerUnderTest] = {}


def subject_for(name: str, workdir: str | pathlib.Path, **settings) -> LearnerUnderTest:
    """The :class:`LearnerUnderTest` for ``name`` and ``settings``, shared across checks in a process
    (so the reference run is made once); ``workdir`` is used by the first call."""
    key = (name, repr(sorted(settings.items())))
    if key not in _SUBJECTS:
        _SUBJECTS[key] = LearnerUnderTest(name, pathlib.Path(workdir), **settings)
    return _SUBJECTS[key]


def run_check(name: str, check: str, workdir: str | pathlib.Path, **settings) -> LearnerUnderTest:
    """Run one named check on learner ``name``; raises ConformanceError when it fails."""
    if check not in CHECKS:
        raise KeyError(f"unknown check {check!r}; checks: {', '.join(CHECKS)}")
    subject = subject_for(name, workdir, **settings)
    CHECKS[check](subject)
    return subject


def check_learner(name: str, workdir: str | pathlib.Path, checks: list[str] | None = None,
                  **settings) -> LearnerUnderTest:
    """Run every check (or ``checks``) and raise one ConformanceError listing all that failed."""
    subject = LearnerUnderTest(name, pathlib.Path(workdir), **settings)
    failures = []
    for check in checks or list(CHECKS):
        try:
            CHECKS[check](subject)
        except ConformanceError as error:
            failures.append(f"  {check}: {error}")
    if failures:
        raise ConformanceError(f"{name} failed {len(failures)} check(s):\n" + "\n".join(failures))
    return subject
