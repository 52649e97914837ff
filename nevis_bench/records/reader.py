"""Reading run records: ``config.json``, ``events.jsonl`` (schema version 1) and ``summary.json``.

``events.jsonl`` is the source of truth (``docs/design.md``, "Records"); ``summary.json`` gives a run's
status and metadata, and a run without one is unfinished. Every malformed record is a
:class:`RecordError` naming the file and line. A run being written may end in a half-written line:
:func:`read_events` can skip a truncated *last* line (one without its newline) and nothing else.

Numbers derived from events (average error, FLOPs, forgetting, ...) come from
:func:`nevis_bench.records.metrics.summarize`, the same code that writes ``summary.json``; the helpers here
add the per-step views that reports plot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from nevis_bench.errors import InputError
from nevis_bench.records.metrics import summarize as _summarize
from nevis_bench.records.schema import (  # noqa: F401 (re-exported for readers of records)
    CONFIG_FILE,
    EVENT_COLUMNS,
    EVENT_TYPES,
    EVENTS_FILE,
    FAILED,
    FINISHED,
    FLOP_FIELDS,
    HEADLINE_PHASES,
    REFERENCE_FLOPS,
    REQUIRED_FIELDS,
    RUN_STATUSES,
    SCHEMA_VERSION,
    SUMMARY_FILE,
    TASK_KINDS,
    UNFINISHED,
    EventRecord,
    metric_name,
    reference_flops,
)
from nevis_bench.records.schema import REQUIRED_INTEGERS as _INT_FIELDS
from nevis_bench.records.schema import REQUIRED_NUMBERS as _NUMBER_FIELDS
from nevis_bench.records.schema import REQUIRED_STRINGS as _STRING_FIELDS

_METRIC_TOLERANCE = 1e-6  # |error - (1 - metric)|, and the slack of metrics outside [0, 1]
_FLOPS_RTOL = 1e-6  # cumulative_flops against the running sum of the headline phases


class RecordError(ValueError, InputError):
    """A run record that cannot be read: missing, malformed, truncated or inconsistent.

    ``path`` and ``line`` (1-based, or None) say where; ``str()`` starts with ``path:line:``.
    """

    def __init__(self, path: os.PathLike | str, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class SchemaVersionError(RecordError):
    """A record of a schema version this reader does not know."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_metric(event: dict, fail) -> None:
    kind = event["task_kind"]
    if event["event_type"] == "train":
        if event["error"] is not None:
            fail("a train event has error set; it must be null")
        if event.get("final_eval"):
            fail("a train event is marked final_eval")
        return
    metric_field = metric_name(kind)
    other_field = "top1_accuracy" if metric_field == "mean_average_precision" else "mean_average_precision"
    metric, error = event.get(metric_field), event["error"]
    if metric is None and error is None:
        return  # an undefined metric (e.g. mAP of a split without positives), written as null
    if not _is_number(metric):
        fail(f"{kind} predict event needs a finite number in {metric_field!r}, got {metric!r}")
    if event.get(other_field) is not None:
        fail(f"{kind} predict event must have {other_field!r} null, got {event[other_field]!r}")
    if not _is_number(error):
        fail(f"predict event needs a finite number in 'error', got {error!r}")
    if not -_METRIC_TOLERANCE <= metric <= 1 + _METRIC_TOLERANCE:
        fail(f"{metric_field} {metric!r} is outside [0, 1]")
    if abs(error - (1.0 - metric)) > _METRIC_TOLERANCE:
        fail(f"error {error!r} is not 1 - {metric_field} ({metric!r})")


def validate_event(event: Any, fail) -> None:
    """Check one decoded line against schema version 1; ``fail(message[, error_class])`` raises."""
    if not isinstance(event, dict):
        fail(f"expected a JSON object, got {type(event).__name__}")
    if "schema" not in event:
        fail("missing field 'schema'")
    if event["schema"] != SCHEMA_VERSION:
        fail(f"unknown schema version {event['schema']!r}; this reader knows {SCHEMA_VERSION}", SchemaVersionError)
    missing = [name for name in REQUIRED_FIELDS if name not in event]
    if missing:
        fail(f"missing field(s) {', '.join(missing)}")
    if event["event_type"] not in EVENT_TYPES:
        fail(f"event_type must be one of {EVENT_TYPES}, got {event['event_type']!r}")
    if event["task_kind"] not in TASK_KINDS:
        fail(f"task_kind must be one of {TASK_KINDS}, got {event['task_kind']!r}")
    for name in _STRING_FIELDS:
        if not isinstance(event[name], str):
            fail(f"{name!r} must be a string, got {event[name]!r}")
    for name in _INT_FIELDS:
        value = event[name]
        if not _is_number(value) or not float(value).is_integer() or value < 0:
            fail(f"{name!r} must be a non-negative integer, got {value!r}")
    for name in _NUMBER_FIELDS:
        if not _is_number(event[name]) or event[name] < 0:
            fail(f"{name!r} must be a finite non-negative number, got {event[name]!r}")
    optional = event.get(REFERENCE_FLOPS)
    if optional is not None and (not _is_number(optional) or optional < 0):
        fail(f"{REFERENCE_FLOPS!r} must be a finite non-negative number, got {optional!r}")
    if not isinstance(event["final_eval"], bool):
        fail(f"'final_eval' must be true or false, got {event['final_eval']!r}")
    _check_metric(event, fail)
    try:
        EventRecord.from_dict({"domain": "unknown", **event})  # the writer's own definition of a record
    except TypeError as error:
        fail(f"not an event record: {error}")


