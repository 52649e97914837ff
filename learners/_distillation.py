"""Shared pieces of the distillation learners ``comformer`` and ``muhdi`` (not a learner itself).

* Label spaces. A task either joins a *shared* label space (``synthetic-class-incremental``: every task
  has the same ``num_classes`` and its training split holds only its own classes; one deployed head
  over the whole space, bookkeeping of the classes seen so far) or gets a *per-task* space (ordinary
  streams, e.g. Pascal 2007 multi-label then COIL-20: one deployed head per task key). ``label_space``
  = ``auto`` decides from the data: a single-label task whose training labels cover fewer than its
  ``num_classes`` classes joins the shared space ``shared:<num_classes>``; anything else is per task.
  ``shared`` / ``per_task`` force the choice.
* Networks. One backbone (``make_backbone``) with named linear heads; :func:`stage_features` returns
  the intermediate feature maps used by POD (the pre-ReLU output of each conv block of
  ``small_convnet``; the outputs of the four residual stages of the ResNets) and the pooled features.
* The teacher is the frozen previous model: the backbone and deployed heads of the state at the start
  of the train event, in eval mode.
* :func:`train_loop`: the SGD recipe of :mod:`nevis_bench.learner_kit.training` (Nesterov SGD, weight decay on
  weights only, warm-up + cosine, augmentation, ``epochs`` clipped to ``[min_steps, max_steps]``)
  with a learner-supplied loss, within-event checkpoints (``ctx.checkpoint_due`` / ``ctx.checkpoint``)
  and exact resume from ``ctx.resume_state``. Deviation from ``training.fit``: no validation-based
  early stopping or best-state selection, because a class-incremental task's dev split holds only
  its own classes and selecting on it would reward forgetting; the full step budget is used.
  Batches, prefetching, ``precision`` (bf16 autocast) and ``channels_last`` are those of ``fit``;
  ``compile`` is not applied (:func:`stage_features` walks the backbone's layers itself).
* FLOPs (train phase): per step, the counted forward + backward of the student through the backbone
  and every head the loss uses, plus the counted forward of the teacher (backbone + its heads).
  The distillation terms (softmax, KL, POD pooling) are elementwise; FlopCounterMode counts only
  matmuls/convolutions, so they count as 0 like the optimiser update (the reference's convention).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.run.context import LearnerContext
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.data.loader import TrainBatches, eval_batches, step_batches
from nevis_bench.learners._finetuning import plain_state_dict
from nevis_bench.learner_kit.models import make_backbone, parameter_bytes, parameter_count
from nevis_bench.protocol import MULTI_LABEL, SINGLE_LABEL, Predictions, ResourceUsage, TaskInfo
from nevis_bench.learner_kit.training import (
    RecipeConfig, TrainingDiverged, make_optimizer, autocast, learning_rate_at, prefetch_depth,
    step_budget, to_device,
)

LABEL_SPACES = ("auto", "shared", "per_task")
MODES = ("ta", "ti")


@dataclass
class DistillConfig(RecipeConfig):
    label_space: str = "auto"  # auto | shared | per_task (see the module docstring)
    mode: str = "ta"  # ta: scores over every class seen in the space; ti: restricted to the task's classes

    def __post_init__(self):
        super().__post_init__()
        if self.label_space not in LABEL_SPACES:
            raise ValueError(f"label_space must be one of {LABEL_SPACES}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")


# ----------------------------------------------------------------------------- losses


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, multi_label: bool = False,
          temperature: float = 1.0) -> torch.Tensor:
    """Per-sample KL(teacher || student): softmax over classes, or per-class Bernoulli (mean) if multi-label.

    Exactly 0 when the logits are equal.
    """
    s = student_logits / temperature
    t = teacher_logits / temperature
    if multi_label:
        log_s = torch.stack([F.logsigmoid(s), F.logsigmoid(-s)], dim=-1)
        log_t = torch.stack([F.logsigmoid(t), F.logsigmoid(-t)], dim=-1)
        return F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1).mean(-1)
    log_s = s - torch.logsumexp(s, dim=1, keepdim=True)
    log_t = t - torch.logsumexp(t, dim=1, keepdim=True)
    return F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(1)


def local_pod(student_maps: list[torch.Tensor], teacher_maps: list[torch.Tensor],
              scales: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """Local POD (MuHDi ``_local_pod``): squared activations; for each scale s, s x s cells, in each cell
    the per-channel mean over width and over height; concatenated; Frobenius norm of the difference
    averaged over the batch, then over the layers. Exactly 0 for equal maps."""
    losses = []
    for a, b in zip(student_maps, teacher_maps):
        a, b = a.pow(2), b.pow(2)
        n, _, h, w = a.shape
        pieces_a, pieces_b = [], []
        for s in scales:
            if s > h or s > w:
                continue
            hs, ws = h // s, w // s
            for i in range(s):
                for j in range(s):
                    ca = a[:, :, i * hs:(i + 1) * hs, j * ws:(j + 1) * ws]
                    cb = b[:, :, i * hs:(i + 1) * hs, j * ws:(j + 1) * ws]
                    pieces_a += [ca.mean(dim=3).reshape(n, -1), ca.mean(dim=2).reshape(n, -1)]
                    pieces_b += [cb.mean(dim=3).reshape(n, -1), cb.mean(dim=2).reshape(n, -1)]
        va, vb = torch.cat(pieces_a, dim=1), torch.cat(pieces_b, dim=1)
        losses.append(torch.linalg.vector_norm(va - vb, dim=1).mean())
    return torch.stack(losses).mean()


# ----------------------------------------------------------------------------- networks


def stage_features(backbone: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(intermediate maps for POD, pooled features) in one pass; same values as ``backbone(x)``."""
    maps: list[torch.Tensor] = []
    if hasattr(backbone, "features") and isinstance(backbone.features, nn.Sequential):
        for layer in backbone.features:
            if isinstance(layer, nn.ReLU):
                maps.append(x)  # pre-ReLU block output
                x = F.relu(x)
            else:
                x = layer(x)
        return maps, x.mean(dim=(2, 3))
    x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
    for name in ("layer1", "layer2", "layer3", "layer4"):
        x = getattr(backbone, name)(x)
        maps.append(x)
    return maps, x.mean(dim=(2, 3))


