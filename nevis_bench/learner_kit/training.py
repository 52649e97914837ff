"""The reference's fine-tuning recipe and the one training loop of the learner kit.

:func:`fit` is the loop every learner that trains an image model goes through: plain fine-tuning
(``independent``, ``finetune_prev``, ``dynamic_knn``'s trials, ``pruned_finetune``), and, through
its ``loss`` / ``step_flops`` / ``optimizer`` / ``dev_error`` arguments, the distillation learners
(``comformer``, ``muhdi``). Pre-training (:mod:`nevis_bench.learner_kit.pretrain`) reuses its
optimiser, schedule and task-kind losses.

SGD with Nesterov momentum 0.9 and weight decay 1e-4 (on weights, not on biases and batch-norm
parameters, as the reference's JAX learners), linear warm-up to the peak learning rate then cosine
decay to zero, optional label smoothing, validation on ``dev`` every ``eval_every_epochs`` epochs,
keep the best validated state, and stop early after ``patience`` validations without improvement
(once ``min_steps`` steps are done).
(The reference's configs set a grace of 50,000 validations, so its early stopping never fires;
ours does, which is the behaviour its code describes; ``patience=0`` turns it off.)

Step budget per task, by rule rather than per dataset: ``epochs`` passes over the training split,
clipped to ``[min_steps, max_steps]``. The reference's recipe needs three more settings, all off by
default: ``final_learning_rate`` (its cosine ends at 1e-8, not 0), ``eval_every_steps`` (it
validates every 1,000 steps rather than every epoch) and ``adaptive_batch_size`` (its Dynamic
learner's batch of ``min(512, max(16, 2^floor(log2(0.0025 N))))`` for N training examples).

GPU execution (all options of :class:`RecipeConfig`, off by default so CPU results are unchanged):
``precision="bf16"`` runs forward and loss under bf16 autocast (weights, optimiser and batch-norm
statistics stay fp32); ``channels_last`` stores weights and inputs in NHWC memory format;
``compile`` trains through ``torch.compile``; ``prefetch`` batches are built ahead in a background
thread (pinned host memory and asynchronous copies on CUDA). By default prefetching is on for CUDA
and off on CPU: there the thread competes with torch's intra-op threads for the same cores (on 2
cores the harness took 1.27x the time of a bare loop with it and 1.02x without; scripts/bench_core.py).
FLOPs are counted in the model's own shapes on the meta device, so none of these options changes the
counts.

Compute: every optimisation step costs the counted forward+backward FLOPs of one batch (``train``);
every validation costs the counted forward FLOPs of the dev split (``validation``, its own phase).

Host syncs: the loop reads one value back from the device per step (the finiteness of the loss);
loss parts a caller reports are kept on the device and read once at the end.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from nevis_bench.data.loader import AugmentConfig, TrainBatches, eval_batches, step_batches
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.models import parameter_usage
from nevis_bench.protocol import Context, Predictions, ResourceUsage, TaskInfo
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
    final_learning_rate: float = 0.0  # where the cosine ends (the reference: 1e-8)
    eval_every_steps: int = 0  # > 0: validate every this many steps instead of every eval_every_epochs
    adaptive_batch_size: bool = False  # the reference Dynamic's batch rule (module docstring); else batch_size

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
        if not 0 <= self.final_learning_rate <= self.learning_rate:
            raise ValueError("final_learning_rate must be in [0, learning_rate]")
        if self.eval_every_steps < 0:
            raise ValueError("eval_every_steps must be >= 0")

    @property
    def augment(self) -> AugmentConfig:
        return AugmentConfig(
            input_size=self.input_size, random_crop=self.random_crop,
            crop_scale=(self.crop_scale_min, 1.0), flip=self.flip,
        )


def batch_size_for(recipe: RecipeConfig, num_train: int) -> int:
    """The training batch for ``num_train`` examples: ``batch_size``, or the reference's adaptive rule."""
    if getattr(recipe, "adaptive_batch_size", False):
        return int(min(512, max(16, 2 ** math.floor(math.log2(max(1e-9, 0.0025 * num_train))))))
    return recipe.batch_size


def step_budget(recipe: RecipeConfig, num_train: int) -> int:
    steps = math.ceil(recipe.epochs * num_train / min(batch_size_for(recipe, num_train), num_train))
    return int(min(max(steps, recipe.min_steps), recipe.max_steps))


