"""The record schema of a run directory, written and read through these two dataclasses.

A run directory holds ``config.json`` (what was run), ``events.jsonl`` (one :class:`EventRecord`
per event, the source of truth) and ``summary.json`` (one :class:`RunSummary`, rewritten after
every event). The evaluator builds records only through :func:`EventRecord.for_event`; the reader
(:mod:`nevis_bench.records.reader`) checks lines against the same field lists. ``docs/design.md``
("Records") describes each field.

Schema version 1 is the only version so far; run directories written before these dataclasses
existed carry the same fields and read unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from nevis_bench.protocol import (  # noqa: F401 (the vocabularies are part of the schema)
    MULTI_LABEL,
    PHASES,
    SINGLE_LABEL,
    SPLITS,
    TASK_KINDS,
    Event,
    PredictEvent,
    ResourceUsage,
)

SCHEMA_VERSION = 1

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FOLDER = "predictions"
CHECKPOINTS_FOLDER = "checkpoints"
TENSORBOARD_FOLDER = "tensorboard"

TRAIN, PREDICT = "train", "predict"
EVENT_TYPES = (TRAIN, PREDICT)

RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "complete", "interrupted", "failed"
RUN_STATUSES = (RUNNING, FINISHED, INTERRUPTED, FAILED)
UNFINISHED = "unfinished"  # what readers call a run without summary.json

# The benchmark's compute axis. ``flops_validation`` is recorded since schema 1 files were written
# (they folded it into ``flops_train``), so a record without it reads as 0.
HEADLINE_PHASES = ("flops_train", "flops_search", "flops_selection", "flops_validation")
FLOP_FIELDS = HEADLINE_PHASES + ("flops_inference",)
OPTIONAL_FLOP_FIELDS = ("flops_validation",)
# The reference's convention (``experiments_jax/training/hyperparameter_searcher.py``): every optimisation
# step of every trial, kept or searched, and nothing else (no validation, no selection, no inference).
# Recorded per event beside the headline phases, never part of them.
REFERENCE_FLOPS = "flops_reference"


def accounted_flops(record: Mapping[str, Any]) -> float:
    """The FLOPs an event is accounted by: the headline phases (train + search + selection + validation) of a train
    event, the inference FLOPs of a predict event. ``record`` is an events.jsonl line."""
    if record["event_type"] == TRAIN:
        return float(sum(record.get(name, 0.0) for name in HEADLINE_PHASES))
    return float(record["flops_inference"])


def reference_flops(record: Mapping[str, Any]) -> float:
    """An event's FLOPs in the reference's convention: kept training steps plus search trials.

    Records written before ``flops_reference`` existed read as ``flops_train + flops_search`` of a
    train event (what learners report there once validation has its own phase) and 0 for a predict event.
    """
    value = record.get(REFERENCE_FLOPS)
    if value is not None and value == value:  # absent (or NaN in a table of old and new records)
        return float(value)
    if record["event_type"] == TRAIN:
        return float(record.get("flops_train", 0.0)) + float(record.get("flops_search", 0.0))
    return 0.0


def metric_name(kind: str) -> str:
    """The metric a predict event of a task kind records: top-1 accuracy or mean average precision."""
    return "mean_average_precision" if kind == MULTI_LABEL else "top1_accuracy"


@dataclass
class EventRecord:
    """One line of ``events.jsonl``.

    ``error`` is 1 - the task's metric (null for train events and for an undefined metric);
    ``cumulative_flops`` is the running sum of the headline phases; ``flops_reference`` the event's
    FLOPs in the reference's convention (kept training steps + search trials; not part of the
    headline); ``learner_info`` holds what the learner reported about itself (steps taken, the chosen
    trial, ...).
    """

    run_id: str
    event_index: int
    event_type: str  # EVENT_TYPES
    task_name: str
    task_key: str
    year: int
    split: str  # SPLITS
    task_kind: str  # TASK_KINDS
    domain: str  # image type ("unknown" where a record lacks it)
    num_examples: int
    top1_accuracy: float | None = None
    mean_average_precision: float | None = None
    error: float | None = None
    flops_train: float = 0.0
    flops_search: float = 0.0
    flops_selection: float = 0.0
    flops_inference: float = 0.0
    flops_validation: float = 0.0
    flops_reference: float | None = None  # None in records written before it: see reference_flops
    cumulative_flops: float = 0.0
    cumulative_flops_inference: float = 0.0
    peak_parameter_count: int = 0
    peak_parameter_bytes: int = 0
    state_bytes: int = 0  # bytes of every array in the learner's state after the event (measured by the harness)
    learner_info: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    final_eval: bool = False
    schema: int = SCHEMA_VERSION

    @classmethod
    def for_event(cls, run_id: str, event: Event, num_examples: int, usage: ResourceUsage, totals: Any,
                  wall_seconds: float, metric: float | None = None, state_bytes: int = 0) -> "EventRecord":
        """The record of a finished event: ``usage`` is what the learner reported, ``totals`` the running
        sums after the event (``cumulative_flops``, ``cumulative_flops_inference``), ``metric`` a
        predict event's accuracy or mAP (NaN where undefined; written as null)."""
        task = event.task
        common: dict[str, Any] = dict(
            run_id=run_id, event_index=event.index, task_name=task.name, task_key=task.key, year=task.year,
            task_kind=task.kind, domain=task.domain, num_examples=num_examples,
            flops_train=usage.flops_train, flops_search=usage.flops_search,
            flops_selection=usage.flops_selection, flops_inference=usage.flops_inference,
            flops_validation=usage.flops_validation, cumulative_flops=totals.cumulative_flops, cumulative_flops_inference=totals.cumulative_flops_inference,
            peak_parameter_count=usage.peak_parameter_count, peak_parameter_bytes=usage.peak_parameter_bytes,
            learner_info=usage.info, wall_seconds=wall_seconds, state_bytes=int(state_bytes),
        )
        if isinstance(event, PredictEvent):
            common[REFERENCE_FLOPS] = 0.0
            common[metric_name(task.kind)] = metric
            return cls(event_type=PREDICT, split=event.split, error=1.0 - metric, final_eval=event.final_eval, **common)
        common[REFERENCE_FLOPS] = float(usage.flops_train + usage.flops_search)
        return cls(event_type=TRAIN, split=event.train_split, **common)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EventRecord":
        """A record from a decoded line (unknown extra keys are ignored; missing optional ones default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# Column order of the events table that reports read (learner_info and other extras follow).
EVENT_COLUMNS = ("schema",) + tuple(
    f.name for f in dataclasses.fields(EventRecord)
    if f.name not in ("schema", "learner_info", "cumulative_flops_inference", "peak_parameter_bytes")
)
REQUIRED_STRINGS = ("run_id", "task_name", "task_key", "split")
REQUIRED_INTEGERS = ("event_index", "year", "num_examples", "peak_parameter_count")
REQUIRED_NUMBERS = tuple(f for f in FLOP_FIELDS if f not in OPTIONAL_FLOP_FIELDS) + ("cumulative_flops", "wall_seconds")
REQUIRED_FIELDS = REQUIRED_STRINGS + REQUIRED_INTEGERS + REQUIRED_NUMBERS + ("event_type", "task_kind", "error", "final_eval")


@dataclass
class RunSummary:
    """``summary.json``: what the run is, its status, and the stream summary of its records.

    The metric fields are :func:`nevis_bench.records.metrics.summarize` of the events so far;
    ``skipped`` lists stream entries left out because their data was missing (``skip_missing``).
    """

    run_id: str
    stream: str
    learner: str
    config_id: str
    seed: int
    status: str  # RUN_STATUSES
    predict_split: str
    stop_year: int
    num_events_planned: int
    error_message: str | None = None
    num_train_events: int = 0
    num_predict_events: int = 0
    average_error: float | None = None
    weighted_error: float | None = None
    average_top1_accuracy: float | None = None
    mean_average_precision: float | None = None
    # the reference's metrics (records/metrics.py says which is which)
    average_single_label_accuracy: float | None = None
    weighted_single_label_accuracy: float | None = None
    average_multi_label_map: float | None = None
    flops_train: float = 0.0
    flops_search: float = 0.0
    flops_selection: float = 0.0
    flops_inference: float = 0.0
    flops_validation: float = 0.0
    flops_reference: float = 0.0
    cumulative_flops: float = 0.0
    peak_parameter_count: int = 0
    peak_state_bytes: int = 0
    wall_seconds: float = 0.0
    final_eval: dict[str, Any] | None = None
    skipped: list[str] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not data["skipped"]:
            del data["skipped"]  # written only by runs that skipped entries (schema-1 files lack it)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
