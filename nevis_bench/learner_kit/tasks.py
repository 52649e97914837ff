"""What a task's kind means for a learner, in one object instead of single-/multi-label branches.

:func:`task_kind` gives a :class:`TaskKind` for a :class:`~nevis_bench.protocol.TaskInfo`: its
loss (cross-entropy with optional label smoothing, or per-class binary cross-entropy), the dtype
its targets take, how logits become the scores a :class:`~nevis_bench.protocol.Predictions` holds
(softmax or sigmoid), and how a whole score matrix becomes the batches of predictions a predict
event returns. Every learner goes through it, so a new kind is one change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.protocol import MULTI_LABEL, Predictions, TaskInfo


@dataclass(frozen=True)
class TaskKind:
    """Loss, targets and scores of one task kind (``multi_label`` or not)."""

    multi_label: bool
    num_classes: int
    label_smoothing: float = 0.0

    @property
    def target_dtype(self) -> torch.dtype:
        return torch.float32 if self.multi_label else torch.int64

    @property
    def loss_key(self) -> str:
        """Names the loss for FLOP-count caches (the loss does not change the counted matmuls)."""
        return "bce" if self.multi_label else f"ce{self.label_smoothing}"

    def target_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.num_classes) if self.multi_label else (batch,)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.multi_label:
            per_class = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
            per_example = per_class.mean(dim=1)
        else:
            per_example = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing, reduction="none")
        return per_example.mean() if reduction == "mean" else per_example

    def targets(self, labels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Labels of a split as a target tensor of the right dtype."""
        if isinstance(labels, torch.Tensor):
            return labels.to(self.target_dtype)
        return torch.from_numpy(np.ascontiguousarray(labels)).to(self.target_dtype)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or per-class sigmoid (on the logits' device, float32)."""
        logits = logits.float()  # bf16 autocast gives bf16 logits
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)

    def scores(self, logits: torch.Tensor) -> np.ndarray:
        """Probabilities as float64 numpy (one device-to-host copy)."""
        return self.probabilities(logits).double().cpu().numpy()

    def predictions(self, scores: torch.Tensor | np.ndarray, batch_size: int = 256) -> Iterator[Predictions]:
        """A whole split's scores (N, K), computed up front, as predictions in batches of ``batch_size``.

        Multi-label scores are clipped to [0, 1] (they must be probabilities)."""
        if isinstance(scores, torch.Tensor):
            scores = scores.double().cpu().numpy()
        scores = np.asarray(scores, dtype=np.float64)
        if self.multi_label:
            scores = np.clip(scores, 0.0, 1.0)
        for start in range(0, len(scores), batch_size):
            indices = np.arange(start, min(start + batch_size, len(scores)))
            yield Predictions(indices=indices, scores=scores[indices])


def task_kind(task: TaskInfo, label_smoothing: float = 0.0) -> TaskKind:
    """The :class:`TaskKind` of ``task`` (label smoothing applies to single-label tasks only)."""
    multi = task.kind == MULTI_LABEL
    return TaskKind(multi_label=multi, num_classes=task.num_classes, label_smoothing=0.0 if multi else label_smoothing)