class MultiHeadNet(nn.Module):
    """A backbone and named linear heads (names are arbitrary strings, stored in order)."""

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Linear]):
        super().__init__()
        self.backbone = backbone
        self.names = list(heads)
        self.heads = nn.ModuleList([heads[n] for n in self.names])

    def head(self, name: str) -> nn.Linear:
        return self.heads[self.names.index(name)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """All heads' logits side by side (what FLOP counting measures)."""
        pooled = self.backbone(x)
        return torch.cat([h(pooled) for h in self.heads], dim=1)


def make_net(recipe: RecipeConfig, ctx: LearnerContext, backbone_state: dict | None,
             heads: dict[str, tuple[int, dict | None]]) -> MultiHeadNet:
    """``heads``: name -> (outputs, saved state or None for a fresh head seeded by its name)."""
    with ctx.seeded("init", "backbone"):
        backbone = make_backbone(recipe.backbone)
    if backbone_state is not None:
        backbone.load_state_dict(backbone_state)
    modules = {}
    for name, (outputs, saved) in heads.items():
        with ctx.seeded("init", name):
            modules[name] = nn.Linear(backbone.feature_dim, outputs)
        if saved is not None:
            modules[name].load_state_dict(saved)
    return MultiHeadNet(backbone, modules).to(ctx.device)


# ----------------------------------------------------------------------------- label spaces


def initial_state() -> dict:
    return {"backbone": None, "heads": {}, "spaces": {}, "task_space": {}}


def assign_space(config: DistillConfig, task: TaskInfo, state: dict, ctx: LearnerContext) -> tuple[str, list[int]]:
    """(space key, the task's classes in it) for a train event; the state is not changed."""
    train = ctx.data.split(task.key, "train")
    if task.key in state["task_space"]:
        space = state["task_space"][task.key]
    else:
        shared = config.label_space == "shared" and task.kind == SINGLE_LABEL
        if config.label_space == "auto" and task.kind == SINGLE_LABEL:
            shared = len(np.unique(np.asarray(train.labels))) < task.num_classes
        space = f"shared:{task.num_classes}" if shared else f"task:{task.key}"
    if space.startswith("shared:"):
        classes = sorted(int(c) for c in np.unique(np.asarray(train.labels)))
    else:
        classes = list(range(task.num_classes))
    return space, classes


def updated_spaces(state: dict, task: TaskInfo, space: str, classes: list[int]) -> tuple[dict, dict]:
    spaces = copy.deepcopy(state["spaces"])
    entry = spaces.setdefault(space, {"num_classes": task.num_classes, "kind": task.kind, "seen": [], "tasks": {}})
    entry["seen"] = sorted(set(entry["seen"]) | set(classes))
    entry["tasks"][task.key] = list(classes)
    return spaces, {**state["task_space"], task.key: space}


def deployed(space: str) -> str:
    return f"deployed/{space}"


def head_outputs(space_entry: dict, other_logit: bool) -> int:
    return space_entry["num_classes"] + (1 if other_logit else 0)


# ----------------------------------------------------------------------------- training


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    student_maps: list[torch.Tensor]
    student_pooled: torch.Tensor
    teacher_maps: list[torch.Tensor] | None
    teacher_pooled: torch.Tensor | None


LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]


