"""What the standard continual-learning baselines share (``er``, ``der``, ``ewc``, ``lwf``, ``agem``).

Not a learner itself. Three pieces, each written once:

* **The network and its heads** (all five). One backbone carried over from task to task (as
  ``finetune_prev``) and one linear head per *head key*: the task key, or, when ``task.label_space``
  is set (``synthetic-class-incremental``), the label space, so the tasks of a class-incremental
  stream share one head over the whole space (replayed examples of earlier tasks train it too).
  On a shared head the current batch's loss (and fit's validation) is over the task's own classes,
  the other logits masked (as ER-ACE, Caccia et al. 2022, for the current batch); replayed rows use
  every class of the head. Measured: with the loss over all classes, the second task's first steps
  (old classes' logits far above the new ones) collapsed the network at the default learning rate
  (dev error stuck at 0.75 = one constant class of four; learning_rate 0.01 learned it, 0.05 did
  not). Predictions score a task over its own classes (``scores="task"``, task-aware, as
  ``finetune_prev``'s per-task heads) or over the whole space (``scores="space"``, task-agnostic).
  :class:`MultiHeadNet` holds the backbone and every head trained so far; its ``forward`` is the
  current task's head, which is what ``fit``'s validation and FLOP counts see. The state is plain
  data: ``backbone`` (a state dict), ``heads`` (head key -> state dict), ``kinds`` (head key ->
  ``[multi_label, num_classes]``), ``classes`` (head key -> the single-label classes trained so far,
  for LwF's old-class distillation in a shared space) and ``head_of`` (task key -> head key).
* **The reservoir buffer** (``er``, ``der``, ``agem``; Vitter's algorithm R over the stream of
  training examples, as Chaudhry et al. 2019 "On Tiny Episodic Memories" and Buzzega et al. 2020).
  Raw images (the task cache's uint8 central squares, as they are stored), their labels and, for
  DER++, the logits the network gave them. Examples enter at the *end* of their task's train event
  (the task's training examples in a seeded order are offered one by one to algorithm R), so the
  buffer is fixed during an event and a resumed event replays exactly the same batches; DER++'s
  logits are those of the trained network (eval mode, evaluation preprocessing), see
  docs/learners/der.md. State: ``{"capacity", "seen", "groups": {head key: {"images", "labels",
  "slots"[, "logits"]}}}`` (tensors: the harness measures them in ``state_bytes``).
* **A replay step.** :class:`ReplaySampler` draws ``replay_batch_size`` examples uniformly without
  replacement from the buffer at step ``s`` from ``np.random.default_rng([seed, s, salt])`` (the seed
  from ``ctx.rng_seed``), augments them as the training batches (random-resized crop and flip, a
  torch generator seeded the same way), and groups them by head. Every replayed row goes through
  every head (one small matmul per head), so a step's FLOPs do not depend on which tasks the sample
  happened to hold; each group's loss uses its own head's block. :func:`measured_step_flops` counts
  one whole step (forward and backward of the current and replayed rows, teachers, reference
  gradients) with ``ctx.flops.measured`` on a ``meta``-device copy of the network: no arithmetic,
  the same operators as the real step (the FLOP audit checks it against the real tensors).

Host syncs: nothing here reads a device value during a step; batches are built on the host from
numpy and copied to ``ctx.device``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nevis_bench.data.loader import augment, center_square_resize, to_model_input
from nevis_bench.learner_kit.flops import architecture_signature
from nevis_bench.learner_kit.models import Classifier, make_backbone, parameter_usage
from nevis_bench.learner_kit.tasks import TaskKind
from nevis_bench.learner_kit.training import (
    RecipeConfig, autocast, fit, predict_batches, to_device,
)
from nevis_bench.learners._finetuning import plain_state_dict
from nevis_bench.protocol import MULTI_LABEL, ResourceUsage, TaskInfo

# ----------------------------------------------------------------------------- heads and network


def head_key(task: TaskInfo) -> str:
    """The head a task trains and is scored with: its label space when set, else its own key."""
    return f"space:{task.label_space}" if task.label_space else f"task:{task.key}"


def head_kind(state: dict, key: str) -> TaskKind:
    multi, classes = state["kinds"][key]
    return TaskKind(multi_label=bool(multi), num_classes=int(classes))


class MultiHeadNet(nn.Module):
    """A backbone and named linear heads; ``forward`` uses the ``current`` head.

    ``own_classes``: on a shared label space, the classes of the task being trained; ``forward`` and
    :meth:`current_logits` then give -inf to every other class of the head, so the current batch's
    loss and the validation are over the task's own classes (see the module docstring)."""

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Linear], current: str,
                 own_classes: list[int] | None = None):
        super().__init__()
        self.backbone = backbone
        self.names = list(heads)
        self.heads = nn.ModuleList([heads[n] for n in self.names])
        self.current = current
        mask = torch.zeros(heads[current].out_features)
        if own_classes is not None:
            mask.fill_(float("-inf"))
            mask[torch.tensor(own_classes, dtype=torch.int64)] = 0.0
        self.register_buffer("mask", mask, persistent=False)

    def head(self, name: str) -> nn.Linear:
        return self.heads[self.names.index(name)]

    def current_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.current)(features) + self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.current_logits(self.backbone(x))