def train_step_flops(model: nn.Module, task: TaskInfo, ctx: Context, recipe: RecipeConfig, num_train: int) -> float:
    """Counted FLOPs of one plain training step of ``model`` (forward + backward of one batch), in
    the shapes :func:`fit` trains with: the batch of :func:`batch_size_for`, at most ``num_train``."""
    batch = min(batch_size_for(recipe, num_train), num_train)
    kind = task_kind(task, recipe.label_smoothing)
    return ctx.flops.train_step(model, (batch, 3, recipe.input_size, recipe.input_size), kind.target_shape(batch),
                                kind.loss, kind.target_dtype, kind.loss_key)


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


def learning_rate_at(step: int, total: int, warmup: int, peak: float, final: float = 0.0) -> float:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine from ``peak`` to ``final``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, recipe: RecipeConfig,
                   lr_scales: dict[nn.Module, float] | None = None) -> torch.optim.Optimizer:
    """Nesterov SGD with weight decay on weights only (not biases or batch-norm parameters).

    ``lr_scales``: sub-modules of ``model`` whose learning rate is the schedule's times a factor (a
    group's ``lr_scale``, which :func:`fit` applies); the rest of ``model`` uses factor 1."""
    scaled = list((lr_scales or {}).items())
    taken = {id(p) for module, _ in scaled for p in module.parameters()}
    rest = [p for p in model.parameters() if id(p) not in taken]
    groups = []
    for params, scale in [(list(m.parameters()), f) for m, f in scaled] + [(rest, 1.0)]:
        trainable = [p for p in params if p.requires_grad]
        groups += [
            {"params": [p for p in trainable if p.ndim > 1], "weight_decay": recipe.weight_decay, "lr_scale": scale},
            {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0, "lr_scale": scale},
        ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]], lr=recipe.learning_rate, momentum=recipe.momentum, nesterov=recipe.nesterov,
    )


@torch.no_grad()
def evaluate_error(model: nn.Module, task: TaskInfo, split, recipe: RecipeConfig, device) -> float:
    """1 - the task's metric of ``model`` on ``split`` (scores gathered on the device, one copy back)."""
    model.eval()
    kind = task_kind(task)
    scores, targets = [], []
    for _, x, y in eval_batches(split, recipe.eval_batch_size, recipe.input_size):
        with autocast(recipe, device):
            logits = model(to_device(_pin(x, device), device, recipe))
        scores.append(kind.probabilities(logits))
        targets.append(y.numpy())
    model.train()
    scores = torch.cat(scores).double().cpu().numpy()
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
    flops_train: float  # the optimisation steps
    flops_validation: float  # the validations on dev
    best_dev_error: float  # nan when nothing was validated
    validations: int
    early_stopped: bool
    last: dict[str, float] = field(default_factory=dict)  # the loss parts of the last step

    def info(self) -> dict[str, Any]:
        return {
            "steps": self.steps, "best_dev_error": self.best_dev_error,
            "validations": self.validations, "early_stopped": self.early_stopped,
            **{f"loss_{k}": v for k, v in self.last.items()},
        }

    def usage(self, *held) -> ResourceUsage:
        """A train event's usage when this fit is its training: train and validation FLOPs, ``info``,
        and the parameters of everything the learner holds after the event (``held``: modules or
        state dicts, see :func:`~nevis_bench.learner_kit.models.parameter_usage`)."""
        return ResourceUsage(flops_train=self.flops_train, flops_validation=self.flops_validation,
                             info=self.info(), **parameter_usage(*held))


StepLoss = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]


