"""Where a task's data comes from: the source protocol, availability, the data folder.

A :class:`TaskSource` produces the splits of one task (generated, read from TFDS, or converted
from an original archive); the task cache (:mod:`nevis_bench.data.cache`) stores what it produced,
and training reads only the cache. :func:`source_for` gives the source of a catalogue dataset.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Protocol

from nevis_bench.data.catalog import DatasetFacts
from nevis_bench.errors import InputError
from nevis_bench.protocol import TaskInfo

DATA_DIR_VARIABLE = "NEVIS_BENCH_DATA_DIR"


def default_data_dir() -> pathlib.Path:
    """``$NEVIS_BENCH_DATA_DIR``, else ``~/.cache/nevis-bench``: prepared datasets and the task cache."""
    return pathlib.Path(os.environ.get(DATA_DIR_VARIABLE, os.path.join("~", ".cache", "nevis-bench"))).expanduser()


class DataMissingError(RuntimeError, InputError):
    """One or more datasets a run needs are not available; the message lists how to get each."""


@dataclass(frozen=True)
class Availability:
    available: bool
    how_to_get: str = ""  # the command or manual step that makes the data available


class TaskSource(Protocol):
    """Where a task's data comes from. Sources write the task cache; training reads only the cache."""

    def fingerprint(self, image_size: int) -> str:
        """A string that changes whenever the bytes this source would produce change: the task-cache key.

        It names the source's identity as well as its settings, so that a changed source gets a new
        cache entry: TFDS the version and split sizes of the build on disk, a prepared dataset the hash of
        its ``splits.json``, a generator its version. It is computed without reading the data, since it
        is asked for every task at every start.
        """

    def availability(self) -> Availability: ...

    def build(self, image_size: int) -> dict:
        """Split name -> (images uint8 (N,S,S,C), labels[, ids]) for train, dev, dev_test, test."""

    def describe(self) -> str: ...


def source_for(facts: DatasetFacts, data_dir=None, tfds_data_dir=None, download: bool = False) -> TaskSource:
    """The task source of a catalogue dataset: TFDS or a prepared (converted) archive."""
    from nevis_bench.data.prepared import PreparedSource
    from nevis_bench.data.tfds_source import TfdsSource

    kind, _, name = facts.source.partition(":")
    if kind == "tfds":
        return TfdsSource(name, data_dir=data_dir, tfds_dir=tfds_data_dir, download=download)
    return PreparedSource(name, facts.key, data_dir=data_dir)


def task_info(facts: DatasetFacts, year: int) -> TaskInfo:
    """What a learner may know about a catalogue dataset appearing in ``year``."""
    return TaskInfo(
        key=facts.key, name=facts.name, year=year, kind=facts.kind, num_classes=facts.num_classes,
        domain=facts.domain, channels=facts.channels,
    )