def read_events(run_dir: os.PathLike | str, allow_partial_last_line: bool = True) -> list[dict]:
    """The events of ``run_dir/events.jsonl``, validated, in file order.

    With ``allow_partial_last_line`` a last line that lacks its newline and is not valid JSON (an
    append cut short, as in a run being written) is left out; any other bad line raises
    :class:`RecordError` with its line number. Beyond each line's own schema, event indices must
    increase, the run id must not change, and ``cumulative_flops`` must be the running sum of the
    headline phases.
    """
    path = Path(run_dir) / EVENTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(path, None, "file not found") from None
    lines = data.split(b"\n")
    complete_last = lines[-1] == b""  # the file ends with a newline
    if complete_last:
        lines.pop()
    events: list[dict] = []
    headline = 0.0
    for number, raw in enumerate(lines, start=1):
        is_partial = number == len(lines) and not complete_last

        def fail(message: str, error_class: type[RecordError] = RecordError, number=number) -> None:
            raise error_class(path, number, message)

        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if is_partial and allow_partial_last_line:
                break
            what = "truncated last line (no newline)" if is_partial else "malformed line"
            fail(f"{what}: {error}")
        validate_event(event, fail)
        if events:
            previous = events[-1]
            if event["event_index"] <= previous["event_index"]:
                fail(f"event_index {event['event_index']} does not follow {previous['event_index']}")
            if event["run_id"] != previous["run_id"]:
                fail(f"run_id {event['run_id']!r} differs from earlier lines ({previous['run_id']!r})")
        headline += sum(event.get(name, 0.0) for name in HEADLINE_PHASES)
        if not math.isclose(event["cumulative_flops"], headline, rel_tol=_FLOPS_RTOL, abs_tol=1e-9):
            fail(
                f"cumulative_flops {event['cumulative_flops']!r} is not the running sum of "
                f"train + search + selection + validation FLOPs ({headline!r})"
            )
        events.append(event)
    return events


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecordError(path, error.lineno, f"malformed JSON: {error.msg}") from None
    except UnicodeDecodeError as error:
        raise RecordError(path, None, f"not UTF-8: {error}") from None
    if not isinstance(value, dict):
        raise RecordError(path, None, f"expected a JSON object, got {type(value).__name__}")
    return value


def read_config(run_dir: os.PathLike | str) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RecordError(path, None, "file not found")
    config = _read_json(path)
    missing = [name for name in ("run_id", "stream", "learner", "config_id", "seed") if name not in config]
    if missing:
        raise RecordError(path, None, f"missing field(s) {', '.join(missing)}")
    return config


def read_summary(run_dir: os.PathLike | str) -> dict | None:
    """``summary.json``, or None where the run has not written one (it is unfinished)."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = _read_json(path)
    if summary.get("schema") != SCHEMA_VERSION:
        raise SchemaVersionError(
            path, None, f"unknown schema version {summary.get('schema')!r}; this reader knows {SCHEMA_VERSION}"
        )
    if summary.get("status") not in RUN_STATUSES:
        raise RecordError(path, None, f"status must be one of {RUN_STATUSES}, got {summary.get('status')!r}")
    return summary


def events_frame(events: Iterable[dict]) -> pd.DataFrame:
    """Events as a DataFrame: the schema's columns first (``domain`` defaults to "unknown"), extras after."""
    frame = pd.DataFrame(list(events))
    for column in EVENT_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    frame["domain"] = frame["domain"].fillna("unknown")
    if len(frame):  # records older than the field: rebuilt as flops_train + flops_search (train events)
        frame[REFERENCE_FLOPS] = [reference_flops(row) for row in frame.to_dict("records")]
    extras = sorted(c for c in frame.columns if c not in EVENT_COLUMNS)
    return frame[list(EVENT_COLUMNS) + extras]


