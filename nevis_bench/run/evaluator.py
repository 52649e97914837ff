"""The evaluator: runs a stream's events through a learner and records everything.

The loop is small and functional: each event goes through :func:`run_event` (learner call, scoring,
one :class:`EventRecord`), and the record goes out to the sinks passed in (the run directory first,
then TensorBoard or any other observer). The learner sees the event's data through a scoped
:class:`nevis_bench.run.context.EventData`.

* After every event: the event's record is appended to ``events.jsonl`` (flushed, fsynced), then an
  atomic checkpoint ``checkpoints/latest.pt`` holds the learner state, the number of completed events
  and the running totals, then ``summary.json`` is rewritten.
* Inside a train event the learner may call ``ctx.checkpoint(state)``; the checkpoint then also holds
  that within-event state, and a resumed run hands it back as ``ctx.resume_state``.
* Resume: records beyond the checkpoint (an event that finished but was not checkpointed) are
  moved to ``events.superseded.jsonl`` and redone, so a resumed run's records equal an uninterrupted
  run's (wall times aside) and no record is deleted. Records without a checkpoint that covers them
  stop the resume (``--restart`` moves them aside).
* SIGTERM/SIGINT set a stop flag: the learner checkpoints at its next step, or the evaluator after
  the current event, then the run ends with status ``interrupted``. A second SIGINT stops at once.
* A failure (a diverging loss, a bad dataset) is written to ``summary.json`` as ``failed`` with its
  message; every record and checkpoint written before it stays, and the run can be resumed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.protocol import MULTI_LABEL, Event, Learner, PredictEvent, Predictions, ResourceUsage, TrainEvent, state_bytes
from nevis_bench.records import metrics
from nevis_bench.records.schema import FAILED, FINISHED, INTERRUPTED, RUNNING, EventRecord, RunSummary
from nevis_bench.run import checkpoint as ckpt
from nevis_bench.run.config import RunConfig, config_id
from nevis_bench.run.context import EventData, LearnerContext, RunInterrupted
from nevis_bench.run.run_dir import RecordSink, RunDirectory, TensorBoardSink
from nevis_bench.stream import Stream, StreamData

CHECKPOINT_VERSION = 1


class PredictionError(RuntimeError):
    """A learner's predictions do not cover the split exactly once or have the wrong shape."""


@dataclass
class Totals:
    cumulative_flops: float = 0.0
    cumulative_flops_inference: float = 0.0
    peak_parameter_count: int = 0
    peak_parameter_bytes: int = 0

    def add(self, usage: ResourceUsage) -> None:
        self.cumulative_flops += usage.headline_flops
        self.cumulative_flops_inference += usage.flops_inference
        self.peak_parameter_count = max(self.peak_parameter_count, usage.peak_parameter_count)
        self.peak_parameter_bytes = max(self.peak_parameter_bytes, usage.peak_parameter_bytes)


@dataclass
class StopControl:
    """Stop requests from signals, or from tests that simulate a preemption at a chosen point."""

    stop_after_events: int | None = None  # events completed in this process
    stop_after_checkpoints: int | None = None  # within-event checkpoints written in this process
    requested: bool = False
    events_done: int = 0
    checkpoints_done: int = 0
    signals_seen: int = field(default=0, repr=False)

    def after_event(self) -> None:
        self.events_done += 1
        if self.stop_after_events is not None and self.events_done >= self.stop_after_events:
            self.requested = True

    def after_checkpoint(self) -> None:
        self.checkpoints_done += 1
        if self.stop_after_checkpoints is not None and self.checkpoints_done >= self.stop_after_checkpoints:
            self.requested = True