def build_net(recipe: RecipeConfig, ctx, state: dict, task: TaskInfo) -> MultiHeadNet:
    """The state's backbone and every head it holds, plus a fresh head for ``task`` if it has none.

    Fresh parameters are seeded from the event and the head key (``ctx.seeded``)."""
    key = head_key(task)
    with ctx.seeded("init", "backbone"):
        backbone = make_backbone(recipe.backbone)
    if state["backbone"] is not None:
        backbone.load_state_dict(state["backbone"])
    heads = {}
    for name, saved in state["heads"].items():
        heads[name] = nn.Linear(backbone.feature_dim, int(state["kinds"][name][1]))
        heads[name].load_state_dict(saved)
    if key not in heads:
        with ctx.seeded("init", key):
            heads[key] = nn.Linear(backbone.feature_dim, task.num_classes)
    own = None
    if task.label_space and task.kind != MULTI_LABEL:
        if recipe.label_smoothing > 0:
            # smoothing spreads target mass over every class of the head, the masked (-inf) ones too
            raise ValueError(f"task {task.key!r} shares the label space {task.label_space!r}: its loss is over its "
                             "own classes of the shared head, which label smoothing cannot be; set -o label_smoothing=0")
        own = sorted(int(c) for c in np.unique(np.asarray(ctx.data.split(task.key, "train").labels)))
    return MultiHeadNet(backbone, heads, key, own).to(ctx.device)


def initial_state(**extra) -> dict:
    return {"backbone": None, "heads": {}, "kinds": {}, "classes": {}, "head_of": {}, "task_classes": {}, **extra}


SCORES = ("task", "space")


@dataclass
class HeadConfig:
    # On a shared label space (class-incremental): "task" scores a task's examples over the classes
    # that task trained (task-aware, as finetune_prev's per-task heads are); "space" over every class
    # of the space (task-agnostic, class-incremental inference). Per-task heads: no difference.
    scores: str = "task"

    def check_scores(self):
        if self.scores not in SCORES:
            raise ValueError(f"scores must be one of {', '.join(SCORES)}, got {self.scores!r}")


class MaskedClassifier(Classifier):
    """A classifier whose logits outside ``allowed`` classes are -inf (probability 0)."""

    def __init__(self, backbone: nn.Module, head: nn.Linear, allowed: list[int]):
        super().__init__(backbone, head)
        mask = torch.full((head.out_features,), float("-inf"))
        mask[torch.tensor(allowed, dtype=torch.int64)] = 0.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)) + self.mask


def trained_state(state: dict, net: MultiHeadNet, task: TaskInfo, ctx) -> dict:
    """``state`` with the network after ``task``'s event: backbone, every head, kinds and classes."""
    key = head_key(task)
    classes = dict(state["classes"])
    if task.kind != MULTI_LABEL:
        labels = np.asarray(ctx.data.split(task.key, "train").labels)
        own = sorted(int(c) for c in np.unique(labels))
        classes[key] = sorted(set(classes.get(key, [])) | set(own))
        task_classes = {**state["task_classes"], task.key: own}
    else:
        task_classes = state["task_classes"]
    return {
        **state,
        "backbone": plain_state_dict(net.backbone),
        "heads": {name: plain_state_dict(net.head(name)) for name in net.names},
        "kinds": {**state["kinds"], key: [task.kind == MULTI_LABEL, task.num_classes]},
        "classes": classes,
        "head_of": {**state["head_of"], task.key: key},
        "task_classes": task_classes,
    }


