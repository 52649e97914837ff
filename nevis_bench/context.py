"""What a learner gets besides its state: data, device, seeds, FLOP counter, checkpointing."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from nevis_bench.flops import FlopCounter
from nevis_bench.stream import StreamData


class RunInterrupted(Exception):
    """A stop was requested (SIGTERM/SIGINT or a test); the evaluator saved a checkpoint."""


@dataclass
class LearnerContext:
    data: StreamData
    device: torch.device
    seed: int  # the run's seed
    event_index: int
    flops: FlopCounter
    resume_state: Any = None  # within-event state saved by ``checkpoint`` before an interruption
    progress: bool = True
    checkpoint_every_steps: int = 0
    checkpoint_every_seconds: float = 600.0
    _write_checkpoint: Callable[[Any], None] = field(default=lambda state: None, repr=False)
    _stop_requested: Callable[[], bool] = field(default=lambda: False, repr=False)
    _last_checkpoint_time: float = field(default_factory=time.monotonic, repr=False)

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
        if self._stop_requested():
            return True
        if self.checkpoint_every_steps and step > 0 and step % self.checkpoint_every_steps == 0:
            return True
        return time.monotonic() - self._last_checkpoint_time >= self.checkpoint_every_seconds

    def checkpoint(self, within_event_state: Any) -> None:
        """Persist the learner's progress inside this event; raises RunInterrupted if a stop is pending.

        ``within_event_state`` must be plain data from which ``train`` can continue exactly; it comes
        back as ``ctx.resume_state`` when the run resumes.
        """
        self._write_checkpoint(within_event_state)
        self._last_checkpoint_time = time.monotonic()
        if self._stop_requested():
            raise RunInterrupted()

    def progress_bar(self, total: int, desc: str, initial: int = 0):
        return tqdm(total=total, initial=initial, desc=desc, leave=False, disable=not self.progress, unit="step")
