"""FLOP counting (``docs/design.md``, "Compute accounting").

Counts come from ``torch.utils.flop_counter.FlopCounterMode`` (1 multiply-accumulate = 2 FLOPs).
Counting runs once per (module architecture, input shape, phase) on a copy of the module moved to
the ``meta`` device: no real arithmetic, no effect on the real weights, gradients or batch-norm
statistics, and no per-step overhead. Callers multiply the cached per-call count by the number of
calls (steps, batches).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def architecture_signature(module: nn.Module) -> tuple:
    """Parameter names, shapes and trainability: equal signatures have equal FLOP counts."""
    return (type(module).__name__,) + tuple(
        (name, tuple(p.shape), p.requires_grad) for name, p in module.named_parameters()
    )


def _meta_copy(module: nn.Module) -> nn.Module:
    clone = copy.deepcopy(module)
    return clone.to("meta")


def _meta_like(tensor_or_shape, dtype=torch.float32) -> torch.Tensor:
    if isinstance(tensor_or_shape, torch.Tensor):
        return torch.empty(tensor_or_shape.shape, dtype=tensor_or_shape.dtype, device="meta")
    return torch.empty(tuple(tensor_or_shape), dtype=dtype, device="meta")


def count_forward(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``module`` on a float input of ``input_shape``."""
    clone = _meta_copy(module)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        clone(_meta_like(input_shape))
    return int(counter.get_total_flops())


def count_train_step(
    module: nn.Module,
    input_shape: tuple[int, ...],
    target_shape: tuple[int, ...],
    loss_fn: LossFn,
    target_dtype: torch.dtype = torch.int64,
) -> int:
    """FLOPs of forward + loss + backward of ``module`` on one batch.

    Only parameters with ``requires_grad`` get gradients, as in the real step; the optimiser update
    is elementwise and not counted by FlopCounterMode (as in the reference's torch counter).
    """
    clone = _meta_copy(module)
    clone.train(module.training)
    inputs = _meta_like(input_shape)
    if target_dtype.is_floating_point:
        targets = _meta_like(target_shape, target_dtype)
    else:
        targets = torch.zeros(tuple(target_shape), dtype=target_dtype, device="meta")
    with FlopCounterMode(display=False) as counter:
        loss = loss_fn(clone(inputs), targets)
        if loss.requires_grad:
            loss.backward()
    return int(counter.get_total_flops())


class FlopCounter:
    """Per-run cache of FLOP counts keyed by (architecture, shapes, phase).

    ``ctx.flops`` is one of these; learners call :meth:`forward` and :meth:`train_step` when they
    start a loop and multiply by the number of calls they make.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, int] = {}
        self.counts_made = 0  # how many times FlopCounterMode actually ran (for tests/benchmarks)

    def forward(self, module: nn.Module, input_shape: tuple[int, ...]) -> int:
        key = ("forward", architecture_signature(module), tuple(input_shape))
        if key not in self._cache:
            self._cache[key] = count_forward(module, input_shape)
            self.counts_made += 1
        return self._cache[key]

    def train_step(
        self,
        module: nn.Module,
        input_shape: tuple[int, ...],
        target_shape: tuple[int, ...],
        loss_fn: LossFn,
        target_dtype: torch.dtype = torch.int64,
        loss_key: str = "",
    ) -> int:
        """``loss_key`` names the loss (e.g. "ce", "bce") so different losses are cached apart."""
        key = (
            "train_step", architecture_signature(module), tuple(input_shape), tuple(target_shape),
            str(target_dtype), loss_key, module.training,
        )
        if key not in self._cache:
            self._cache[key] = count_train_step(module, input_shape, target_shape, loss_fn, target_dtype)
            self.counts_made += 1
        return self._cache[key]

    def measured(self, key: tuple, fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn`` and return (its result, its FLOPs); FlopCounterMode wraps only the first call per key.

        ``key`` must determine the FLOPs (name the computation and every shape involved). The count
        covers everything ``fn`` does on tensors, backward passes included, on the real inputs.
        """
        full_key = ("measured",) + tuple(key)
        if full_key in self._cache:
            return fn(), self._cache[full_key]
        with FlopCounterMode(display=False) as counter:
            result = fn()
        self._cache[full_key] = int(counter.get_total_flops())
        self.counts_made += 1
        return result, self._cache[full_key]

    def forward_examples(self, module: nn.Module, example_shape: tuple[int, ...], num_examples: int, batch_size: int) -> int:
        """FLOPs of forwarding ``num_examples`` examples in batches of ``batch_size`` (last batch partial)."""
        full, rest = divmod(num_examples, batch_size)
        total = full * self.forward(module, (batch_size,) + tuple(example_shape)) if full else 0
        if rest:
            total += self.forward(module, (rest,) + tuple(example_shape))
        return total