def network_parameters(state: dict) -> tuple:
    """What the network holds: the backbone and every head (for ``parameter_usage``)."""
    return (state["backbone"], state["heads"])


class StepIndex:
    """The index of the step ``fit`` is about to take, for per-step seeded sampling in a ``loss`` hook.

    Starts at the resumed step when ``ctx.resume_state`` is ``fit``'s with ``tag`` (so a resumed event
    samples the batches an uninterrupted one would); pass it as ``fit``'s ``after_step``."""

    def __init__(self, ctx, tag: str):
        resume = ctx.resume_state
        self.value = int(resume["step"]) if isinstance(resume, dict) and resume.get("tag") == tag else 0

    def __call__(self, step: int) -> None:
        self.value = step


def train_event(learner, event, state: dict, ctx, *, make_step: Callable, tag: str = "fit"):
    """One train event of a baseline: build the network, ``fit`` with the learner's step, keep the result.

    ``make_step(net, task, counter) -> dict`` gives ``fit``'s ``loss``, ``step_flops`` and optionally
    ``before_step``. Returns (the new state, the fit result, the network)."""
    task = event.task
    net = build_net(learner.config, ctx, state, task)
    counter = StepIndex(ctx, tag)
    hooks = make_step(net, task, counter)
    result = fit(net, task, ctx, learner.config, tag, after_step=counter, **hooks)
    return trained_state(state, net, task, ctx), result, net


def with_extra_flops(usage: ResourceUsage, flops_train: float, **info) -> ResourceUsage:
    """``usage`` with ``flops_train`` added (work outside fit's steps: Fisher, buffer logits)."""
    return dataclasses.replace(usage, flops_train=usage.flops_train + float(flops_train),
                               info={**usage.info, **info})


def predict_event(name: str, recipe: RecipeConfig, event, state: dict, ctx, held: tuple = ()):
    """Predictions of the current backbone with the task's head (``predict_batches``); ``held``:
    what the learner stores besides its network (Fisher, anchors), for the parameter count."""
    key = state["head_of"].get(event.task.key)
    if key is None or state["backbone"] is None:
        raise RuntimeError(f"{name}: task {event.task.key!r} was never trained")
    backbone = make_backbone(recipe.backbone)
    backbone.load_state_dict(state["backbone"])
    head = nn.Linear(backbone.feature_dim, int(state["kinds"][key][1]))
    head.load_state_dict(state["heads"][key])
    allowed = state["task_classes"].get(event.task.key)
    if key.startswith("space:") and getattr(recipe, "scores", "task") == "task" and allowed:
        model = MaskedClassifier(backbone, head, allowed).to(ctx.device)
    else:
        model = Classifier(backbone, head).to(ctx.device)
    split = ctx.data.split(event.task.key, event.split)
    flops = ctx.flops.forward_examples(model, (3, recipe.input_size, recipe.input_size), len(split),
                                       recipe.eval_batch_size)
    usage = ResourceUsage(flops_inference=float(flops),
                          **parameter_usage(*network_parameters(state), *held))
    return predict_batches(model, event.task, split, recipe, ctx.device), usage


# ----------------------------------------------------------------------------- FLOPs of one step


def meta_tensor(like: torch.Tensor) -> torch.Tensor:
    if like.dtype.is_floating_point:
        return torch.empty(like.shape, dtype=like.dtype, device="meta")
    return torch.zeros(like.shape, dtype=like.dtype, device="meta")


