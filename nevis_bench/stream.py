"""Streams: an ordered list of tasks, the events they give, and cached data access.

A :class:`Stream` is a list of :class:`StreamEntry` (year, task, source). Its events are, for each
task before the stop year, a :class:`TrainEvent` then a :class:`PredictEvent` on the prediction split
(``dev_test`` in development, ``test`` in the final protocol), optionally followed by a predict event
for every seen task (the final evaluation). A repeated dataset keeps its task key and data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from tqdm.auto import tqdm

from nevis_bench.data.cache import CacheError, CachedTask, SplitData, TaskCache, check_once
from nevis_bench.data.images import CENTER_SQUARE, FRAME_ID, FULL
from nevis_bench.data.sources import DataMissingError, TaskSource
from nevis_bench.protocol import Event, PredictEvent, TaskInfo, TrainEvent


@dataclass(frozen=True)
class StreamEntry:
    year: int
    task: TaskInfo
    source: TaskSource = field(compare=False)


@dataclass
class Stream:
    name: str
    entries: list[StreamEntry]
    description: str = ""
    # The stop year this stream is meant to run with when the user gives none (None: the protocol's
    # default, 2020 in development and 2022 in the final protocol). Ablation streams set 2022.
    default_stop_year: int | None = None
    # Entries left out because their data is missing (``skip_missing``), as "<year> <task key>".
    skipped: list[str] = field(default_factory=list)
    # What the task cache keeps of each image (``data/images.py``): "center-square", or "full" to keep
    # the full frame too for training crops; set by the run (``image_framing``).
    image_framing: str = CENTER_SQUARE

    def entries_before(self, stop_year: int) -> list[StreamEntry]:
        return [e for e in self.entries if e.year < stop_year]

    def events(self, stop_year: int, predict_split: str = "dev_test", final_eval: bool = False) -> list[Event]:
        """The protocol's event sequence; deterministic for a given stream and options."""
        events: list[Event] = []
        seen: dict[str, TaskInfo] = {}
        for entry in self.entries_before(stop_year):
            events.append(TrainEvent(index=len(events), task=entry.task))
            events.append(PredictEvent(index=len(events), task=entry.task, split=predict_split))
            seen.setdefault(entry.task.key, entry.task)
        if final_eval:
            for task in seen.values():
                events.append(PredictEvent(index=len(events), task=task, split=predict_split, final_eval=True))
        return events

    def sources(self, stop_year: int) -> dict[str, tuple[TaskInfo, TaskSource]]:
        """Distinct tasks before ``stop_year`` (first occurrence), in stream order."""
        out: dict[str, tuple[TaskInfo, TaskSource]] = {}
        for entry in self.entries_before(stop_year):
            out.setdefault(entry.task.key, (entry.task, entry.source))
        return out


