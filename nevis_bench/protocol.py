"""The learner protocol: events, resource usage, predictions, and the Learner interface.

A learner is three functions over plain-data state (``docs/design.md``, "The protocol"):

* ``init() -> state``
* ``train(event, state, ctx) -> (state, ResourceUsage)``
* ``predict(event, state, ctx) -> (iterable of Predictions, ResourceUsage)``

State is plain data (dicts, lists, numbers, strings, tensors) so that checkpoints are ``torch.save``
of it and load with ``weights_only=True``; no pickled object graphs.

What a learner may read is what the event hands it (:class:`Context`): ``ctx.data`` is scoped to the
event, and anything else raises :class:`ProtocolViolation`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

import numpy as np

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
TASK_KINDS = (SINGLE_LABEL, MULTI_LABEL)

SPLITS = ("train", "dev", "train_and_dev", "dev_test", "test")

PHASES = ("train", "search", "selection", "inference")


@dataclass(frozen=True)
class TaskInfo:
    """What a learner may know about a task: its identity and label space."""

    key: str  # canonical task key; a repeated dataset keeps its key
    name: str  # display name
    year: int
    kind: str  # SINGLE_LABEL or MULTI_LABEL
    num_classes: int
    domain: str  # image type: ocr, texture, object, face, scene, ...
    channels: int  # 1 for grey, 3 for colour, as stored
    # Tasks naming the same non-empty label space share one set of labels (a class-incremental stream
    # says so); "" means the task's labels are its own, whatever its kind or class count.
    label_space: str = ""


@dataclass(frozen=True)
class TrainEvent:
    """Train on ``task``: fit on ``train`` (with ``dev`` for model selection) or on ``train_and_dev``."""

    index: int
    task: TaskInfo
    train_split: str = "train"
    dev_split: str = "dev"
    train_and_dev_split: str = "train_and_dev"


@dataclass(frozen=True)
class PredictEvent:
    """Predict every example of ``split`` of ``task``, in split order."""

    index: int
    task: TaskInfo
    split: str = "dev_test"
    final_eval: bool = False  # part of the end-of-stream evaluation of every seen task


Event = TrainEvent | PredictEvent


@dataclass
class ResourceUsage:
    """Compute spent by one learner call, split by phase (``docs/design.md``, "Compute accounting").

    FLOPs use 1 multiply-accumulate = 2 FLOPs. ``flops_train`` covers every optimisation step and any
    forward pass that training needs (validation on dev, frozen-encoder features, teachers, replay);
    ``flops_search`` the hyperparameter trials that were not kept; ``flops_selection`` choosing
    among models or initialisations; ``flops_validation`` the forward passes over ``dev`` that pick
    the kept state or stop training early (of every model trained, search trials included);
    ``flops_inference`` what a predict event computes.
    ``info`` carries learner-specific numbers (steps taken, early stopping, ...) into the records.
    """

    flops_train: float = 0.0
    flops_search: float = 0.0
    flops_selection: float = 0.0
    flops_inference: float = 0.0
    flops_validation: float = 0.0
    peak_parameter_count: int = 0
    peak_parameter_bytes: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def headline_flops(self) -> float:
        """Training compute as the benchmark counts it: train + search + selection + validation."""
        return self.flops_train + self.flops_search + self.flops_selection + self.flops_validation


@dataclass
class Predictions:
    """Scores for a batch of a split.

    ``indices``: positions of the examples in the split (int64, shape ``(B,)``).
    ``scores``: shape ``(B, num_classes)``. Single-label: any per-class scores whose arg-max is the
    prediction (probabilities preferred). Multi-label: per-class probabilities in [0, 1].
    """

    indices: np.ndarray
    scores: np.ndarray


class ProtocolViolation(PermissionError):
    """A learner asked for something the event does not hand it (another task, a held-out split, the
    labels of the split it predicts); the message says what was refused and what is allowed."""


class EventSplit(Protocol):
    """One split as a learner sees it. ``labels`` and ``ids`` raise ProtocolViolation on the split
    of a predict event (``labelled`` is False there); ``take`` then returns ``(images, None)``."""

    labelled: bool
    images: Any  # uint8 (N, S, S, C), possibly a read-only memory map

    @property
    def labels(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class EventDataView(Protocol):
    """``ctx.data``: the splits of the current event's task that the event allows (see Context)."""

    def split(self, task_key: str, split: str) -> EventSplit: ...

    def cache_folder(self, task_key: str) -> str: ...


class Context(Protocol):
    """What a learner gets besides its state (implemented by ``nevis_bench.run.context``).

    * ``data``: a train event reads its task's ``train``, ``dev`` and ``train_and_dev`` splits; a
      predict event reads the images of the split it predicts, never their labels. Nothing else:
      no other task, no ``dev_test``/``test`` labels.
    * ``flops``: the FLOP counter (``forward``, ``train_step``, ``forward_examples``, ``measured``).
    * ``rng_seed(*tags)`` / ``seeded(*tags)``: seeds derived from the run seed, event and tags.
    * ``checkpoint_due(step)`` / ``checkpoint(state)``: exact resume inside a long event; the state
      comes back as ``resume_state``. ``nested(resume_state, wrap)`` gives a nested loop (one
      trial of a search) its own checkpoint scope inside the event's.
    """

    data: EventDataView
    device: Any  # torch.device
    seed: int
    event_index: int
    flops: Any  # nevis_bench.learner_kit.flops.FlopCounter
    resume_state: Any
    progress: bool

    def rng_seed(self, *tags: int | str) -> int: ...

    def seeded(self, *tags: int | str) -> contextlib.AbstractContextManager[None]: ...

    def checkpoint_due(self, step: int) -> bool: ...

    def checkpoint(self, within_event_state: Any) -> None: ...

    def nested(self, resume_state: Any, wrap: Callable[[Any], Any]) -> "Context": ...

    def progress_bar(self, total: int, desc: str, initial: int = 0) -> Any: ...


@runtime_checkable
class Learner(Protocol):
    """What the evaluator calls; ``ctx`` is a :class:`Context`.

    A learner that never calls ``ctx.checkpoint`` inside an event declares it with a class attribute
    ``checkpoints_within_event = False`` (the conformance kit then does not expect a mid-event stop).
    A learner whose work is partly invisible to ``FlopCounterMode`` (scikit-learn, numpy) counts that
    work analytically in its ResourceUsage; the kit's FLOP audit accepts reported FLOPs at or above
    what the counter measured.
    """

    def init(self) -> Any: ...

    def train(self, event: TrainEvent, state: Any, ctx: Context) -> tuple[Any, ResourceUsage]: ...

    def predict(
        self, event: PredictEvent, state: Any, ctx: Context
    ) -> tuple[Iterable[Predictions], ResourceUsage]: ...


def state_bytes(state: Any) -> int:
    """Bytes of every array a learner state holds (tensors, numpy arrays, bytes), walking dicts,
    lists and tuples: what the learner stores between events, buffers and model zoos included.
    Scalars and strings count 0 (they are bookkeeping, not storage)."""
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_bytes(v) for v in state)
    if isinstance(state, (bytes, bytearray)):
        return len(state)
    if hasattr(state, "element_size") and hasattr(state, "numel"):  # a torch tensor (no torch import here)
        return int(state.element_size() * state.numel())
    if isinstance(state, np.ndarray):
        return int(state.nbytes)
    return 0

