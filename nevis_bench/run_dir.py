"""Writing a run directory (DESIGN.md, "RunRecord"): config, events, summary, predictions, TensorBoard.

    RUN_DIR/config.json        everything needed to rerun (versions included)
    RUN_DIR/events.jsonl       one record per event, appended and flushed (schema version 1)
    RUN_DIR/summary.json       status and stream summary, rewritten atomically after every event
    RUN_DIR/predictions/       event_<index>.npz with `scores` and `targets` per predict event
    RUN_DIR/checkpoints/       latest.pt (see evaluator)
    RUN_DIR/tensorboard/       scalars per event
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
from typing import Any

import numpy as np

EVENTS_SCHEMA_VERSION = 1


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
    (DESIGN.md). TensorBoard uses its bundled stub instead when ``tensorboard.compat.notf`` exists,
    the switch its TensorFlow-free build ships; we register an empty module under that name.
    """
    import sys
    import types

    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class RunDirectory:
    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.events_path = self.path / "events.jsonl"
        self.checkpoint_path = self.path / "checkpoints" / "latest.pt"
        self._tensorboard = None

    def create(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=False)
        for folder in ("predictions", "checkpoints", "tensorboard"):
            (self.path / folder).mkdir()
        _write_json_atomic(self.path / "config.json", clean_json(config))
        self.events_path.touch()

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / "config.json").read_text())

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
        temporary = self.events_path.with_name(".events.jsonl.tmp")
        temporary.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in kept))
        os.replace(temporary, self.events_path)

    def append_event(self, record: dict[str, Any]) -> None:
        line = json.dumps(clean_json(record), sort_keys=True, allow_nan=False)
        with open(self.events_path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_json_atomic(self.path / "summary.json", clean_json(summary))

    def read_summary(self) -> dict[str, Any] | None:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_predictions(self, event_index: int, scores: np.ndarray, targets: np.ndarray) -> str:
        relative = f"predictions/event_{event_index:04d}.npz"
        np.savez_compressed(self.path / relative, scores=scores.astype(np.float32), targets=targets)
        return relative

    def scalars(self, record: dict[str, Any]) -> None:
        """TensorBoard scalars of one event (step = event index)."""
        if self._tensorboard is None:
            self._tensorboard = _summary_writer(self.path / "tensorboard")
        step = record["event_index"]
        if record["event_type"] == "predict":
            prefix = "final_eval" if record["final_eval"] else record["split"]
            self._tensorboard.add_scalar(f"{prefix}/error", record["error"], step)
            self._tensorboard.add_scalar(f"{prefix}/error_by_task/{record['task_key']}", record["error"], step)
        self._tensorboard.add_scalar("flops/cumulative_headline", record["cumulative_flops"], step)
        self._tensorboard.add_scalar("flops/cumulative_inference", record["cumulative_flops_inference"], step)
        self._tensorboard.add_scalar("resources/peak_parameter_count", record["peak_parameter_count"], step)
        self._tensorboard.add_scalar("resources/wall_seconds", record["wall_seconds"], step)
        self._tensorboard.flush()

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