def _scaled_optimizer(student: MultiHeadNet, recipe: RecipeConfig, backbone_lr_scale: float) -> torch.optim.Optimizer:
    """Nesterov SGD as ``training.make_optimizer`` with the backbone's learning rate multiplied by ``backbone_lr_scale``."""
    groups = []
    for module, scale in ((student.backbone, backbone_lr_scale), (student.heads, 1.0)):
        trainable = [p for p in module.parameters() if p.requires_grad]
        groups += [{"params": [p for p in trainable if p.ndim > 1], "weight_decay": recipe.weight_decay, "lr_scale": scale},
                   {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0, "lr_scale": scale}]
    return torch.optim.SGD(groups, lr=recipe.learning_rate, momentum=recipe.momentum, nesterov=recipe.nesterov)


def train_loop(student: MultiHeadNet, teacher: MultiHeadNet | None, task: TaskInfo, ctx: LearnerContext,
               recipe: RecipeConfig, loss_fn: LossFn, tag: str, backbone_lr_scale: float = 1.0,
               clip_grad_norm: float = 0.0, after_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train ``student`` in place on the task's train split; returns {"steps", "flops_train", "last"}.

    ``backbone_lr_scale`` != 1 multiplies the backbone's learning rate (heads keep the recipe's);
    ``clip_grad_norm`` > 0 clips the gradient norm of the whole model; ``after_step(step)`` (step counted
    from 1) runs after each optimiser update. The defaults are the plain recipe."""
    device = ctx.device
    student.to(device).train()
    if recipe.channels_last:
        student.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    train = ctx.data.split(task.key, "train")
    batches = TrainBatches(train, recipe.batch_size, recipe.augment, seed=ctx.rng_seed(tag, "batches"))
    total = step_budget(recipe, len(train))
    warmup = min(total - 1, round(recipe.warmup_epochs * batches.steps_per_epoch))
    optimizer = make_optimizer(student, recipe) if backbone_lr_scale == 1.0 else _scaled_optimizer(
        student, recipe, backbone_lr_scale)

    step = 0
    resume = ctx.resume_state
    if resume is not None and resume.get("tag") == tag:
        student.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step = resume["step"]
    resumed_at = step if resume is not None else None

    input_shape = (batches.batch_size, 3, recipe.input_size, recipe.input_size)
    step_flops = ctx.flops.train_step(
        student, input_shape, (1,), lambda out, _: out.square().mean(), torch.int64, "distill-student")
    if teacher is not None:
        step_flops += ctx.flops.forward(teacher, input_shape)

    last: dict[str, float] = {}
    bar = ctx.progress_bar(total, f"train {task.key}", initial=step)
    on_cuda = torch.device(device).type == "cuda"
    feed = step_batches(batches, step, total, prefetch_depth(recipe, on_cuda), on_cuda)
    try:
        while step < total:
            if step != resumed_at and ctx.checkpoint_due(step):
                ctx.checkpoint({"tag": tag, "model": student.state_dict(), "optimizer": optimizer.state_dict(),
                                "step": step})
            lr = learning_rate_at(step, total, warmup, recipe.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            batch_step, x, y = next(feed)
            assert batch_step == step, (batch_step, step)
            x, y = to_device(x, device, recipe), y.to(device, non_blocking=True)
            with autocast(recipe, device):
                maps, pooled = stage_features(student.backbone, x)
                t_maps = t_pooled = None
                if teacher is not None:
                    with torch.no_grad():
                        t_maps, t_pooled = stage_features(teacher.backbone, x)
                loss, parts = loss_fn(Batch(x, y, maps, pooled, t_maps, t_pooled))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at step {step} of task {task.key!r}; "
                    "lower the learning rate, e.g. -o learning_rate=0.01")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(student.parameters(), clip_grad_norm)
            optimizer.step()
            last = parts
            step += 1
            if after_step is not None:
                after_step(step)
            bar.update(1)
    finally:
        feed.close()
        bar.close()
    return {"steps": step, "flops_train": float(step * step_flops), "last": last}


def parameter_usage(*modules: nn.Module | None) -> dict[str, int]:
    present = [m for m in modules if m is not None]
    return {"peak_parameter_count": sum(map(parameter_count, present)),
            "peak_parameter_bytes": sum(map(parameter_bytes, present))}


# ----------------------------------------------------------------------------- prediction


def predict(name: str, config: DistillConfig, event, state: dict, ctx: LearnerContext, other_logit: bool):
    """Scores of the deployed head of the task's space: TA over the space's seen classes, TI over the task's."""
    task = event.task
    space = state["task_space"].get(task.key)
    if space is None or state["backbone"] is None:
        raise RuntimeError(f"{name}: task {task.key!r} was never trained")
    entry = state["spaces"][space]
    head = deployed(space)
    extra = other_logit and space.startswith("shared:")
    net = make_net(config, ctx, state["backbone"], {head: (head_outputs(entry, extra), state["heads"][head])})
    net.eval()
    allowed = entry["tasks"][task.key] if config.mode == "ti" else entry["seen"]
    mask = torch.full((task.num_classes,), float("-inf"))
    mask[torch.tensor(allowed, dtype=torch.int64)] = 0.0
    mask = mask.to(ctx.device)
    split = ctx.data.split(task.key, event.split)
    flops = ctx.flops.forward_examples(net, (3, config.input_size, config.input_size), len(split), config.eval_batch_size)
    usage = ResourceUsage(flops_inference=float(flops), **parameter_usage(net))

    def batches():
        with torch.no_grad():
            for indices, x, _ in eval_batches(split, config.eval_batch_size, config.input_size):
                logits = net(x.to(ctx.device))[:, : task.num_classes]
                scores = task_kind(task).scores(logits if task.kind == MULTI_LABEL else logits + mask)
                yield Predictions(indices=indices, scores=scores)

    return batches(), usage