def measured_step_flops(ctx, key: tuple, modules: tuple[nn.Module, ...], step: Callable[..., torch.Tensor],
                        *inputs: Any) -> int:
    """Counted FLOPs of ``step(*meta modules, *meta inputs)`` plus the backward of what it returns.

    ``modules`` are copied to the ``meta`` device (training modes kept); tensors in ``inputs`` (also
    inside :class:`ReplayBatch` objects) are replaced by meta tensors of their shapes. ``key`` must
    name everything the count depends on (it is cached per run); the architecture signatures of the
    modules are added to it."""
    clones = []
    for module in modules:
        clone = copy.deepcopy(module).to("meta")
        clone.train(module.training)
        clones.append(clone)
    metas = [x.meta() if isinstance(x, ReplayBatch) else meta_tensor(x) if isinstance(x, torch.Tensor) else x
             for x in inputs]

    def run():
        loss = step(*clones, *metas)
        if loss is not None and loss.requires_grad:
            loss.backward()

    full_key = tuple(key) + tuple(architecture_signature(m) for m in modules)
    _, flops = ctx.flops.measured(full_key, run)
    return int(flops)


# ----------------------------------------------------------------------------- reservoir buffer


def empty_buffer(capacity: int) -> dict:
    return {"capacity": int(capacity), "seen": 0, "groups": {}}


def buffer_size(buffer: dict) -> int:
    return sum(int(g["slots"].shape[0]) for g in buffer["groups"].values())


def reservoir_insert(buffer: dict, key: str, split, rng: np.random.Generator,
                     logits_of: Callable[[np.ndarray], torch.Tensor] | None = None) -> tuple[dict, int]:
    """Offer ``split``'s examples (in a seeded order) to algorithm R; returns (new buffer, kept count).

    Example ``n`` of the stream (counted over every task so far) takes slot ``n`` while the buffer is
    not full, else slot ``j ~ U{0..n}`` when ``j < capacity``; a slot written twice keeps its last
    example. ``logits_of(images)`` (DER++) gives the logits to store with the new examples."""
    capacity, seen, count = buffer["capacity"], buffer["seen"], len(split)
    order = rng.permutation(count)
    positions = seen + np.arange(count)
    draws = rng.integers(0, positions + 1)
    slots = np.where(positions < capacity, positions, draws)
    writes = np.nonzero(slots < capacity)[0]
    # the last write of each slot wins
    rev_slots = slots[writes][::-1]
    taken, first = np.unique(rev_slots, return_index=True)
    winners = writes[::-1][first]
    examples = order[winners]
    by_example = np.argsort(examples, kind="stable")
    examples, taken = examples[by_example], taken[by_example]
    groups = {}
    overwritten = torch.from_numpy(taken.astype(np.int64))
    for name, group in buffer["groups"].items():
        keep = ~torch.isin(group["slots"], overwritten)
        kept = {field: value[keep] for field, value in group.items()}
        if kept["slots"].numel():
            groups[name] = kept
    if len(examples):
        images, labels = split.take(examples)
        new = {"images": torch.from_numpy(np.ascontiguousarray(images)),
               "labels": torch.from_numpy(np.ascontiguousarray(labels)),
               "slots": torch.from_numpy(taken.astype(np.int64))}
        if logits_of is not None:
            new["logits"] = logits_of(images)
        if key in groups:
            old = groups[key]
            if old["images"].shape[1:] != new["images"].shape[1:]:
                raise ValueError(f"buffer group {key!r}: images of shape {tuple(new['images'].shape[1:])} "
                                 f"cannot join {tuple(old['images'].shape[1:])}")
            new = {field: torch.cat([old[field], new[field]]) for field in new}
        groups[key] = new
    return {"capacity": capacity, "seen": seen + count, "groups": groups}, int(len(examples))


@torch.no_grad()
def eval_logits(model: nn.Module, images: np.ndarray, recipe: RecipeConfig, device) -> torch.Tensor:
    """``model``'s float32 logits (CPU) of uint8 images with the evaluation preprocessing, eval mode."""
    was = model.training
    model.eval()
    out = []
    for start in range(0, len(images), recipe.eval_batch_size):
        x = center_square_resize(to_model_input(images[start:start + recipe.eval_batch_size]), recipe.input_size)
        with autocast(recipe, device):
            out.append(model(to_device(x, device, recipe)).float())
    model.train(was)
    return torch.cat(out).cpu()


