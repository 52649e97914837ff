"""FLOP audit: measure an event's compute with ``FlopCounterMode`` and compare it with what was reported.

Learners report their own FLOPs (``ResourceUsage``), usually from counts made once per shape on the
``meta`` device. The audit checks those reports against the real tensors: it replays the run up to
the audited event, runs the event once to warm the learner's FLOP cache (so no counting on ``meta``
copies happens during the measurement), then runs it again from the same state under
``FlopCounterMode`` and compares the measured total with the reported FLOPs of the event's phase
(train + search + selection for a train event, inference for a predict event).

The measured run gets an empty frozen-encoder feature cache, so features a learner would read back
from disk are computed and measured. The audit is a lower bound: work the counter cannot see
(scikit-learn, numpy, elementwise optimiser updates) is not measured, so a learner may report more
than was measured, never materially less.
``TOLERANCE`` allows for the few counted operations a learner's per-shape count legitimately leaves
out (a loss reduction, a normalisation).
"""

from __future__ import annotations

import dataclasses
import pathlib
import tempfile
from dataclasses import dataclass
from typing import Any

from torch.utils.flop_counter import FlopCounterMode

from nevis_bench.protocol import Learner
from nevis_bench.records.schema import accounted_flops
from nevis_bench.run import checkpoint as ckpt
from nevis_bench.run.context import EventData

TOLERANCE = 0.05  # reported may be up to 5% below measured


@dataclass(frozen=True)
class AuditResult:
    event_index: int
    phase: str  # "train" (train + search + selection) or "inference"
    reported: float
    measured: float

    @property
    def passed(self) -> bool:
        return self.reported >= (1.0 - TOLERANCE) * self.measured

    def describe(self) -> str:
        ratio = f"{self.reported / self.measured:.3f}" if self.measured else "n/a"
        verdict = "ok" if self.passed else f"UNDER-REPORTED (more than {TOLERANCE:.0%} below the measurement)"
        return (f"event {self.event_index} ({self.phase}): reported {self.reported:.4g} FLOPs, measured "
                f"{self.measured:.4g} with FlopCounterMode, ratio {ratio}: {verdict}")


def audit_events(evaluator: Any, indices: list[int]) -> list[AuditResult]:
    """Audit the events ``indices`` of ``evaluator``'s stream, replaying the events before each.

    ``evaluator`` is a :class:`nevis_bench.run.evaluator.Evaluator` whose run directory is only read
    (nothing is recorded or checkpointed): the replay starts from ``learner.init()``.
    """
    from nevis_bench.run.evaluator import Totals, run_event

    learner: Learner = evaluator.learner
    evaluator.data.prepare(progress=False)

    def replay(event, state, features_root=None):
        # Nothing is written: within-event checkpoints of the replay go nowhere.
        ctx = dataclasses.replace(evaluator._context(event, state, Totals(), None), write_checkpoint=lambda _: None)
        if features_root is not None:
            ctx.data = EventData(evaluator.data, event, features_root)
        return run_event(learner, event, state, ctx, evaluator.data, Totals(), "audit")

    state = learner.init()
    results = []
    wanted = sorted(set(indices))
    for event in evaluator.events[: wanted[-1] + 1]:
        if event.index in wanted:
            replay(event, ckpt.round_trip(state))  # warms the FLOP cache: no meta-device counting below
            # An empty feature cache: frozen-encoder features are computed (and measured), not read back.
            with tempfile.TemporaryDirectory() as features, FlopCounterMode(display=False) as counter:
                _, record, _ = replay(event, ckpt.round_trip(state), pathlib.Path(features))
            phase = "train" if record.event_type == "train" else "inference"
            reported = accounted_flops(record.to_dict())
            results.append(AuditResult(event.index, phase, reported, float(counter.get_total_flops())))
        state, _, _ = replay(event, state)
    return results


def audit_run(run_dir: str, event_index: int) -> tuple[AuditResult, float]:
    """Audit event ``event_index`` of a recorded run: (the audit, the FLOPs its record holds).

    The learner is rebuilt from the run's ``config.json`` and the stream replayed up to the event.
    """
    from nevis_bench.records.reader import read_events
    from nevis_bench.run import runner
    from nevis_bench.run.config import ConfigError

    records = {e["event_index"]: e for e in read_events(run_dir)}
    if event_index not in records:
        raise ConfigError(f"{run_dir} has no recorded event {event_index}; it has events 0 to {len(records) - 1}")
    _, evaluator = runner.reopen(run_dir, progress=False)
    evaluator.sinks = []
    (result,) = audit_events(evaluator, [event_index])
    return result, accounted_flops(records[event_index])