class Evaluator:
    def __init__(
        self,
        run_dir: RunDirectory,
        config: RunConfig,
        stream: Stream,
        learner: Learner,
        stop: StopControl | None = None,
        sinks: Sequence[RecordSink] | None = None,
    ):
        self.run_dir = run_dir
        self.config = config
        self.stream = stream
        self.learner = learner
        self.stop = stop or StopControl()
        # Records go to the run directory first (the source of truth), then to the other sinks.
        self.sinks: list[RecordSink] = [run_dir, *(sinks if sinks is not None else [TensorBoardSink(run_dir.tensorboard_path)])]
        self.device = torch.device(config.device)
        self.events = stream.events(config.effective_stop_year, config.predict_split, config.final_eval)
        self.data = StreamData(stream, config.effective_stop_year, config.data_dir, config.image_size)
        self.flops = FlopCounter()
        self.records: list[dict[str, Any]] = []

    # -- checkpoints -------------------------------------------------------------------------

    def _save(self, completed: int, learner_state: Any, totals: Totals, within_event: Any = None) -> None:
        ckpt.save_atomic(
            {
                "version": CHECKPOINT_VERSION,
                "completed_events": completed,
                "learner_state": learner_state,
                "within_event": within_event,
                "totals": vars(totals).copy(),
            },
            self.run_dir.checkpoint_path,
        )

    def _restore(self, recorded: int) -> tuple[int, Any, Totals, Any]:
        """The state to continue from, checked against the ``recorded`` events: records are never
        dropped for want of a checkpoint that covers them."""
        path = self.run_dir.checkpoint_path
        restart = f"`nevis-bench resume {self.run_dir.path} --restart` starts again and moves the records aside"
        if not path.exists():
            # The first checkpoint is written right after the first record: one record without a
            # checkpoint is a crash between the two (the record is redone and kept as superseded).
            if recorded > 1:
                raise ckpt.CheckpointError(
                    f"{self.run_dir.path} holds {recorded} records but no checkpoint ({path} is missing), so the "
                    f"run cannot continue from them; the records are kept. {restart}"
                )
            return 0, self.learner.init(), Totals(), None
        saved = ckpt.load(path)
        if saved.get("version") != CHECKPOINT_VERSION:
            raise ckpt.CheckpointError(f"checkpoint {path} has unknown version {saved.get('version')}")
        if saved["completed_events"] > recorded:
            raise ckpt.CheckpointError(
                f"checkpoint {path} covers {saved['completed_events']} events but {self.run_dir.events_path} holds "
                f"only {recorded} records: records are missing. Restore events.jsonl, or {restart}"
            )
        return saved["completed_events"], saved["learner_state"], Totals(**saved["totals"]), saved["within_event"]

    # -- signals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            self.stop.signals_seen += 1
            if signum == signal.SIGINT and self.stop.signals_seen > 1:
                raise KeyboardInterrupt
            self.stop.requested = True

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # -- the loop ----------------------------------------------------------------------------

    def summary(self, status: str, error_message: str | None = None) -> RunSummary:
        config = self.config
        return RunSummary(
            run_id=self.run_dir.path.name,
            stream=config.stream,
            learner=config.learner,
            config_id=config_id(config.learner, config.learner_config),
            seed=config.seed,
            status=status,
            error_message=error_message,
            predict_split=config.predict_split,
            stop_year=config.effective_stop_year,
            num_events_planned=len(self.events),
            skipped=list(self.stream.skipped),
            **metrics.summarize(self.records),
        )

    def run(self, restart: bool = False) -> str:
        """Run (or resume) to the end; returns "complete" or "interrupted". Failures re-raise.

        One process at a time writes a run directory (its lock is held throughout). ``restart``:
        move the existing records aside (``previous-<n>/``) and start from the first event.
        """
        with self.run_dir.lock():
            self.run_dir.remove_stale_temporaries()
            if restart:
                self.run_dir.move_aside()
            self.data.check_available()
            recorded = self.run_dir.read_events()
            completed, state, totals, within_event = self._restore(len(recorded))
            self.run_dir.truncate_events(recorded, completed)
            self.records = recorded[:completed]  # kept in memory: the summary is rebuilt after every event
            self.run_dir.write_summary(self.summary(RUNNING))
            try:
                with self._signals():
                    self.data.prepare(progress=self.config.progress)
                    state = self._run_events(completed, state, totals, within_event)
            except RunInterrupted:
                self.run_dir.write_summary(self.summary(INTERRUPTED))
                return INTERRUPTED
            except BaseException as error:
                self._record_failure(error)
                raise
            finally:
                for sink in self.sinks:
                    sink.close()
            self.run_dir.write_summary(self.summary(FINISHED))
            return FINISHED

    def _record_failure(self, error: BaseException) -> None:
        """Mark the summary failed with the error; when even that cannot be written (a full disk), say so."""
        summary = self.summary(FAILED, f"{type(error).__name__}: {error}")
        try:
            self.run_dir.write_summary(summary)
        except OSError:
            try:
                self.run_dir.write_summary(summary, in_place=True)
            except OSError as write_error:
                print(f"warning: could not mark {self.run_dir.path / 'summary.json'} failed: {write_error}",
                      file=sys.stderr)

    def _run_events(self, completed: int, state: Any, totals: Totals, within_event: Any) -> Any:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(self.events), initial=completed, desc="events", unit="event", disable=not self.config.progress)
        try:
            for event in self.events[completed:]:
                if self.stop.requested:
                    raise RunInterrupted()
                resume = None
                if within_event is not None and within_event["event_index"] == event.index:
                    resume = within_event["state"]
                within_event = None
                bar.set_postfix_str(f"{'train' if isinstance(event, TrainEvent) else 'predict'} {event.task.key}")
                ctx = self._context(event, state, totals, resume)
                state, record, scored = run_event(self.learner, event, state, ctx, self.data, totals, self.run_dir.path.name)
                for sink in self.sinks:
                    sink.write_event(record, scored)
                self.records.append(self.run_dir.stored(record))
                self._save(event.index + 1, state, totals)
                self.run_dir.write_summary(self.summary(RUNNING))
                bar.update(1)
                self.stop.after_event()
        finally:
            bar.close()
        return state

    def _context(self, event: Event, state: Any, totals: Totals, resume: Any) -> LearnerContext:
        def write_within_event(partial: Any) -> None:
            self._save(event.index, state, totals, {"event_index": event.index, "state": partial})
            self.stop.after_checkpoint()

        return LearnerContext(
            data=EventData(self.data, event),
            device=self.device,
            seed=self.config.seed,
            event_index=event.index,
            flops=self.flops,
            resume_state=resume,
            progress=self.config.progress,
            checkpoint_every_steps=self.config.checkpoint_every_steps,
            checkpoint_every_seconds=self.config.checkpoint_every_seconds,
            write_checkpoint=write_within_event,
            stop_requested=lambda: self.stop.requested,
        )


