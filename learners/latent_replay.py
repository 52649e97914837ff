"""``latent_replay``: a frozen encoder, a replay buffer of latent vectors and a trained head.

Follows latent_CL's ``latent_ER`` regime (Ostapenko et al. 2022, "Continual Learning with Foundation
Models: An Empirical Study of Latent Replay"):

* the encoder (``encoder``, see :mod:`nevis_bench.learner_kit.encoders`) is frozen and only encodes images; its
  features are cached on disk but its forward FLOPs are charged for every image, every time
  (train split: ``flops_train``; predicted split: ``flops_inference``);
* features are standardised per example (zero mean, unit variance over the feature dimension;
  stateless, so old buffer entries stay valid);
* ``mode="task_agnostic"``: one head per label space (tasks of the same kind and number of classes
  share it, as the tasks of ``synthetic-class-incremental`` do), warm-started from its previous
  weights; single-label logits of classes never seen are masked out, so the head "grows" with the
  seen classes. ``mode="task_incremental"``: one head per task key.
* the head (``head="linear"`` or ``"mlp"`` with ``hidden`` units) trains with Adam on the current
  task's train features plus the buffer of its label space (concatenated), ``epochs`` passes,
  batches of ``batch_size``; its FLOPs are counted per train step with ``ctx.flops.train_step``.
* after training, up to ``buffer_per_class`` latents per class of the task's train split join the
  buffer: ``buffer_type="balanced"`` keeps m per class (classes already in the buffer keep theirs),
  ``"random"`` keeps a uniformly random subset of (buffer + current) of size m x seen classes.
  Multi-label tasks have no single class per example: both types keep m x K random examples.

State (plain data): ``heads`` (label space -> head state dict), ``seen`` (label space -> seen
class ids), ``buffer`` (label space -> {"x": features, "y": labels}).

Measured numbers and the full notes: docs/learners/latent_replay.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.learners._latent import (
    EncoderConfig, as_predictions, encoder_usage, features, standardise, tensors_size,
)
from nevis_bench.protocol import MULTI_LABEL, ResourceUsage
from nevis_bench.registry import LEARNERS

MASKED = -1e9


@dataclass
class LatentReplayConfig(EncoderConfig):
    mode: str = "task_agnostic"  # or "task_incremental"
    buffer_per_class: int = 20
    buffer_type: str = "balanced"  # or "random"
    head: str = "linear"  # or "mlp"
    hidden: int = 256
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.mode not in ("task_agnostic", "task_incremental"):
            raise ValueError("mode must be task_agnostic or task_incremental")
        if self.buffer_type not in ("balanced", "random"):
            raise ValueError("buffer_type must be balanced or random")
        if self.head not in ("linear", "mlp"):
            raise ValueError("head must be linear or mlp")
        if self.buffer_per_class < 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("buffer_per_class >= 0, epochs >= 1, batch_size >= 1")


class LatentReplayLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: LatentReplayConfig):
        self.config = config

    def init(self):
        return {"heads": {}, "seen": {}, "buffer": {}}

    def _space(self, task) -> str:
        if self.config.mode == "task_incremental":
            return f"task:{task.key}"
        return f"{task.kind}:{task.num_classes}"

    def _head(self, dim: int, classes: int) -> nn.Module:
        if self.config.head == "mlp":
            return nn.Sequential(nn.Linear(dim, self.config.hidden), nn.ReLU(), nn.Linear(self.config.hidden, classes))
        return nn.Linear(dim, classes)

    def _mask(self, task, seen: list[int]) -> torch.Tensor:
        mask = torch.zeros(task.num_classes)
        if task.kind != MULTI_LABEL:
            mask.fill_(MASKED)
            mask[torch.tensor(seen, dtype=torch.int64)] = 0.0
        return mask

    def _update_buffer(self, old: dict | None, x: torch.Tensor, y: torch.Tensor, task, seen, ctx) -> dict:
        m = self.config.buffer_per_class
        if m == 0:
            return {"x": x[:0].clone(), "y": y[:0].clone()}
        rng = np.random.default_rng(ctx.rng_seed("buffer"))
        if old is None:
            old = {"x": x[:0], "y": y[:0]}
        if task.kind == MULTI_LABEL or self.config.buffer_type == "random":
            pool_x, pool_y = torch.cat([old["x"], x]), torch.cat([old["y"], y])
            size = m * (task.num_classes if task.kind == MULTI_LABEL else len(seen))
            keep = np.sort(rng.permutation(len(pool_x))[:size])
            keep = torch.from_numpy(keep)
            return {"x": pool_x[keep].clone(), "y": pool_y[keep].clone()}
        parts_x, parts_y = [old["x"]], [old["y"]]
        buffered = set(old["y"].tolist())
        for c in sorted(set(y.tolist()) - buffered):
            idx = torch.nonzero(y == c).flatten().numpy()
            pick = torch.from_numpy(np.sort(rng.permutation(idx)[:m]))
            parts_x.append(x[pick])
            parts_y.append(y[pick])
        return {"x": torch.cat(parts_x).clone(), "y": torch.cat(parts_y).clone()}

    def train(self, event, state, ctx):
        cfg, task = self.config, event.task
        x, y, encode_flops = features(cfg, task.key, event.train_split, ctx)
        x = standardise(x)
        space = self._space(task)
        seen = sorted(set(state["seen"].get(space, [])) | (set(y.tolist()) if task.kind != MULTI_LABEL else set()))
        buffer = state["buffer"].get(space)
        train_x = torch.cat([buffer["x"], x]) if buffer is not None else x
        train_y = torch.cat([buffer["y"], y]) if buffer is not None else y
        with ctx.seeded("head", space):
            head = self._head(x.shape[1], task.num_classes)
        if space in state["heads"]:
            head.load_state_dict(state["heads"][space])
        mask = self._mask(task, seen)
        if task.kind == MULTI_LABEL:
            loss_key, loss_fn, target_dtype = "bce", F.binary_cross_entropy_with_logits, torch.float32
        else:
            loss_key, loss_fn, target_dtype = "ce", F.cross_entropy, torch.int64
        optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(ctx.rng_seed("order", space))
        n = len(train_x)
        batch = min(cfg.batch_size, n)
        head.train()
        steps = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                loss = loss_fn(head(train_x[idx]) + mask, train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1

        def step_flops(b: int) -> int:
            target = (b, task.num_classes) if task.kind == MULTI_LABEL else (b,)
            return ctx.flops.train_step(head, (b, x.shape[1]), target, loss_fn, target_dtype, loss_key)

        full, rest = divmod(n, batch)
        head_flops = cfg.epochs * (full * step_flops(batch) + (step_flops(rest) if rest else 0))
        new_buffer = self._update_buffer(buffer, x, y, task, seen, ctx)
        state = {
            "heads": {**state["heads"], space: {k: v.detach().clone() for k, v in head.state_dict().items()}},
            "seen": {**state["seen"], space: seen},
            "buffer": {**state["buffer"], space: new_buffer},
        }
        stored = [t for b in state["buffer"].values() for t in (b["x"], b["y"])]
        n_buf, _ = tensors_size(*stored)
        head_params = sum(p.numel() for p in head.parameters())
        usage = ResourceUsage(
            flops_train=float(encode_flops + head_flops),
            info={"steps": steps, "buffer_size": int(len(new_buffer["x"])), "encoder_flops": float(encode_flops),
                  "head_flops": float(head_flops), "buffer_elements": int(n_buf)},
            **encoder_usage(cfg, head_params, head_params * 4),
        )
        return state, usage

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        space = self._space(task)
        if space not in state["heads"]:
            raise RuntimeError(f"latent_replay: no head for task {task.key!r}; it was never trained")
        x, _, encode_flops = features(cfg, task.key, event.split, ctx)
        x = standardise(x)
        head = self._head(x.shape[1], task.num_classes)
        head.load_state_dict(state["heads"][space])
        head.eval()
        seen = state["seen"][space]
        if cfg.mode == "task_incremental" and task.kind != MULTI_LABEL:
            seen = sorted(set(seen))
        with torch.no_grad():
            logits = head(x) + self._mask(task, seen)
        scores = torch.sigmoid(logits) if task.kind == MULTI_LABEL else torch.softmax(logits, dim=1)
        head_flops = ctx.flops.forward_examples(head, (x.shape[1],), len(x), 256) if len(x) else 0
        head_params = sum(p.numel() for p in head.parameters())
        usage = ResourceUsage(flops_inference=float(encode_flops + head_flops),
                              **encoder_usage(cfg, head_params, head_params * 4))
        return as_predictions(task, scores), usage


@LEARNERS.register("latent_replay", LatentReplayConfig,
                   test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32, "epochs": 2,
                                   "buffer_per_class": 2})
def make_latent_replay(config: LatentReplayConfig) -> LatentReplayLearner:
    """Frozen encoder + replay buffer of latents + linear/MLP head (task-agnostic or task-incremental)."""
    return LatentReplayLearner(config)
