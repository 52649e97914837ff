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

import contextlib
import json
import os
import pathlib
import platform
from typing import Any, Iterator, Protocol

import numpy as np

from nevis_bench.errors import InputError
from nevis_bench.records.schema import (
    CHECKPOINTS_FOLDER,
    CONFIG_FILE,
    EVENTS_FILE,
    PREDICTIONS_FOLDER,
    SUMMARY_FILE,
    TENSORBOARD_FOLDER,
    EventRecord,
    RunSummary,
)
from nevis_bench.run.checkpoint import naming_path, temporary_path

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
    temporary = temporary_path(path)
    try:
        with naming_path(path):
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False, default=_json_default))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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


class RunLocked(InputError):
    """Another process is writing this run directory."""


class RunDirectory:
    LOCK_FILE = ".lock"
    SUPERSEDED_FILE = "events.superseded.jsonl"  # records redone after a resume, kept

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.events_path = self.path / EVENTS_FILE
        self.checkpoint_path = self.path / CHECKPOINTS_FOLDER / "latest.pt"
        self.tensorboard_path = self.path / TENSORBOARD_FOLDER

    def create(self, config: dict[str, Any]) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunLocked(
                f"run directory {self.path} was just created by another process; wait for it, or pick another --run-name"
            ) from None
        for folder in (PREDICTIONS_FOLDER, CHECKPOINTS_FOLDER, TENSORBOARD_FOLDER):
            (self.path / folder).mkdir()
        _write_json_atomic(self.path / CONFIG_FILE, clean_json(config))
        self.events_path.touch()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory's writer lock (an OS lock on ``.lock``, released when the process ends)."""
        import fcntl

        handle = open(self.path / self.LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise RunLocked(
                f"run directory {self.path} is being written by process {holder}; wait for it to finish or stop it "
                "(one writer per run directory)"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()

    def remove_stale_temporaries(self) -> list[pathlib.Path]:
        """Remove temporary files left by a killed writer (call while holding the lock)."""
        stale = [p for folder in (self.path, self.path / CHECKPOINTS_FOLDER) if folder.is_dir()
                 for p in folder.glob(".*.tmp*") if p.is_file()]
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / CONFIG_FILE).read_text())

    def read_events(self) -> list[dict[str, Any]]:
        """The records, checked line by line; only a torn last line (a crash while appending) is left out.
        Any other damaged line is a :class:`RecordError` naming it."""
        from nevis_bench.records.reader import read_events

        return read_events(self.path, allow_partial_last_line=True) if self.events_path.exists() else []

    def truncate_events(self, events: list[dict[str, Any]], count: int) -> None:
        """Keep the first ``count`` of ``events`` (this file's records, as :meth:`read_events` gave them:
        those covered by the checkpoint being resumed); the records after them, which the resumed run
        redoes, are appended to ``events.superseded.jsonl``. A torn last line is dropped."""
        if len(events) > count:
            with open(self.path / self.SUPERSEDED_FILE, "a") as handle:
                handle.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in events[count:]))
        if len(events) != count or self.events_path.read_bytes()[-1:] not in (b"", b"\n"):
            temporary = temporary_path(self.events_path)
            temporary.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events[:count]))
            os.replace(temporary, self.events_path)

    def move_aside(self) -> pathlib.Path:
        """Move every record, checkpoint and summary into ``previous-<n>/`` (``--restart``); returns it."""
        number = 1
        while (self.path / f"previous-{number}").exists():
            number += 1
        aside = self.path / f"previous-{number}"
        aside.mkdir()
        for name in (EVENTS_FILE, SUMMARY_FILE, self.SUPERSEDED_FILE, PREDICTIONS_FOLDER, CHECKPOINTS_FOLDER,
                     TENSORBOARD_FOLDER):
            if (self.path / name).exists():
                os.replace(self.path / name, aside / name)
        for folder in (PREDICTIONS_FOLDER, CHECKPOINTS_FOLDER, TENSORBOARD_FOLDER):
            (self.path / folder).mkdir()
        self.events_path.touch()
        return aside

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
        with naming_path(self.events_path), open(self.events_path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, summary: RunSummary, in_place: bool = False) -> None:
        """Replace ``summary.json`` atomically; ``in_place`` overwrites it without a temporary file (the
        last resort on a full disk, where the old file's blocks can still be reused)."""
        if not in_place:
            _write_json_atomic(self.path / SUMMARY_FILE, clean_json(summary.to_dict()))
            return
        path = self.path / SUMMARY_FILE
        with naming_path(path), open(path, "r+" if path.exists() else "w") as handle:
            handle.write(json.dumps(clean_json(summary.to_dict()), sort_keys=True, separators=(",", ":")))
            handle.truncate()

    def read_summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def write_predictions(self, event_index: int, scores: np.ndarray, targets: np.ndarray) -> str:
        relative = f"{PREDICTIONS_FOLDER}/event_{event_index:04d}.npz"
        with naming_path(self.path / relative):
            np.savez_compressed(self.path / relative, scores=scores.astype(np.float32), targets=targets)
        return relative

    def close(self) -> None:
        """Nothing stays open between events (every write is complete when it returns)."""