# ----------------------------------------------------------------------------- learner skeleton


@dataclass
class EventPlan:
    """What a train event knows while it builds its loss."""

    task: TaskInfo
    space: str  # the task's label space
    classes: list[int]  # the task's classes in that space
    spaces: dict  # the spaces after this event (seen classes include the task's)
    old_spaces: dict  # the spaces before this event (what the teacher knows)
    student: MultiHeadNet
    teacher: MultiHeadNet | None

    @property
    def shared(self) -> bool:
        return self.space.startswith("shared:")

    def old_classes(self, space: str) -> list[int]:
        """Classes of ``space`` the teacher knows and this task does not teach again."""
        seen = self.old_spaces.get(space, {}).get("seen", [])
        if space == self.space:
            return [c for c in seen if c not in set(self.classes)] if self.shared else []
        return list(seen)


class DistillLearner:
    """init/train/predict around a learner-specific loss; subclasses set ``name`` and ``other_logit``
    and implement ``extra_heads``, ``uses_teacher`` and ``make_loss``."""

    name = "distill"
    other_logit = False  # an extra "other" logit after the classes of shared spaces

    def __init__(self, config: DistillConfig):
        self.config = config

    def extra_heads(self, task: TaskInfo, space: str, classes: list[int]) -> dict[str, int]:
        return {}

    def uses_teacher(self) -> bool:
        return True

    def make_loss(self, plan: EventPlan) -> LossFn:
        raise NotImplementedError

    def train_options(self, plan: EventPlan) -> tuple[RecipeConfig, dict[str, Any]]:
        """(recipe, extra keyword arguments of :func:`train_loop`) of a train event; default: the config as is."""
        return self.config, {}

    def init(self):
        return initial_state()

    def _outputs(self, space: str, entry: dict) -> int:
        return head_outputs(entry, self.other_logit and space.startswith("shared:"))

    def train(self, event, state, ctx):
        task = event.task
        space, classes = assign_space(self.config, task, state, ctx)
        spaces, task_space = updated_spaces(state, task, space, classes)
        heads = {deployed(sp): (self._outputs(sp, e), state["heads"].get(deployed(sp))) for sp, e in spaces.items()}
        extra = self.extra_heads(task, space, classes)
        heads.update({n: (k, None) for n, k in extra.items()})
        student = make_net(self.config, ctx, state["backbone"], heads)
        teacher = None
        if state["backbone"] is not None and state["spaces"] and self.uses_teacher():
            teacher = make_net(self.config, ctx, state["backbone"], {
                deployed(sp): (self._outputs(sp, e), state["heads"][deployed(sp)]) for sp, e in state["spaces"].items()
            })
        plan = EventPlan(task, space, classes, spaces, state["spaces"], student, teacher)
        recipe, options = self.train_options(plan)
        result = train_loop(student, teacher, task, ctx, recipe, self.make_loss(plan), tag=self.name, **options)
        new_state = {
            "backbone": plain_state_dict(student.backbone),
            "heads": {n: plain_state_dict(student.head(n)) for n in student.names if n not in extra},
            "spaces": spaces, "task_space": task_space,
        }
        info = {"steps": result["steps"], "label_space": space, "teacher": teacher is not None,
                **{f"loss_{k}": float(v) for k, v in result["last"].items()}}
        usage = ResourceUsage(flops_train=result["flops_train"], info=info, **parameter_usage(student, teacher))
        return new_state, usage

    def predict(self, event, state, ctx):
        return predict(self.name, self.config, event, state, ctx, self.other_logit)