def run_event(learner: Learner, event: Event, state: Any, ctx: LearnerContext, data: StreamData,
              totals: Totals, run_id: str) -> tuple[Any, EventRecord, tuple[np.ndarray, np.ndarray] | None]:
    """One event through the learner: (new state, its record, (scores, targets) of a predict event).

    A predict event's scores are checked and scored against the labels here, outside the learner.
    ``totals`` is updated in place.
    """
    start = time.perf_counter()
    if isinstance(event, TrainEvent):
        state, usage = learner.train(event, state, ctx)
        usage = _validated_usage(usage, event)
        num_examples, metric, scored = len(data.split(event.task.key, event.train_split)), None, None
    else:
        predictions, usage = learner.predict(event, state, ctx)
        targets = np.asarray(data.split(event.task.key, event.split).labels)
        scores = _collect_scores(event, predictions, targets)
        usage = _validated_usage(usage, event)
        _, metric = metrics.task_metric(event.task.kind, scores, targets)
        num_examples, scored = len(targets), (scores, targets)
    totals.add(usage)
    record = EventRecord.for_event(run_id, event, num_examples, usage, totals, time.perf_counter() - start, metric,
                                   state_bytes=state_bytes(state))
    return state, record, scored


def _collect_scores(event: PredictEvent, predictions, targets: np.ndarray) -> np.ndarray:
    """The (N, num_classes) scores of a predict event; every example exactly once, finite, in range."""
    n = len(targets)
    scores = np.full((n, event.task.num_classes), np.nan, dtype=np.float64)
    seen = np.zeros(n, dtype=np.int64)
    for batch in predictions:
        if not isinstance(batch, Predictions):
            raise PredictionError(f"predict must yield Predictions, got {type(batch).__name__}")
        indices = np.asarray(batch.indices, dtype=np.int64)
        values = np.asarray(batch.scores, dtype=np.float64)
        if values.shape != (len(indices), event.task.num_classes):
            raise PredictionError(
                f"task {event.task.key}: scores of shape {values.shape} for {len(indices)} examples "
                f"and {event.task.num_classes} classes"
            )
        scores[indices] = values
        np.add.at(seen, indices, 1)
    if not np.all(seen == 1):
        raise PredictionError(
            f"task {event.task.key}: predictions must cover each of the {n} examples of {event.split!r} once; "
            f"{int(np.sum(seen == 0))} missing, {int(np.sum(seen > 1))} repeated"
        )
    if not np.all(np.isfinite(scores)):
        raise PredictionError(f"task {event.task.key}: predictions contain NaN or infinite scores")
    if event.task.kind == MULTI_LABEL and (scores.min() < 0 or scores.max() > 1):
        raise PredictionError(f"task {event.task.key}: multi-label scores must be probabilities in [0, 1]")
    return scores


def _validated_usage(usage: Any, event) -> ResourceUsage:
    if not isinstance(usage, ResourceUsage):
        raise TypeError(f"learner must return a ResourceUsage for event {event.index}, got {type(usage).__name__}")
    for name in ("flops_train", "flops_search", "flops_selection", "flops_validation", "flops_inference"):
        value = getattr(usage, name)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"event {event.index}: {name} = {value} is not a finite non-negative number")
    return usage
