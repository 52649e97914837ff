"""Shared pieces of the distillation learners ``comformer`` and ``muhdi`` (not a learner itself).

* Label spaces. A task's labels are its own (a *per-task* space ``task:<key>``: one deployed head
  per task key) unless the stream says that tasks share them: tasks naming the same non-empty
  ``TaskInfo.label_space`` (``synthetic-class-incremental``) join the *shared* space
  ``shared:<label_space>``: one deployed head over the whole space, with the classes seen so far
  kept in the state. ``label_space = "per_task"`` ignores the stream's sharing. Heads are never keyed
  by (kind, class count): two different 100-class tasks of an ordinary stream get two heads, even if
  their training splits miss some classes.
* Networks. One backbone (``make_backbone``) with named linear heads; :func:`stage_features` returns
  the intermediate feature maps used by POD (the pre-ReLU output of each conv block of
  ``small_convnet``; the outputs of the four residual stages of the ResNets) and the pooled features.
* The teacher is the frozen previous model: the backbone and deployed heads of the state at the start
  of the train event, in eval mode. It is not kept after the event (the next event rebuilds it from
  the state), so the parameters held after an event are the backbone and the deployed heads.
* :func:`train_loop` is a thin user of the kit's one training loop
  (:func:`nevis_bench.learner_kit.training.fit`): the learner's loss on the student's and teacher's
  features of each device batch, the counted FLOPs of that step, the optimiser with the backbone's
  learning-rate scale, gradient clipping and an ``after_step`` hook. Validation selects the best
  state on the task's dev split, with the deployed head as it will predict the task right after
  the event (:class:`DeployedView`): per-task spaces, the task's metric over its head; shared
  spaces, over the seen classes in ``ta`` mode and the task's classes in ``ti``. In a shared space
  dev holds only the task's (new) classes, so this error says how well the new classes are learned
  against the old ones and nothing about the old classes: selection cannot see forgetting. It
  picks a state on the training trajectory (the first that reaches the lowest error, then early
  stopping after ``patience`` validations), so it never adds forgetting to what the full budget
  does, and stopping once the new classes are learned leaves the backbone closer to the teacher.
  (Selecting on the error over the task's classes alone in ``ta`` mode was tried and rejected: an
  untrained head can already separate two new classes, so the state before training was kept and
  the new classes were never learned against the old ones: measured, fine-tuning seed 1 of the
  3 x 2 test stream, task 2 accuracy 0.0.) Early stopping is the recipe's (``patience``).
  Batches, prefetching, ``precision`` (bf16 autocast), ``channels_last``, checkpoints, exact resume
  and the one host sync per step are those of ``fit``; ``compile`` is not applied to the loss
  (:func:`stage_features` walks the backbone's layers itself).
* FLOPs: per step, the counted forward + backward of the student through the backbone and every
  head, plus the counted forward of the teacher (backbone + its heads) (train); each validation, the
  student's forward over dev (validation). The distillation terms (softmax, KL, POD pooling) are
  elementwise; FlopCounterMode counts only matmuls/convolutions, so they count as 0 like the
  optimiser update (the reference's convention).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from nevis_bench.learners._finetuning import plain_state_dict
from torch import nn

from nevis_bench.learner_kit.models import make_backbone, parameter_usage
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import (
    FitResult, RecipeConfig, batch_size_for, evaluate_error, fit, make_optimizer, predict_batches,
)
from nevis_bench.protocol import MULTI_LABEL, ResourceUsage, TaskInfo
from nevis_bench.run.context import LearnerContext

LABEL_SPACES = ("stream", "per_task")
MODES = ("ta", "ti")


@dataclass
class DistillConfig(RecipeConfig):
    label_space: str = "stream"  # stream: TaskInfo.label_space decides; per_task: one head per task key
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
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
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
        a, b = a.float().pow(2), b.float().pow(2)
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


class DeployedView(nn.Module):
    """The task's logits as the learner predicts them: ``head``'s first ``num_classes`` outputs on the
    backbone, with ``mask`` (0 / -inf per class, or None) added. Shares ``net``'s parameters."""

    def __init__(self, net: MultiHeadNet, head: str, num_classes: int, mask: torch.Tensor | None):
        super().__init__()
        self.net, self.name, self.num_classes = net, head, num_classes
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net.head(self.name)(self.net.backbone(x))[:, : self.num_classes]
        return logits if self.mask is None else logits + self.mask


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


def space_of(config: DistillConfig, task: TaskInfo) -> str:
    """The label space a task's labels live in: shared only where the stream says so."""
    if config.label_space == "stream" and task.label_space and task.kind != MULTI_LABEL:
        return f"shared:{task.label_space}"
    return f"task:{task.key}"


def assign_space(config: DistillConfig, task: TaskInfo, state: dict, ctx: LearnerContext) -> tuple[str, list[int]]:
    """(space key, the task's classes in it) for a train event; the state is not changed."""
    space = state["task_space"].get(task.key) or space_of(config, task)
    if space.startswith("shared:"):
        train = ctx.data.split(task.key, "train")
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


def class_mask(num_classes: int, allowed: list[int], device) -> torch.Tensor:
    """0 on ``allowed`` classes, -inf elsewhere (added to logits)."""
    mask = torch.full((num_classes,), float("-inf"))
    mask[torch.tensor(allowed, dtype=torch.int64)] = 0.0
    return mask.to(device)


