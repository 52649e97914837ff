"""``pruned_finetune``: zero-shot structured pruning of a pre-trained ResNet, then per-task finetuning.

Caccia et al. 2023, "Towards Compute-Optimal Transfer Learning" (no public code, so the details
below are our reconstruction):

1. Once per model construction, with no data: load the encoder ``encoder`` (a torchvision ResNet from
   :mod:`nevis_bench.learner_kit.encoders`: ``resnet50``/``resnet18`` with ImageNet weights, ``random:resnet18``,
   ``file:...``). In every residual block rank the output filters of the inner convolutions (basic
   block: ``conv1``; bottleneck: ``conv1`` and ``conv2``) by the L1 norm of their weights and keep the
   top ``1 - prune_ratio`` per layer (at least one; kept filters stay in their original order).
2. Physically remove the pruned filters, their batch-norm entries and the matching input channels of
   the next convolution: the network is dense and smaller, so the FLOP savings are real. The last
   convolution of each block, the downsample paths and the stem are untouched, so the residual
   stream and the representation width (512 / 2048) are unchanged ("convolutional pruning").
3. Each task is then trained as ``independent`` does: the pruned backbone plus a fresh linear head,
   finetuned end to end with :func:`nevis_bench.learner_kit.training.fit` (shared recipe, resume, early stopping).
   The trained model of each task key is kept and predicts that task.

Compute-optimal budgets (the paper's setting): ``flop_budget`` > 0 replaces the recipe's step budget
by a FLOP budget per task: ``floor(flop_budget / step FLOPs)`` steps of the model being trained, so a
pruned network, cheaper per step, takes more steps for the same compute.

Pruning is deterministic and cheap (not counted: a sort of filter norms). FLOPs: the training loop's
counted forward+backward passes of the pruned model (``flops_train``) and the forward passes at
prediction (``flops_inference``).

Measured numbers and the full notes: docs/learners/pruned_finetune.md.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from nevis_bench.learner_kit.encoders import NormalisedEncoder, load_encoder
from nevis_bench.learners._finetuning import plain_state_dict, predict_with
from nevis_bench.learner_kit.models import Classifier
from nevis_bench.registry import LEARNERS
from nevis_bench.learner_kit.training import RecipeConfig, fit, train_step_flops


@dataclass
class PrunedFinetuneConfig(RecipeConfig):
    encoder: str = "resnet50"
    encoder_weights: str = ""
    prune_ratio: float = 0.5  # p in {0, 0.25, 0.5, 0.75}
    input_size: int = 32
    flop_budget: float = 0.0  # > 0: training FLOPs per task (steps = budget / step FLOPs); 0: the recipe's steps

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.prune_ratio < 1:
            raise ValueError("prune_ratio must be in [0, 1)")
        if self.flop_budget < 0:
            raise ValueError("flop_budget must be >= 0")


def _keep_indices(conv: nn.Conv2d, ratio: float) -> torch.Tensor:
    count = conv.out_channels
    keep = max(1, int(round(count * (1.0 - ratio))))
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    order = torch.sort(norms, descending=True, stable=True).indices[:keep]
    return torch.sort(order).values


def _slice_conv(conv: nn.Conv2d, out_idx=None, in_idx=None) -> nn.Conv2d:
    weight = conv.weight.detach()
    if out_idx is not None:
        weight = weight[out_idx]
    if in_idx is not None:
        weight = weight[:, in_idx]
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=conv.bias is not None)
    new.weight.data.copy_(weight)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])
    return new


def _slice_bn(bn: nn.BatchNorm2d, idx) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), eps=bn.eps, momentum=bn.momentum)
    new.weight.data.copy_(bn.weight.detach()[idx])
    new.bias.data.copy_(bn.bias.detach()[idx])
    new.running_mean.copy_(bn.running_mean[idx])
    new.running_var.copy_(bn.running_var[idx])
    new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


def prune_resnet(model: nn.Module, ratio: float) -> nn.Module:
    """A pruned copy of a torchvision ResNet (classifier already removed); ``ratio`` 0 copies it."""
    model = copy.deepcopy(model)
    if ratio == 0:
        return model
    for layer_name in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(model, layer_name):
            inner = [("conv1", "bn1", "conv2")]
            if hasattr(block, "conv3"):  # bottleneck: conv1 and conv2 are inner
                inner.append(("conv2", "bn2", "conv3"))
            for conv_name, bn_name, next_name in inner:
                idx = _keep_indices(getattr(block, conv_name), ratio)
                setattr(block, conv_name, _slice_conv(getattr(block, conv_name), out_idx=idx))
                setattr(block, bn_name, _slice_bn(getattr(block, bn_name), idx))
                setattr(block, next_name, _slice_conv(getattr(block, next_name), in_idx=idx))
    return model


def _conv_out(size: int, conv) -> int:
    k, s, p = (conv.kernel_size, conv.stride, conv.padding)
    k, s, p = [v if isinstance(v, int) else v[0] for v in (k, s, p)]
    return (size + 2 * p - k) // s + 1


def analytic_resnet_forward_flops(model: nn.Module, input_size: int, batch: int = 1) -> int:
    """Convolution FLOPs (2 x MACs) of a torchvision ResNet forward, from its layer shapes alone.

    Counts what FlopCounterMode counts (convolutions; no batch norm, activations or pooling).
    """
    def conv_flops(conv, size):
        out = _conv_out(size, conv)
        k = conv.kernel_size[0] * conv.kernel_size[1]
        return 2 * conv.out_channels * (conv.in_channels // conv.groups) * k * out * out, out

    total, size = conv_flops(model.conv1, input_size)
    if isinstance(model.maxpool, nn.MaxPool2d):
        mp = model.maxpool
        k, s, p = [v if isinstance(v, int) else v[0] for v in (mp.kernel_size, mp.stride, mp.padding)]
        size = (size + 2 * p - k) // s + 1
    for layer_name in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(model, layer_name):
            block_in = size
            for name in ("conv1", "conv2", "conv3"):
                if hasattr(block, name):
                    flops, size = conv_flops(getattr(block, name), size)
                    total += flops
            if block.downsample is not None:
                total += conv_flops(block.downsample[0], block_in)[0]
    return batch * total


class PrunedFinetuneLearner:
    def __init__(self, config: PrunedFinetuneConfig):
        self.config = config

    def init(self):
        return {"models": {}}

    def pruned_backbone(self) -> nn.Module:
        cfg = self.config
        encoder = load_encoder(cfg.encoder, cfg.encoder_weights or None, cfg.input_size)
        if not hasattr(encoder.module.backbone, "layer4"):
            raise ValueError(f"pruned_finetune needs a ResNet encoder, got {cfg.encoder!r}")
        backbone = NormalisedEncoder(prune_resnet(encoder.module.backbone, cfg.prune_ratio), encoder.mean, encoder.std)
        backbone.feature_dim = encoder.feature_dim
        for p in backbone.parameters():
            p.requires_grad_(True)
        return backbone

    def _model(self, task, ctx, saved=None) -> Classifier:
        backbone = self.pruned_backbone()
        with ctx.seeded("init", task.key):
            head = nn.Linear(backbone.feature_dim, task.num_classes)
        model = Classifier(backbone, head)
        if saved is not None:
            model.backbone.load_state_dict(saved["backbone"])
            model.head.load_state_dict(saved["head"])
        return model.to(ctx.device)

    def recipe_for(self, model: Classifier, task, ctx) -> PrunedFinetuneConfig:
        """The recipe of a train event: the config, or with ``flop_budget`` the steps it buys."""
        cfg = self.config
        if not cfg.flop_budget:
            return cfg
        step_flops = train_step_flops(model, task, ctx, cfg, len(ctx.data.split(task.key, "train")))
        steps = max(1, int(cfg.flop_budget // step_flops))
        return dataclasses.replace(cfg, epochs=float(steps), min_steps=steps, max_steps=steps)

    def train(self, event, state, ctx):
        model = self._model(event.task, ctx)
        result = fit(model, event.task, ctx, self.recipe_for(model, event.task, ctx))
        models = {**state["models"], event.task.key: {
            "backbone": plain_state_dict(model.backbone), "head": plain_state_dict(model.head)}}
        usage = result.usage(models)
        usage.info["prune_ratio"] = self.config.prune_ratio
        return {"models": models}, usage

    def predict(self, event, state, ctx):
        saved = state["models"].get(event.task.key)
        if saved is None:
            raise RuntimeError(f"pruned_finetune: task {event.task.key!r} was never trained")
        others = [m for key, m in state["models"].items() if key != event.task.key]
        return predict_with(self._model(event.task, ctx, saved), self.config, event, ctx, held=tuple(others))


@LEARNERS.register("pruned_finetune", PrunedFinetuneConfig, test_overrides={
    "encoder": "random:tiny_resnet", "prune_ratio": 0.5, "max_steps": 4, "min_steps": 4, "batch_size": 8,
    "input_size": 32})
def make_pruned_finetune(config: PrunedFinetuneConfig) -> PrunedFinetuneLearner:
    """Zero-shot L1 filter pruning of a pre-trained ResNet, then per-task finetuning (Caccia et al. 2023)."""
    load_encoder(config.encoder, config.encoder_weights or None, config.input_size)  # fail fast if weights are missing
    return PrunedFinetuneLearner(config)