def fit(model: nn.Module, task: TaskInfo, ctx: Context, recipe: RecipeConfig, tag: str = "fit", *,
        loss: StepLoss | None = None, step_flops: float | None = None,
        optimizer: torch.optim.Optimizer | None = None, dev_error: Callable[[], float] | None = None,
        validate: bool = True, clip_grad_norm: float = 0.0,
        after_step: Callable[[int], None] | None = None,
        before_step: Callable[[int], None] | None = None) -> FitResult:
    """Train ``model`` on ``task``'s train split in place; leaves the best validated weights in it.

    The plain recipe needs only the first four arguments. Learners with their own objective pass:

    * ``loss(x, y) -> (loss, parts)``: the step's loss from a device batch (default: the task kind's
      loss of ``model(x)``); ``parts`` are detached tensors reported in :attr:`FitResult.last`.
    * ``step_flops``: the counted FLOPs of one such step (default: ``model``'s forward + backward).
    * ``optimizer``: e.g. :func:`make_optimizer` with ``lr_scales`` (default: the recipe's).
    * ``dev_error()``: the error that selects the kept state (default: ``model`` on the dev split);
      its FLOPs are the forward FLOPs of ``model`` over dev, what the default costs.
    * ``validate=False``: no validation, no selection, the full budget (``patience`` ignored).
    * ``clip_grad_norm`` > 0: clip the gradient norm of ``model``; ``after_step(step)`` (counted
      from 1) runs after each update.
    * ``before_step(step)`` (counted from 0): runs after the backward pass and the clipping, before
      the update, e.g. to change the gradients (A-GEM's projection); its FLOPs belong in
      ``step_flops`` and it must not read values back from the device.

    Resumes from ``ctx.resume_state`` when its ``tag`` matches; calls ``ctx.checkpoint`` when due
    with everything needed to continue exactly (weights, optimiser, best state, counters).
    """
    device = ctx.device
    forward = prepare_model(model, recipe, device)
    model.train()
    kind = task_kind(task, recipe.label_smoothing)
    train = ctx.data.split(task.key, "train")
    dev = ctx.data.split(task.key, "dev")
    batches = TrainBatches(train, batch_size_for(recipe, len(train)), recipe.augment,
                           seed=ctx.rng_seed(tag, "batches"))
    total = step_budget(recipe, len(train))
    warmup = min(total - 1, round(recipe.warmup_epochs * batches.steps_per_epoch))
    eval_period = recipe.eval_every_steps or max(1, round(recipe.eval_every_epochs * batches.steps_per_epoch))
    optimizer = optimizer or make_optimizer(model, recipe)
    if loss is None:
        def loss(x, y):
            return kind.loss(forward(x), y), {}

    step, best_error, best_state, bad, validations, early = 0, math.inf, None, 0, 0, False
    resume = ctx.resume_state
    if resume is not None and resume.get("tag") == tag:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step, best_error, bad, validations = resume["step"], resume["best_error"], resume["bad"], resume["validations"]
        best_state = resume["best_state"]
        resumed_parts = resume.get("parts", {})  # a run resumed right before it stops still reports them

    if step_flops is None:
        step_flops = train_step_flops(model, task, ctx, recipe, len(train))
    eval_flops = ctx.flops.forward_examples(model, (3, recipe.input_size, recipe.input_size), len(dev),
                                            recipe.eval_batch_size) if validate else 0
    dev_error = dev_error or (lambda: evaluate_error(forward, task, dev, recipe, device))

    bar = ctx.progress_bar(total, f"train {task.key}", initial=step)
    resumed_at = step if resume is not None else None
    on_cuda = torch.device(device).type == "cuda"
    feed = step_batches(batches, step, total, prefetch_depth(recipe, on_cuda), on_cuda)
    parts: dict[str, torch.Tensor] = resumed_parts if resume is not None and resume.get("tag") == tag else {}
    try:
        while step <= total:
            if step != resumed_at and ctx.checkpoint_due(step):
                ctx.checkpoint({
                    "tag": tag, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "best_error": best_error, "best_state": best_state, "bad": bad, "validations": validations,
                    "parts": parts,
                })
            if validate and (step % eval_period == 0 or step == total):
                error = dev_error()
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
            lr = learning_rate_at(step, total, warmup, recipe.learning_rate, recipe.final_learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            batch_step, x, y = next(feed)
            assert batch_step == step, (batch_step, step)
            with autocast(recipe, device):
                value, parts = loss(to_device(x, device, recipe), y.to(device, non_blocking=True))
            if not torch.isfinite(value):  # the step's one read-back from the device
                raise TrainingDiverged(
                    f"loss became {value.item()} at step {step} of task {task.key!r} (learning rate {lr:.3g}); "
                    "lower the learning rate, e.g. -o learning_rate=0.01"
                )
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            if before_step is not None:
                before_step(step)
            optimizer.step()
            step += 1
            if after_step is not None:
                after_step(step)
            bar.update(1)
    finally:
        feed.close()
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        steps=step,
        flops_train=float(step * step_flops),
        flops_validation=float(validations * eval_flops),
        best_dev_error=float(best_error) if validations else math.nan,
        validations=validations,
        early_stopped=early,
        last={k: float(v) for k, v in parts.items()},
    )


def predict_batches(model: nn.Module, task: TaskInfo, split, recipe: RecipeConfig, device) -> Iterator[Predictions]:
    """Predictions of ``model`` over ``split`` with the evaluation preprocessing, batch by batch."""
    model.to(device).eval()
    if getattr(recipe, "channels_last", False):
        model.to(memory_format=torch.channels_last)
    kind = task_kind(task)
    with torch.no_grad():
        for indices, x, _ in eval_batches(split, recipe.eval_batch_size, recipe.input_size):
            with autocast(recipe, device):
                logits = model(to_device(_pin(x, device), device, recipe))
            yield Predictions(indices=indices, scores=kind.scores(logits))