def deployed_view(net: MultiHeadNet, task: TaskInfo, space: str, allowed: list[int], device) -> DeployedView:
    """What predicts (and is validated) for ``task``: its space's deployed head, restricted to ``allowed``
    (single-label tasks of shared spaces only)."""
    mask = class_mask(task.num_classes, allowed, device) if space.startswith("shared:") else None
    return DeployedView(net, deployed(space), task.num_classes, mask)


# ----------------------------------------------------------------------------- training


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    student_maps: list[torch.Tensor]
    student_pooled: torch.Tensor
    teacher_maps: list[torch.Tensor] | None
    teacher_pooled: torch.Tensor | None


# loss(batch) -> (loss, parts): parts are detached device tensors (read once, at the end of the fit)
LossFn = Callable[[Batch], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]


def train_loop(student: MultiHeadNet, teacher: MultiHeadNet | None, task: TaskInfo, ctx: LearnerContext,
               recipe: RecipeConfig, loss_fn: LossFn, tag: str, view: nn.Module | None = None,
               backbone_lr_scale: float = 1.0, clip_grad_norm: float = 0.0,
               after_step: Callable[[int], None] | None = None, validate: bool = True) -> FitResult:
    """Train ``student`` in place on the task's train split through :func:`training.fit`.

    ``view``: the module whose dev error selects the kept state (default: no validation);
    ``backbone_lr_scale`` != 1 multiplies the backbone's learning rate (heads keep the recipe's);
    ``clip_grad_norm`` > 0 clips the gradient norm of the whole student; ``after_step(step)`` (step
    counted from 1) runs after each optimiser update."""
    device = ctx.device
    if teacher is not None:
        teacher.to(device).eval()
        if getattr(recipe, "channels_last", False):
            teacher.to(memory_format=torch.channels_last)
        for p in teacher.parameters():
            p.requires_grad_(False)

    def loss(x: torch.Tensor, y: torch.Tensor):
        maps, pooled = stage_features(student.backbone, x)
        t_maps = t_pooled = None
        if teacher is not None:
            with torch.no_grad():
                t_maps, t_pooled = stage_features(teacher.backbone, x)
        return loss_fn(Batch(x, y, maps, pooled, t_maps, t_pooled))

    train = ctx.data.split(task.key, "train")
    shape = (min(batch_size_for(recipe, len(train)), len(train)), 3, recipe.input_size, recipe.input_size)
    step_flops = ctx.flops.train_step(
        student, shape, (1,), lambda out, _: out.square().mean(), torch.int64, "distill-student")
    if teacher is not None:
        step_flops += ctx.flops.forward(teacher, shape)
    optimizer = make_optimizer(student, recipe, lr_scales={student.backbone: backbone_lr_scale}
                               if backbone_lr_scale != 1.0 else None)
    validate = validate and view is not None
    dev_error = None
    if validate:
        dev = ctx.data.split(task.key, "dev")
        dev_error = lambda: evaluate_error(view, task, dev, recipe, device)
    return fit(student, task, ctx, recipe, tag, loss=loss, step_flops=step_flops, optimizer=optimizer,
               dev_error=dev_error, validate=validate, clip_grad_norm=clip_grad_norm, after_step=after_step)


# ----------------------------------------------------------------------------- prediction


def held(state: dict) -> tuple:
    """Everything the learner holds between events: the backbone and the deployed heads."""
    return state["backbone"], state["heads"]


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
    allowed = entry["tasks"][task.key] if config.mode == "ti" else entry["seen"]
    view = deployed_view(net, task, space, allowed, ctx.device)
    split = ctx.data.split(task.key, event.split)
    flops = ctx.flops.forward_examples(net, (3, config.input_size, config.input_size), len(split), config.eval_batch_size)
    usage = ResourceUsage(flops_inference=float(flops), **parameter_usage(*held(state)))
    return predict_batches(view, task, split, config, ctx.device), usage


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
    label_smoothing: float = 0.0

    @property
    def shared(self) -> bool:
        return self.space.startswith("shared:")

    @property
    def kind(self):
        return task_kind(self.task, self.label_smoothing)

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

    def prepare(self, plan: EventPlan) -> None:
        """Changes to the student before training (e.g. warm starts); default: none."""

    def validation_view(self, plan: EventPlan) -> nn.Module:
        """What the dev error of a train event measures: the deployed head as it will predict the task
        (TA: over the space's seen classes; TI: the task's classes; module docstring)."""
        allowed = plan.classes if self.config.mode == "ti" else plan.spaces[plan.space]["seen"]
        return deployed_view(plan.student, plan.task, plan.space, allowed, next(plan.student.parameters()).device)

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
        plan = EventPlan(task, space, classes, spaces, state["spaces"], student, teacher, self.config.label_smoothing)
        self.prepare(plan)
        recipe, options = self.train_options(plan)
        result = train_loop(student, teacher, task, ctx, recipe, self.make_loss(plan), tag=self.name,
                            view=self.validation_view(plan), **options)
        new_state = {
            "backbone": plain_state_dict(student.backbone),
            "heads": {n: plain_state_dict(student.head(n)) for n in student.names if n not in extra},
            "spaces": spaces, "task_space": task_space,
        }
        usage = result.usage(*held(new_state))
        usage.info.update(label_space=space, teacher=teacher is not None)
        return new_state, usage

    def predict(self, event, state, ctx):
        return predict(self.name, self.config, event, state, ctx, self.other_logit)
