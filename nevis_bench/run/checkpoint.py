"""Atomic checkpoint files of plain data.

A checkpoint is ``torch.save`` of plain data (dicts, lists, numbers, strings, tensors) written to a
temporary file in the same folder, flushed to disk and renamed over the old one, so a crash leaves
either the old or the new checkpoint, never a torn one. Loading uses ``weights_only=True``: a learner
whose state holds arbitrary objects fails at the first save-load round-trip (the conformance kit
checks this), not months later when a class changed.
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

import torch

from nevis_bench.errors import InputError


class CheckpointError(RuntimeError, InputError):
    pass


def save_atomic(data: Any, path: str | os.PathLike) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load(path: str | os.PathLike) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # unpickling errors name the offending type
        raise CheckpointError(
            f"cannot load checkpoint {path}: {error}. Learner state must be plain data "
            "(dicts, lists, numbers, strings, tensors)"
        ) from error


def round_trip(data: Any) -> Any:
    """``data`` after a save and load in memory (what a resumed run sees)."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)