@dataclass
class ReplayGroup:
    head: str
    start: int
    stop: int
    labels: torch.Tensor
    logits: torch.Tensor | None = None


@dataclass
class ReplayBatch:
    """Replayed examples on the device, ordered by head: rows ``start:stop`` belong to ``head``."""

    x: torch.Tensor
    groups: list[ReplayGroup]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def meta(self) -> "ReplayBatch":
        return ReplayBatch(meta_tensor(self.x), [
            ReplayGroup(g.head, g.start, g.stop, meta_tensor(g.labels),
                        None if g.logits is None else meta_tensor(g.logits)) for g in self.groups])


class ReplaySampler:
    """Seeded replay batches from a buffer: step ``s`` and ``salt`` determine the batch exactly."""

    def __init__(self, buffer: dict, batch_size: int, recipe: RecipeConfig, seed: int, device):
        # numpy views of the images, made once here (outside the steps, where a tensor's .numpy() would
        # count as a host sync); labels and logits stay tensors
        self.groups = [(name, {**group, "images": group["images"].numpy()}) for name, group in buffer["groups"].items()]
        self.sizes = [int(g["slots"].shape[0]) for _, g in self.groups]
        self.offsets = np.cumsum([0] + self.sizes)
        self.size = min(int(batch_size), int(self.offsets[-1]))
        self.recipe, self.seed, self.device = recipe, int(seed), device

    def __bool__(self) -> bool:
        return self.size > 0

    def sample(self, step: int, salt: int = 0) -> ReplayBatch:
        rng = np.random.default_rng([self.seed, int(step), int(salt)])
        chosen = np.sort(rng.choice(int(self.offsets[-1]), self.size, replace=False))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        xs, groups, start = [], [], 0
        for g, (name, group) in enumerate(self.groups):
            rows = chosen[(chosen >= self.offsets[g]) & (chosen < self.offsets[g + 1])] - self.offsets[g]
            if not len(rows):
                continue
            index = torch.from_numpy(rows.astype(np.int64))
            xs.append(augment(to_model_input(group["images"][rows]), self.recipe.augment, generator))
            logits = group.get("logits")
            groups.append(ReplayGroup(
                name, start, start + len(rows), group["labels"][index].to(self.device, non_blocking=True),
                None if logits is None else logits[index].to(self.device, non_blocking=True)))
            start += len(rows)
        return ReplayBatch(to_device(torch.cat(xs), self.device, self.recipe), groups)

    def example(self) -> ReplayBatch:
        """A batch of the sampler's shape, for counting FLOPs."""
        return self.sample(0, salt=99)


def replay_loss(net: MultiHeadNet, kinds: dict[str, TaskKind], features: torch.Tensor, batch: ReplayBatch,
                *, alpha: float = 0.0, beta: float = 1.0) -> torch.Tensor:
    """Mean over replayed rows of ``beta`` x each row's own-head loss (+ ``alpha`` x MSE to stored logits).

    ``features``: the backbone's output for ``batch.x``. Every head runs on every row (fixed FLOPs)."""
    logits = {name: net.head(name)(features) for name in net.names}
    total = features.new_zeros(())
    for g in batch.groups:
        z = logits[g.head][g.start:g.stop].float()
        weight = (g.stop - g.start) / len(batch)
        if beta:
            total = total + beta * weight * kinds[g.head].loss(z, g.labels)
        if alpha and g.logits is not None:
            total = total + alpha * weight * torch.mean((z - g.logits) ** 2)
    return total


def replay_kinds(state: dict, net: MultiHeadNet, task: TaskInfo) -> dict[str, TaskKind]:
    kinds = {name: head_kind(state, name) for name in state["kinds"]}
    kinds[head_key(task)] = TaskKind(task.kind == MULTI_LABEL, task.num_classes)
    return kinds


@dataclass
class BufferConfig:
    buffer_size: int = 200  # examples in the reservoir (all tasks together)
    replay_batch_size: int = 32  # replayed examples per step (fewer while the buffer holds fewer)

    def check_buffer(self):
        if self.buffer_size < 0 or self.replay_batch_size < 0:
            raise ValueError("buffer_size and replay_batch_size must be >= 0")