@dataclass(eq=False)
class Run:
    """One run directory: its config, its summary (None while unfinished) and its events.

    ``events`` is the DataFrame view of ``event_list`` (the decoded lines).
    """

    path: Path
    config: dict
    summary: dict | None
    events: pd.DataFrame
    event_list: list[dict]

    @property
    def status(self) -> str:
        """The summary's status, or ``"unfinished"`` where there is no summary."""
        return self.summary["status"] if self.summary is not None else UNFINISHED

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def run_id(self) -> str:
        return str(self.config["run_id"])

    @property
    def learner(self) -> str:
        return str(self.config["learner"])

    @property
    def config_id(self) -> str:
        return str(self.config["config_id"])

    @property
    def stream(self) -> str:
        """The stream's name; a run that skipped entries whose data was missing is marked, so that it is
        never grouped with complete runs of the stream."""
        skipped = sorted(self.config.get("skipped_entries") or [])
        name = str(self.config["stream"])
        if not skipped:
            return name
        digest = hashlib.sha256("\n".join(skipped).encode()).hexdigest()[:6]
        return f"{name} (skipped {len(skipped)}, {digest})"

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def predict_split(self) -> str:
        return str(self.config.get("predict_split", "dev_test"))

    @property
    def group_key(self) -> tuple[str, str, str, str]:
        """What identifies a configuration across seeds: (learner, config_id, stream, predict_split)."""
        return (self.learner, self.config_id, self.stream, self.predict_split)

    @functools.cached_property
    def metrics(self) -> dict[str, Any]:
        """Summary numbers recomputed from the events (:func:`summarize_events`), computed once."""
        return summarize_events(self.event_list)


def read_run(run_dir: os.PathLike | str) -> Run:
    """Read and check one run directory.

    A complete run must have every line of ``events.jsonl`` intact; other runs may end in a
    truncated line, which is left out.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    summary = read_summary(run_dir)
    complete = summary is not None and summary["status"] == FINISHED
    events = read_events(run_dir, allow_partial_last_line=not complete)
    planned = summary.get("num_events_planned") if summary is not None else None
    if complete and isinstance(planned, int) and len(events) != planned:
        raise RecordError(
            run_dir / EVENTS_FILE, None,
            f"summary.json says the run is complete with {planned} events, but events.jsonl holds {len(events)}"
        )
    if events and events[0]["run_id"] != str(config["run_id"]):
        raise RecordError(
            run_dir / EVENTS_FILE, 1, f"run_id {events[0]['run_id']!r} differs from config.json's {config['run_id']!r}"
        )
    return Run(path=run_dir, config=config, summary=summary, events=events_frame(events), event_list=events)


def is_run_dir(path: os.PathLike | str) -> bool:
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / EVENTS_FILE).is_file()


def find_runs(root: os.PathLike | str) -> list[Path]:
    """Every run directory (a folder with config.json and events.jsonl) under ``root``, sorted.

    The search does not descend into a run directory.
    """
    found: list[Path] = []
    for folder, subfolders, _ in os.walk(root):
        if is_run_dir(folder):
            found.append(Path(folder))
            subfolders.clear()
        else:
            subfolders.sort()
    return sorted(found)


# --- numbers derived from events -------------------------------------------------------------------


def summarize_events(events: Iterable[dict]) -> dict[str, Any]:
    """The summary.json numbers recomputed from event dicts (:func:`nevis_bench.records.metrics.summarize`).

    Average and example-weighted error over the in-stream predict events, FLOPs per phase and
    headline cumulative FLOPs (train + search + selection), peak parameters, wall time; with a
    final evaluation, the accuracy matrix, average forgetting (per task key except the last one
    trained: best in-stream metric minus final metric) and backward transfer (mean of final metric
    minus the metric right after the task's last training). Missing values are None.
    """
    return _summarize(events)


def in_stream_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """The predict events right after each training (not the final evaluation), with ``step``.

    ``step`` counts train events (1 for the first task); ``metric`` is accuracy or mAP.
    """
    step = (frame["event_type"] == "train").cumsum()
    mask = (frame["event_type"] == "predict") & ~frame["final_eval"].astype(bool)
    out = frame[mask].copy()
    out.insert(0, "step", step[mask].astype(int))
    out["metric"] = out["top1_accuracy"].where(out["task_kind"] == "single_label", out["mean_average_precision"])
    return out.reset_index(drop=True)


def error_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Per in-stream predict event: headline FLOPs so far and the average error of predictions so far."""
    predictions = in_stream_predictions(frame)
    errors = predictions["error"].astype(float)
    return pd.DataFrame({
        "step": predictions["step"],
        "task_key": predictions["task_key"],
        "cumulative_flops": predictions["cumulative_flops"].astype(float),
        "average_error": errors.expanding().mean() if len(errors) else errors,
    })


def step_flops(frame: pd.DataFrame) -> pd.DataFrame:
    """FLOPs per phase of each stream step (its train event and in-stream predict event).

    The final evaluation, if any, is one more row with ``step`` = number of steps + 1 and
    ``task_key`` = "final eval".
    """
    step = (frame["event_type"] == "train").cumsum().astype(int)
    final = frame["final_eval"].astype(bool)
    step = step.where(~final, int(step.max() if len(step) else 0) + 1)
    keyed = frame.assign(step=step, task_key=frame["task_key"].where(~final, "final eval"))
    keyed = keyed[keyed["step"] > 0]
    flops = keyed.groupby("step", sort=True)[list(FLOP_FIELDS)].sum().astype(float)
    keys = keyed.groupby("step", sort=True)["task_key"].first()
    return flops.assign(task_key=keys).reset_index()[["step", "task_key", *FLOP_FIELDS]]
