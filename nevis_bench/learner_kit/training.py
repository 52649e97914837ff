"""The reference's fine-tuning recipe, shared by every baseline learner.

SGD with Nesterov momentum 0.9 and weight decay 1e-4 (on weights, not on biases and batch-norm
parameters, as the reference's JAX learners), linear warm-up to the peak learning rate then cosine
decay to zero, optional label smoothing, validation on ``dev`` every ``eval_every_epochs`` epochs,
keep the best validated state, and stop early after ``patience`` validations without improvement
(once ``min_steps`` steps are done).
(The reference's configs set a grace of 50,000 validations, so its early stopping never fires;
ours does, which is the behaviour its code describes.)

Step budget per task, by rule rather than per dataset: ``epochs`` passes over the training split,
clipped to ``[min_steps, max_steps]``.

GPU execution (all options of :class:`RecipeConfig`, off by default so CPU results are unchanged):
``precision="bf16"`` runs forward and loss under bf16 autocast (weights, optimiser and batch-norm
statistics stay fp32); ``channels_last`` stores weights and inputs in NHWC memory format;
``compile`` trains through ``torch.compile``; ``prefetch`` batches are built ahead in a background
thread (pinned host memory and asynchronous copies on CUDA). By default prefetching is on for CUDA
and off on CPU: there the thread competes with torch's intra-op threads for the same cores (on 2
cores the harness took 1.27x the time of a bare loop with it and 1.02x without; scripts/bench_core.py).
FLOPs are counted in the model's own shapes on the meta device, so none of these options changes the
counts.

Compute: every optimisation step costs the counted forward+backward FLOPs of one batch; every
validation costs the counted forward FLOPs of the dev split. Both are ``train`` FLOPs.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.data.loader import AugmentConfig, TrainBatches, eval_batches, step_batches
from nevis_bench.learner_kit.models import parameter_bytes, parameter_count
from nevis_bench.protocol import MULTI_LABEL, Context, Predictions, TaskInfo
from nevis_bench.records import metrics


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the task and what to change."""


PRECISIONS = ("fp32", "bf16")


@dataclass
class RecipeConfig:
    backbone: str = "small_convnet"
    batch_size: int = 64
    learning_rate: float = 0.05  # peak
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    epochs: float = 12.0
    min_steps: int = 40
    max_steps: int = 400
    warmup_epochs: float = 1.0
    eval_every_epochs: float = 1.0
    patience: int = 3  # validations without improvement before stopping; 0 disables early stopping
    input_size: int = 32
    random_crop: bool = True
    crop_scale_min: float = 0.35
    flip: bool = True
    eval_batch_size: int = 256
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of forward and loss; CUDA or CPU)
    channels_last: bool = False  # NHWC memory format for weights and inputs (faster convolutions on GPUs)
    compile: bool = False  # train through torch.compile (first steps pay the compilation)
    prefetch: int | None = None  # batches built ahead in a background thread; 0: synchronous (same
    # results); None: 2 on CUDA, 0 on CPU (see the module docstring)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.prefetch is not None and self.prefetch < 0:
            raise ValueError("prefetch must be >= 0")
        if self.learning_rate <= 0 or self.batch_size <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate, batch_size and epochs must be positive")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing must be in [0, 1)")
        if not 0 < self.crop_scale_min <= 1:
            raise ValueError("crop_scale_min must be in (0, 1]")
        if self.min_steps > self.max_steps:
            raise ValueError("min_steps must not exceed max_steps")

    @property
    def augment(self) -> AugmentConfig:
        return AugmentConfig(
            input_size=self.input_size, random_crop=self.random_crop,
            crop_scale=(self.crop_scale_min, 1.0), flip=self.flip,
        )


def step_budget(recipe: RecipeConfig, num_train: int) -> int:
    steps = math.ceil(recipe.epochs * num_train / min(recipe.batch_size, num_train))
    return int(min(max(steps, recipe.min_steps), recipe.max_steps))