class StreamData:
    """Cached data of a stream's tasks; what ``ctx.data`` gives a learner."""

    def __init__(self, stream: Stream, stop_year: int, data_dir: str | os.PathLike, image_size: int):
        self.stream = stream
        self.image_size = image_size
        self.data_dir = data_dir
        self.cache = TaskCache(data_dir)
        self._sources = stream.sources(stop_year)
        self._tasks: dict[str, CachedTask] = {}

    def check_available(self) -> None:
        """Raise one error that lists every missing dataset with how to get it, before any compute."""
        missing = []
        for key, (task, source) in self._sources.items():
            if self._get(key) is not None:
                continue
            availability = source.availability()
            if not availability.available:
                missing.append(f"  - {task.name} ({key}, {source.describe()}): {availability.how_to_get}")
        if missing:
            raise DataMissingError(
                f"stream {self.stream.name!r} needs {len(missing)} dataset(s) that are not available:\n"
                + "\n".join(missing)
            )

    def prepare(self, progress: bool = True, on_task: Callable[[str], None] | None = None) -> None:
        """Materialise every task into the cache (generation or conversion happens once), then check every
        cached task (:meth:`task`), so that a damaged entry stops the run before any compute."""
        todo = [
            (key, source)
            for key, (_, source) in self._sources.items()
            if self._get(key) is None
        ]
        for key, source in tqdm(todo, desc="preparing task cache", unit="task", disable=not progress or not todo):
            self._tasks[key] = self._checked(key, self._write(key, source))
            if on_task:
                on_task(key)
        for key in self._sources:
            self.task(key)

    def _framed(self, source: TaskSource) -> bool:
        """Whether ``source``'s cache entry keeps full frames: framing ``full`` and a source whose images
        are not all square (one with ``build_full``); square images are their own full frame."""
        return self.stream.image_framing == FULL and hasattr(source, "build_full")

    def fingerprint(self, source: TaskSource) -> str:
        """The cache key of ``source`` at this stream's image size and framing."""
        base = source.fingerprint(self.image_size)
        return f"{base}:{FRAME_ID}" if self._framed(source) else base

    def rebuild_hint(self, key: str, folder=None) -> str:
        """How to rebuild a damaged cache entry of ``key``."""
        _, source = self._sources[key]
        folder = folder or self.cache.task_dir(key, self.fingerprint(source))
        return (
            f"rebuild it with `nevis-bench data prepare --stream {self.stream.name} --data-dir {self.data_dir} "
            f"--image-size {self.image_size}`, or delete {folder} and run again (the task is rebuilt from its source)"
        )

    def _checked(self, key: str, cached: CachedTask) -> CachedTask:
        """``cached`` after :func:`check_once` against the task; a :class:`CacheError` naming what is wrong."""
        task, _ = self._sources[key]
        problems = check_once(cached, num_classes=task.num_classes, channels=task.channels,
                              image_size=self.image_size, kind=task.kind)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise CacheError(
                f"task {key!r} ({task.name}) of stream {self.stream.name!r}: the task cache entry {cached.path} "
                f"does not match its manifest or the task: {shown}. It is damaged; {self.rebuild_hint(key, cached.path)}"
            )
        return cached

    def _get(self, key: str) -> CachedTask | None:
        _, source = self._sources[key]
        try:
            return self.cache.get(key, self.fingerprint(source))
        except CacheError as error:
            raise CacheError(f"{error}. The entry is damaged; {self.rebuild_hint(key)}") from error

    def rebuild(self, key: str) -> CachedTask:
        """Build ``key``'s cache entry again from its source, replacing the existing one (damaged or not)."""
        _, source = self._sources[key]
        self._tasks.pop(key, None)
        self.cache.remove(key, self.fingerprint(source))
        return self.task(key)

    def problems(self, key: str) -> list[str]:
        """What is wrong with ``key``'s cache entry (all hashes recomputed); empty when intact or not cached."""
        task, source = self._sources[key]
        try:
            cached = self.cache.get(key, self.fingerprint(source))
        except CacheError as error:
            return [str(error)]
        if cached is None:
            return []
        return cached.check(num_classes=task.num_classes, channels=task.channels, image_size=self.image_size,
                            kind=task.kind)

    def _write(self, key: str, source: TaskSource) -> CachedTask:
        task, _ = self._sources[key]
        metadata = {
            "source": source.describe(),
            "task_name": task.name,
            "kind": task.kind,
            "num_classes": task.num_classes,
            "channels": task.channels,
            "domain": task.domain,
            "image_size": self.image_size,
            "image_framing": FULL if self._framed(source) else CENTER_SQUARE,
        }
        # first: building may fetch what the fingerprint describes
        splits = source.build_full(self.image_size) if self._framed(source) else source.build(self.image_size)
        return self.cache.write(key, self.fingerprint(source), splits, metadata)

    def task(self, key: str) -> CachedTask:
        """The cached task ``key``, built on first use; checked once per process (a :class:`CacheError`
        when the entry does not match its manifest or the task)."""
        if key not in self._tasks:
            if key not in self._sources:
                raise KeyError(f"task {key!r} is not part of stream {self.stream.name!r}")
            _, source = self._sources[key]
            cached = self._get(key)
            self._tasks[key] = self._checked(key, cached if cached is not None else self._write(key, source))
        return self._tasks[key]

    def split(self, key: str, split: str) -> SplitData:
        return self.task(key).split(split)

    def task_keys(self) -> Iterable[str]:
        return self._sources.keys()
