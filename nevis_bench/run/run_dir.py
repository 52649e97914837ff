"""Writing a run directory (``docs/design.md``, "Records"): config, events, summary, predictions.

    RUN_DIR/config.json        everything needed to rerun (versions included)
    RUN_DIR/events.jsonl       one EventRecord per event, appended and flushed (nevis_bench.records.schema)
    RUN_DIR/summary.json       the RunSummary, rewritten atomically after every event
    RUN_DIR/predictions/       event_<index>.npz with `scores` and `targets` per predict event
    RUN_DIR/checkpoints/       latest.pt (see evaluator)
    RUN_DIR/tensorboard/       scalars per event (TensorBoardSink)

Both :class:`RunDirectory` and :class:`TensorBoardSink` are record sinks: the evaluator hands every
finished event's record to each sink it was given.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
from typing import Any, Protocol

import numpy as np

from nevis_bench.records.schema import (
    CHECKPOINTS_FOLDER, CONFIG_FILE, EVENTS_FILE, PREDICTIONS_FOLDER, SUMMARY_FILE, TENSORBOARD_FOLDER, EventRecord,
    RunSummary,
)

Scored = tuple[np.ndarray, np.ndarray]  # (scores, targets) of a predict event


class RecordSink(Protocol):
    """Receives every finished event's record, in order."""

    def write_event(self, record: EventRecord, predictions: Scored | None) -> None: ...

    def close(self) -> None: ...


def versions() -> dict[str, str]:
    import sklearn
    import torch

    from nevis_bench import __version__

    return {
        "nevis_bench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def _write_json_atomic(path: pathlib.Path, data: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False, default=_json_default))
    os.replace(temporary, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def clean_json(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _summary_writer(folder: pathlib.Path):
    """A TensorBoard writer that does not import TensorFlow.

    ``torch.utils.tensorboard`` goes through ``tensorboard.compat.tf``, which imports TensorFlow when it
    is installed (it is: TFDS needs it), costing seconds and memory and, with a CUDA torch, crashing
    (``docs/design.md``, "Data flow"). TensorBoard uses its bundled stub instead when ``tensorboard.compat.notf`` exists,
    the switch its TensorFlow-free build ships; we register an empty module under that name.
    """
    import sys
    import types

    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class TensorBoardSink:
    """Scalars per event (step = event index) under ``RUN_DIR/tensorboard``; opened on first use."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self._writer = None

    def write_event(self, record: EventRecord, predictions: Scored | None) -> None:
        if self._writer is None:
            self._writer = _summary_writer(self.folder)
        add, step = self._writer.add_scalar, record.event_index
        if record.event_type == "predict" and record.error is not None:
            prefix = "final_eval" if record.final_eval else record.split
            add(f"{prefix}/error", record.error, step)
            add(f"{prefix}/error_by_task/{record.task_key}", record.error, step)
        add("flops/cumulative_headline", record.cumulative_flops, step)
        add("flops/cumulative_inference", record.cumulative_flops_inference, step)
        add("resources/peak_parameter_count", record.peak_parameter_count, step)
        add("resources/wall_seconds", record.wall_seconds, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RunDirectory:
    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.events_path = self.path / EVENTS_FILE
        self.checkpoint_path = self.path / CHECKPOINTS_FOLDER / "latest.pt"
        self.tensorboard_path = self.path / TENSORBOARD_FOLDER

    def create(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=False)
        for folder in (PREDICTIONS_FOLDER, CHECKPOINTS_FOLDER, TENSORBOARD_FOLDER):
            (self.path / folder).mkdir()
        _write_json_atomic(self.path / CONFIG_FILE, clean_json(config))
        self.events_path.touch()

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / CONFIG_FILE).read_text())

    def read_events(self) -> list[dict[str, Any]]:
        """Complete lines only; a torn last line (crash while appending) is dropped."""
        events = []
        if self.events_path.exists():
            for line in self.events_path.read_text().splitlines():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return events

    def truncate_events(self, count: int) -> None:
        """Keep the first ``count`` records (those covered by the checkpoint being resumed)."""
        kept = self.read_events()[:count]
        temporary = self.events_path.with_name(f".{EVENTS_FILE}.tmp")
        temporary.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in kept))
        os.replace(temporary, self.events_path)

    @staticmethod
    def stored(record: EventRecord) -> dict[str, Any]:
        """The record as its ``events.jsonl`` line decodes (NaN as null, plain numbers)."""
        return clean_json(record.to_dict())

    def write_event(self, record: EventRecord, predictions: Scored | None) -> None:
        """Predictions first, then the record line (flushed and fsynced): a record never points at
        predictions that are not on disk."""
        if predictions is not None:
            self.write_predictions(record.event_index, *predictions)
        line = json.dumps(self.stored(record), sort_keys=True, allow_nan=False)
        with open(self.events_path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, summary: RunSummary) -> None:
        _write_json_atomic(self.path / SUMMARY_FILE, clean_json(summary.to_dict()))

    def read_summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def write_predictions(self, event_index: int, scores: np.ndarray, targets: np.ndarray) -> str:
        relative = f"{PREDICTIONS_FOLDER}/event_{event_index:04d}.npz"
        np.savez_compressed(self.path / relative, scores=scores.astype(np.float32), targets=targets)
        return relative

    def close(self) -> None:
        """Nothing stays open between events (every write is complete when it returns)."""
