"""Atomic, checksummed checkpoint files of plain data.

A checkpoint file is a header line ``nevis-bench-checkpoint 2 sha256=<hex>`` followed by
``torch.save`` of plain data (dicts, lists, numbers, strings, tensors). It is written to a temporary
file in the same folder, flushed to disk and renamed over the old one, so a crash leaves either the
old or the new checkpoint, never a torn one; the temporary file is removed when the write fails.
Loading checks the SHA-256 of the payload first, so a truncated or altered file is reported as
damaged and never loaded, then unpickles with ``weights_only=True``: a learner whose state holds
arbitrary objects fails at the first save-load round-trip (the conformance kit checks this), not
months later when a class changed. Files written before the header existed (bare ``torch.save``)
still load, without a checksum to check.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pathlib
from typing import Any, Iterator

import torch

from nevis_bench.errors import InputError

MAGIC = b"nevis-bench-checkpoint 2 sha256="


class CheckpointError(RuntimeError, InputError):
    """A checkpoint that cannot be used; the message names the cause."""


def temporary_path(path: pathlib.Path) -> pathlib.Path:
    """The temporary file a write of ``path`` goes through (removed when the write fails)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def naming_path(path: pathlib.Path) -> Iterator[None]:
    """Re-raise an OSError without a file name (a write that hit a full disk) with ``path`` named."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def save_atomic(data: Any, path: str | os.PathLike) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    payload = buffer.getbuffer()
    temporary = temporary_path(path)
    try:
        with naming_path(path), open(temporary, "wb") as handle:
            handle.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n")
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> Any:
    path = pathlib.Path(path)
    data = path.read_bytes()
    if data.startswith(MAGIC):
        header, _, payload = data.partition(b"\n")
        expected = header[len(MAGIC):].decode("ascii", "replace")
        if hashlib.sha256(payload).hexdigest() != expected:
            raise CheckpointError(
                f"checkpoint {path} is damaged: its content does not match its checksum (the file was truncated "
                f"or altered, {len(data)} bytes). Restore it from a backup, or start the run again with "
                f"`nevis-bench resume {path.parent.parent} --restart` (the records are moved aside, not deleted)"
            )
    else:
        payload = data  # a checkpoint written before checksums
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:
        if data.startswith(MAGIC):  # intact bytes that do not unpickle as plain data
            raise CheckpointError(
                f"cannot load checkpoint {path}: {error}. Learner state must be plain data "
                "(dicts, lists, numbers, strings, tensors)"
            ) from error
        raise CheckpointError(
            f"cannot load checkpoint {path} (an old checkpoint without checksum): {type(error).__name__}: {error}. "
            f"It may be damaged; start the run again with `nevis-bench resume {path.parent.parent} --restart`"
        ) from error


def round_trip(data: Any) -> Any:
    """``data`` after a save and load in memory (what a resumed run sees)."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)
