"""Pieces shared by the fine-tuning learners (``independent``, ``finetune_prev``, ``dynamic_knn``)."""

from __future__ import annotations

import torch
from torch import nn

from nevis_bench.run.context import LearnerContext
from nevis_bench.learner_kit.models import Classifier, make_backbone, parameter_usage
from nevis_bench.protocol import PredictEvent, ResourceUsage, TaskInfo
from nevis_bench.learner_kit.training import RecipeConfig, predict_batches


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a module's state: plain data for checkpoints."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def build_classifier(
    recipe: RecipeConfig, task: TaskInfo, ctx: LearnerContext,
    backbone_state: dict | None = None, head_state: dict | None = None,
) -> Classifier:
    """A backbone and a head for ``task``; fresh parameters are seeded from the event, saved ones loaded."""
    with ctx.seeded("init", task.key):
        backbone = make_backbone(recipe.backbone)
        head = nn.Linear(backbone.feature_dim, task.num_classes)
    if backbone_state is not None:
        backbone.load_state_dict(backbone_state)
    if head_state is not None:
        head.load_state_dict(head_state)
    return Classifier(backbone, head).to(ctx.device)


def predict_with(model: Classifier, recipe: RecipeConfig, event: PredictEvent, ctx: LearnerContext,
                 held: tuple = ()):
    """Predictions over the event's split and their inference FLOPs; ``held``: what the learner
    holds besides ``model`` (other tasks' stored models), for its parameter count."""
    split = ctx.data.split(event.task.key, event.split)
    flops = ctx.flops.forward_examples(
        model, (3, recipe.input_size, recipe.input_size), len(split), recipe.eval_batch_size
    )
    usage = ResourceUsage(flops_inference=float(flops), **parameter_usage(model, *held))
    return predict_batches(model, event.task, split, recipe, ctx.device), usage


def predict_saved(name: str, recipe: RecipeConfig, event: PredictEvent, state: dict, ctx: LearnerContext):
    """Predictions of the model kept for the event's task in ``state["models"]`` (one model per task key)."""
    saved = state["models"].get(event.task.key)
    if saved is None:
        raise RuntimeError(f"{name}: task {event.task.key!r} was never trained")
    model = build_classifier(recipe, event.task, ctx, saved["backbone"], saved["head"])
    others = [m for key, m in state["models"].items() if key != event.task.key]
    return predict_with(model, recipe, event, ctx, held=tuple(others))
