"""What a learner gets besides its state: the event's data, device, seeds, FLOP counter, checkpoints.

:class:`LearnerContext` implements :class:`nevis_bench.protocol.Context`. Its ``data`` is an
:class:`EventData`, a view of the stream's task cache scoped to one event: the protocol is enforced
here, not trusted to the learner (``docs/design.md``, "The protocol").
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from nevis_bench.data.cache import SplitData
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.protocol import Event, PredictEvent, ProtocolViolation, TrainEvent
from nevis_bench.stream import StreamData


class RunInterrupted(Exception):
    """A stop was requested (SIGTERM/SIGINT or a test); the evaluator saved a checkpoint."""


class UnlabelledSplit:
    """The images of the split a predict event asks for: no labels, no example ids (ids can name
    the class, e.g. an archive path ``airplanes/0001.jpg``)."""

    labelled = False

    def __init__(self, split: SplitData, where: str):
        self.__split = split
        self._where = where

    @property
    def images(self) -> np.ndarray:
        return self.__split.images

    @property
    def labels(self) -> np.ndarray:
        raise ProtocolViolation(f"the labels of {self._where} are what this predict event is scored on; "
                                "a learner reads only the images of the split it predicts")

    @property
    def ids(self) -> np.ndarray:
        raise ProtocolViolation(f"the example ids of {self._where} are not handed to a predict event")

    def __len__(self) -> int:
        return len(self.__split)

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, None]:
        return self.__split.take(indices)[0], None


class EventData:
    """``ctx.data``: the splits one event may read.

    A train event reads its own task's ``train``, ``dev`` and ``train_and_dev`` splits (as named on
    the event); a predict event reads the images of the split it predicts. Every other request (a
    later or earlier task, ``dev_test``/``test``, labels of the predicted split) raises
    :class:`ProtocolViolation`. What a learner wants to keep for later it keeps in its state.
    """

    def __init__(self, stream_data: StreamData, event: Event, features_root: pathlib.Path | None = None):
        self.__stream_data = stream_data
        self._event = event
        self._features_root = features_root
        if isinstance(event, TrainEvent):
            self._allowed = {event.train_split, event.dev_split, event.train_and_dev_split}
        else:
            self._allowed = {event.split}

    @property
    def image_size(self) -> int:
        return self.__stream_data.image_size

    def _check(self, task_key: str, split: str | None) -> None:
        event = self._event
        kind = "train" if isinstance(event, TrainEvent) else "predict"
        if task_key != event.task.key:
            raise ProtocolViolation(
                f"event {event.index} ({kind} {event.task.key!r}) cannot read task {task_key!r}: an event reads "
                "only its own task; keep what you need from earlier tasks in the learner state"
            )
        if split is not None and split not in self._allowed:
            raise ProtocolViolation(
                f"event {event.index} ({kind} {event.task.key!r}) cannot read split {split!r}; it may read "
                f"{', '.join(sorted(self._allowed))}"
            )

    def split(self, task_key: str, split: str) -> SplitData | UnlabelledSplit:
        self._check(task_key, split)
        data = self.__stream_data.split(task_key, split)
        if isinstance(self._event, PredictEvent):
            return UnlabelledSplit(data, f"{task_key}/{split}")
        return data

    def cache_folder(self, task_key: str) -> str:
        """The task's cache folder name (its fingerprint): a key for on-disk caches of derived data."""
        self._check(task_key, None)
        return self.__stream_data.task(task_key).path.name

    @property
    def features_root(self) -> pathlib.Path:
        """Where derived features (frozen-encoder outputs) are cached: beside the task cache, unless the
        view was given another folder (the FLOP audit measures with an empty one)."""
        if self._features_root is not None:
            return self._features_root
        return pathlib.Path(self.__stream_data.cache.root).parent / "features"


@dataclass
class _CheckpointClock:
    """Shared by a context and its nested scopes: when the last within-event checkpoint was written."""

    last: float = field(default_factory=time.monotonic)


@dataclass
class LearnerContext:
    data: EventData
    device: torch.device
    seed: int  # the run's seed
    event_index: int
    flops: FlopCounter
    resume_state: Any = None  # within-event state saved by ``checkpoint`` before an interruption
    progress: bool = True
    checkpoint_every_steps: int = 0
    checkpoint_every_seconds: float = 600.0
    write_checkpoint: Callable[[Any], None] = field(default=lambda state: None, repr=False)
    stop_requested: Callable[[], bool] = field(default=lambda: False, repr=False)
    clock: _CheckpointClock = field(default_factory=_CheckpointClock, repr=False)

    def rng_seed(self, *tags: int | str) -> int:
        """A seed that depends on the run seed, this event and ``tags`` (stable across processes)."""
        words = [self.seed, self.event_index] + [
            int.from_bytes(t.encode()[:8].ljust(8, b"\0"), "little") if isinstance(t, str) else int(t) for t in tags
        ]
        return int(np.random.default_rng(words).integers(2**62))

    @contextlib.contextmanager
    def seeded(self, *tags: int | str) -> Iterator[None]:
        """Run a block (e.g. model construction) under torch's global RNG seeded from ``tags``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.rng_seed(*tags))
            yield

    def checkpoint_due(self, step: int) -> bool:
        """True when the learner should call :meth:`checkpoint` before doing ``step``."""
        if self.stop_requested():
            return True
        if self.checkpoint_every_steps and step > 0 and step % self.checkpoint_every_steps == 0:
            return True
        return time.monotonic() - self.clock.last >= self.checkpoint_every_seconds

    def checkpoint(self, within_event_state: Any) -> None:
        """Persist the learner's progress inside this event; raises RunInterrupted if a stop is pending.

        ``within_event_state`` must be plain data from which ``train`` can continue exactly; it comes
        back as ``ctx.resume_state`` when the run resumes.
        """
        self.write_checkpoint(within_event_state)
        self.clock.last = time.monotonic()
        if self.stop_requested():
            raise RunInterrupted()

    def nested(self, resume_state: Any, wrap: Callable[[Any], Any]) -> "LearnerContext":
        """A checkpoint scope for a loop inside this event (e.g. one trial of a search).

        The nested loop sees ``resume_state`` as its own and checkpoints plain data of its own; each
        such checkpoint is saved as ``wrap(inner_state)``, which must hold the outer loop's progress
        too. Timing is shared with this context.
        """
        return LearnerContext(
            data=self.data, device=self.device, seed=self.seed, event_index=self.event_index, flops=self.flops,
            resume_state=resume_state, progress=self.progress, checkpoint_every_steps=self.checkpoint_every_steps,
            checkpoint_every_seconds=self.checkpoint_every_seconds,
            write_checkpoint=lambda inner: self.write_checkpoint(wrap(inner)),
            stop_requested=self.stop_requested, clock=self.clock,
        )

    def progress_bar(self, total: int, desc: str, initial: int = 0):
        return tqdm(total=total, initial=initial, desc=desc, leave=False, disable=not self.progress, unit="step")


def event_context(stream_data: StreamData, event: Event, **options: Any) -> LearnerContext:
    """A context for calling a learner on ``event`` directly (tests, notebooks): the event-scoped data
    view of ``stream_data`` and a fresh FLOP counter unless ``flops=`` is given; ``options`` are other
    :class:`LearnerContext` fields."""
    options.setdefault("device", torch.device("cpu"))
    options.setdefault("seed", 0)
    options.setdefault("flops", FlopCounter())
    return LearnerContext(data=EventData(stream_data, event), event_index=event.index, **options)
