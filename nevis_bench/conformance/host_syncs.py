"""Counting a learner's host syncs per training step (the conformance check ``host_syncs``).

A host sync is a call that makes the host wait for the device: ``Tensor.item``, ``tolist``,
``cpu``, ``numpy``, ``__array__``, and converting a tensor with ``bool()``, ``float()`` or
``int()``. On a GPU each one stalls the pipeline, so a training step should make at most one (the
kit's :func:`~nevis_bench.learner_kit.training.fit` makes exactly one: the finiteness of the loss).

:class:`SyncCounter` patches those methods of ``torch.Tensor`` while it is active and counts the
calls that:

* come from code outside torch (torch's own optimisers read CPU step counters with ``item``;
  those are not the learner's doing),
* happen with gradients enabled (validation, feature encoding and prediction run under
  ``torch.no_grad`` and are not training steps),
* fall between two steps of the same optimiser: a training step is the interval that ends with
  ``Optimizer.step`` (a global post-step hook); the interval before a new optimiser's first step
  (model building, the setup of a train event or of a search trial) is not a step.

The counts work on the CPU, where the test suite runs: they count calls, not waiting time.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__array__", "__bool__", "__float__", "__int__")
_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass
class SyncCounter:
    """Context manager: ``steps`` lists the syncs of every training step after an event's first."""

    steps: list[int] = field(default_factory=list)
    _current: int | None = None  # syncs since the last optimiser step of this event; None before the first
    _saved: dict = field(default_factory=dict)
    _hook: object = None

    def new_event(self) -> None:
        """A train event or an optimiser starts: the interval up to the next optimiser step is setup."""
        self._current = None

    def _on_step(self, *_args) -> None:
        if self._current is not None:
            self.steps.append(self._current)
        self._current = 0

    def _wrap(self, name: str):
        original = getattr(torch.Tensor, name)

        @functools.wraps(original)
        def counted(tensor, *args, **kwargs):
            if self._current is not None and torch.is_grad_enabled():
                caller = sys._getframe(1).f_code.co_filename
                if not caller.startswith(_TORCH_DIR):
                    self._current += 1
            return original(tensor, *args, **kwargs)

        return original, counted

    def __enter__(self) -> "SyncCounter":
        for name in SYNC_METHODS:
            original, counted = self._wrap(name)
            self._saved[name] = original
            setattr(torch.Tensor, name, counted)
        init = torch.optim.Optimizer.__init__

        @functools.wraps(init)
        def new_optimizer(optimizer, *args, **kwargs):
            self.new_event()
            return init(optimizer, *args, **kwargs)

        self._saved["__optimizer_init__"] = init
        torch.optim.Optimizer.__init__ = new_optimizer
        self._hook = register_optimizer_step_post_hook(self._on_step)
        return self

    def __exit__(self, *exc) -> None:
        torch.optim.Optimizer.__init__ = self._saved.pop("__optimizer_init__")
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        self._saved.clear()
        self._hook.remove()
        self._current = None


class CountingLearner:
    """Wraps a learner so that every train event starts a new interval of ``counter``."""

    def __init__(self, learner, counter: SyncCounter):
        self._learner = learner
        self._counter = counter
        self.checkpoints_within_event = getattr(learner, "checkpoints_within_event", True)

    def init(self):
        return self._learner.init()

    def train(self, event, state, ctx):
        self._counter.new_event()
        try:
            return self._learner.train(event, state, ctx)
        finally:
            self._counter.new_event()

    def predict(self, event, state, ctx):
        return self._learner.predict(event, state, ctx)