def prefetch_depth(recipe, on_cuda: bool) -> int:
    """Batches to build ahead: ``recipe.prefetch`` when set, else 2 on CUDA and 0 (synchronous) on CPU."""
    depth = getattr(recipe, "prefetch", None)
    if depth is None:
        return 2 if on_cuda else 0
    return depth


def autocast(recipe, device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``recipe.precision == "bf16"``; nothing otherwise."""
    if getattr(recipe, "precision", "fp32") == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: nn.Module, recipe, device) -> nn.Module:
    """Move ``model`` to ``device`` (and NHWC when ``channels_last``); returns what to call for training.

    With ``compile`` the returned module is ``torch.compile(model)``, sharing ``model``'s parameters;
    keep using ``model`` itself for ``state_dict`` and FLOP counting.
    """
    model.to(device)
    if getattr(recipe, "channels_last", False):
        model.to(memory_format=torch.channels_last)
    if getattr(recipe, "compile", False):
        return torch.compile(model)
    return model


def to_device(x: torch.Tensor, device, recipe=None) -> torch.Tensor:
    """An input batch on ``device`` (asynchronous copy from pinned memory), NHWC if asked."""
    x = x.to(device, non_blocking=True)
    if recipe is not None and getattr(recipe, "channels_last", False) and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _pin(x: torch.Tensor, device) -> torch.Tensor:
    return x.pin_memory() if torch.device(device).type == "cuda" else x


def learning_rate_at(step: int, total: int, warmup: int, peak: float) -> float:
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(1.0, progress)))


def loss_function(task: TaskInfo, label_smoothing: float):
    if task.kind == MULTI_LABEL:
        return "bce", F.binary_cross_entropy_with_logits, torch.float32
    return (
        f"ce{label_smoothing}",
        lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing),
        torch.int64,
    )


def scores_from_logits(task: TaskInfo, logits: torch.Tensor) -> np.ndarray:
    logits = logits.float()  # bf16 autocast gives bf16 logits
    probabilities = torch.sigmoid(logits) if task.kind == MULTI_LABEL else torch.softmax(logits, dim=1)
    return probabilities.double().cpu().numpy()


def make_optimizer(model: nn.Module, recipe: RecipeConfig) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim > 1]
    no_decay = [p for p in trainable if p.ndim <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.learning_rate, momentum=recipe.momentum, nesterov=recipe.nesterov,
    )


@torch.no_grad()
def evaluate_error(model: nn.Module, task: TaskInfo, split, recipe: RecipeConfig, device) -> float:
    model.eval()
    scores, targets = [], []
    for _, x, y in eval_batches(split, recipe.eval_batch_size, recipe.input_size):
        with autocast(recipe, device):
            logits = model(to_device(_pin(x, device), device, recipe))
        scores.append(scores_from_logits(task, logits))
        targets.append(y.numpy())
    model.train()
    scores = np.concatenate(scores)
    if not np.all(np.isfinite(scores)):
        raise TrainingDiverged(
            f"the model's outputs on the dev split of task {task.key!r} became NaN or infinite; "
            "lower the learning rate, e.g. -o learning_rate=0.01"
        )
    _, value = metrics.task_metric(task.kind, scores, np.concatenate(targets))
    return 1.0 - value if not math.isnan(value) else 1.0


@dataclass
class FitResult:
    steps: int
    flops_train: float
    best_dev_error: float
    validations: int
    early_stopped: bool

    def info(self) -> dict[str, Any]:
        return {
            "steps": self.steps, "best_dev_error": self.best_dev_error,
            "validations": self.validations, "early_stopped": self.early_stopped,
        }


def fit(model: nn.Module, task: TaskInfo, ctx: Context, recipe: RecipeConfig, tag: str = "fit") -> FitResult:
    """Train ``model`` (backbone + head) on ``task`` in place; leaves the best validated weights in it.

    Resumes from ``ctx.resume_state`` when given; calls ``ctx.checkpoint`` when due with everything
    needed to continue exactly (weights, optimiser, best state, counters).
    """
    device = ctx.device
    forward = prepare_model(model, recipe, device)
    model.train()
    train = ctx.data.split(task.key, "train")
    dev = ctx.data.split(task.key, "dev")
    batches = TrainBatches(train, recipe.batch_size, recipe.augment, seed=ctx.rng_seed(tag, "batches"))
    total = step_budget(recipe, len(train))
    warmup = min(total - 1, round(recipe.warmup_epochs * batches.steps_per_epoch))
    eval_period = max(1, round(recipe.eval_every_epochs * batches.steps_per_epoch))
    loss_key, loss_fn, target_dtype = loss_function(task, recipe.label_smoothing)
    optimizer = make_optimizer(model, recipe)

    step, best_error, best_state, bad, validations, early = 0, math.inf, None, 0, 0, False
    resume = ctx.resume_state
    if resume is not None and resume.get("tag") == tag:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step, best_error, bad, validations = resume["step"], resume["best_error"], resume["bad"], resume["validations"]
        best_state = resume["best_state"]

    input_shape = (batches.batch_size, 3, recipe.input_size, recipe.input_size)
    target_shape = (batches.batch_size, task.num_classes) if task.kind == MULTI_LABEL else (batches.batch_size,)
    step_flops = ctx.flops.train_step(model, input_shape, target_shape, loss_fn, target_dtype, loss_key)
    eval_flops = ctx.flops.forward_examples(model, (3, recipe.input_size, recipe.input_size), len(dev), recipe.eval_batch_size)

    bar = ctx.progress_bar(total, f"train {task.key}", initial=step)
    resumed_at = step if resume is not None else None
    on_cuda = torch.device(device).type == "cuda"
    feed = step_batches(batches, step, total, prefetch_depth(recipe, on_cuda), on_cuda)
    try:
        while step <= total:
            if step != resumed_at and ctx.checkpoint_due(step):
                ctx.checkpoint({
                    "tag": tag, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "best_error": best_error, "best_state": best_state, "bad": bad, "validations": validations,
                })
            if step % eval_period == 0 or step == total:
                error = evaluate_error(forward, task, dev, recipe, device)
                validations += 1
                if error < best_error:
                    best_error, best_state, bad = error, copy.deepcopy(model.state_dict()), 0
                else:
                    bad += 1
                    if recipe.patience and bad >= recipe.patience and step >= recipe.min_steps:
                        early = step < total
                        break
            if step == total:
                break
            lr = learning_rate_at(step, total, warmup, recipe.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch_step, x, y = next(feed)
            assert batch_step == step, (batch_step, step)
            with autocast(recipe, device):
                loss = loss_fn(forward(to_device(x, device, recipe)), y.to(device, non_blocking=True))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at step {step} of task {task.key!r} (learning rate {lr:.3g}); "
                    "lower the learning rate, e.g. -o learning_rate=0.01"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
    finally:
        feed.close()
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        steps=step,
        flops_train=float(step * step_flops + validations * eval_flops),
        best_dev_error=float(best_error),
        validations=validations,
        early_stopped=early,
    )


def predict_batches(model: nn.Module, task: TaskInfo, split, recipe: RecipeConfig, device) -> Iterator[Predictions]:
    model.to(device).eval()
    if getattr(recipe, "channels_last", False):
        model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        for indices, x, _ in eval_batches(split, recipe.eval_batch_size, recipe.input_size):
            with autocast(recipe, device):
                logits = model(to_device(_pin(x, device), device, recipe))
            yield Predictions(indices=indices, scores=scores_from_logits(task, logits))


def model_usage(model: nn.Module) -> dict[str, int]:
    return {"peak_parameter_count": parameter_count(model), "peak_parameter_bytes": parameter_bytes(model)}
