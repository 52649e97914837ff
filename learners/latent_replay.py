"""``latent_replay``: a frozen encoder, a replay buffer of latent vectors and a trained head.

Follows latent_CL's ``latent_ER`` regime (Ostapenko et al. 2022, "Continual Learning with Foundation
Models: An Empirical Study of Latent Replay"):

* the encoder is frozen and only encodes images, through the one frozen-encoder path
  (:mod:`nevis_bench.learner_kit.features`: any encoder, ``random:<arch>`` seeded by the run seed,
  on-disk feature cache); its forward FLOPs are charged for every image, every time (train split:
  ``flops_train``; predicted split: ``flops_inference``);
* features are standardised per dimension with the train statistics of the first task of each head
  (kept in the state, ``standardisers``); they stay fixed afterwards, so buffered latents stay valid;
* **heads, seen classes, buffer and statistics are keyed per task key**, unless the task names a
  shared label space (``TaskInfo.label_space``, as the tasks of ``synthetic-class-incremental`` do):
  then tasks of that space share one head, warm-started from its previous weights, and one buffer;
  single-label logits of classes never seen are masked out, so the head "grows" with the seen
  classes. ``mode="task_incremental"`` keys everything per task key even then. (Keying by the task's
  kind and class count, as this learner did before, made unrelated tasks with the same number of
  classes share a head and a buffer: after COIL-100, a later 100-class task trained on COIL latents
  under its own labels.)
* the head (``head="linear"`` or ``"mlp"`` with ``hidden`` units) trains on ``ctx.device`` with Adam on
  the current task's train features plus the buffer of its key (concatenated), ``epochs`` passes,
  batches of ``batch_size``; no host sync inside the loop (the loss stays on the device); its FLOPs
  are counted per train step with ``ctx.flops.train_step``.
* after training, up to ``buffer_per_class`` latents per class of the task's train split join the
  buffer: ``buffer_type="balanced"`` keeps m per class (classes already in the buffer keep theirs),
  ``"random"`` keeps a uniformly random subset of (buffer + current) of size m x seen classes.
  Multi-label tasks have no single class per example: both types keep m x K random examples.

State (plain data, CPU tensors): ``heads`` (key -> head state dict), ``seen`` (key -> seen class
ids), ``buffer`` (key -> {"x": standardised features, "y": labels}), ``standardisers`` (key ->
{"mean", "std"}). Parameters (``parameter_usage``): the encoder, every head and every buffered latent.

Measured numbers and the full notes: docs/learners/latent_replay.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nevis_bench.learner_kit.features import (EncoderConfig, fit_standardiser, held_parameters, split_features,
                                              standardised)
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.protocol import ResourceUsage
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


def head_key(task, mode: str = "task_agnostic") -> str:
    """The key of a task's head and buffer: its label space when it names a shared one, else its task key."""
    if mode == "task_agnostic" and task.label_space:
        return f"space:{task.label_space}"
    return f"task:{task.key}"


class LatentReplayLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: LatentReplayConfig):
        self.config = config

    def init(self):
        return {"heads": {}, "seen": {}, "buffer": {}, "standardisers": {}}

    def _head(self, dim: int, classes: int) -> nn.Module:
        if self.config.head == "mlp":
            return nn.Sequential(nn.Linear(dim, self.config.hidden), nn.ReLU(), nn.Linear(self.config.hidden, classes))
        return nn.Linear(dim, classes)

    @staticmethod
    def _mask(kind, seen: list[int], device) -> torch.Tensor:
        mask = torch.zeros(kind.num_classes)
        if not kind.multi_label:
            mask.fill_(MASKED)
            mask[torch.tensor(seen, dtype=torch.int64)] = 0.0
        return mask.to(device)

    def _update_buffer(self, old: dict | None, x: torch.Tensor, y: torch.Tensor, kind, seen, ctx) -> dict:
        """The new buffer (CPU tensors) from the old one and this task's (CPU) latents."""
        m = self.config.buffer_per_class
        if m == 0:
            return {"x": x[:0].clone(), "y": y[:0].clone()}
        rng = np.random.default_rng(ctx.rng_seed("buffer"))
        if old is None:
            old = {"x": x[:0], "y": y[:0]}
        if kind.multi_label or self.config.buffer_type == "random":
            pool_x, pool_y = torch.cat([old["x"], x]), torch.cat([old["y"], y])
            size = m * (kind.num_classes if kind.multi_label else len(seen))
            keep = torch.from_numpy(np.sort(rng.permutation(len(pool_x))[:size]))
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
        cfg, task, device = self.config, event.task, ctx.device
        kind = task_kind(task)
        x, y, encode_flops = split_features(cfg, ctx, task.key, event.train_split)
        key = head_key(task, cfg.mode)
        stats = state["standardisers"].get(key) or fit_standardiser(x)
        x = standardised(x, stats)
        seen = sorted(set(state["seen"].get(key, [])) | (set() if kind.multi_label else set(y.tolist())))
        buffer = state["buffer"].get(key)
        train_x = (torch.cat([buffer["x"], x]) if buffer is not None else x).to(device)
        train_y = (torch.cat([buffer["y"], y]) if buffer is not None else y).to(device)
        with ctx.seeded("head", key):
            head = self._head(x.shape[1], task.num_classes)
        if key in state["heads"]:
            head.load_state_dict(state["heads"][key])
        head.to(device)
        mask = self._mask(kind, seen, device)
        optimizer = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(ctx.rng_seed("order", key))
        n = len(train_x)
        batch = min(cfg.batch_size, n)
        head.train()
        steps = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=generator).to(device)
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                loss = kind.loss(head(train_x[idx]) + mask, train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1

        def step_flops(b: int) -> int:
            return ctx.flops.train_step(head, (b, x.shape[1]), kind.target_shape(b), kind.loss, kind.target_dtype,
                                        kind.loss_key)

        full, rest = divmod(n, batch)
        head_flops = cfg.epochs * (full * step_flops(batch) + (step_flops(rest) if rest else 0))
        with torch.no_grad():
            head_state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
        new_buffer = self._update_buffer(buffer, x, y, kind, seen, ctx)
        state = {
            "heads": {**state["heads"], key: head_state},
            "seen": {**state["seen"], key: seen},
            "buffer": {**state["buffer"], key: new_buffer},
            "standardisers": {**state["standardisers"], key: stats},
        }
        stored = [b["x"] for b in state["buffer"].values()]
        usage = ResourceUsage(
            flops_train=float(encode_flops + head_flops),
            info={"steps": steps, "head_key": key, "buffer_size": int(len(new_buffer["x"])),
                  "encoder_flops": float(encode_flops), "head_flops": float(head_flops),
                  "buffer_elements": int(sum(t.numel() for t in stored))},
            **held_parameters(cfg, ctx.seed, state["heads"], stored),
        )
        return state, usage

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        kind = task_kind(task)
        key = head_key(task, cfg.mode)
        if key not in state["heads"]:
            raise RuntimeError(f"latent_replay: no head for task {task.key!r}; it was never trained")
        x, _, encode_flops = split_features(cfg, ctx, task.key, event.split)
        x = standardised(x.to(ctx.device), state["standardisers"][key])
        head = self._head(x.shape[1], task.num_classes)
        head.load_state_dict(state["heads"][key])
        head.to(ctx.device).eval()
        with torch.no_grad():
            logits = head(x) + self._mask(kind, state["seen"][key], ctx.device)
        head_flops = ctx.flops.forward_examples(head, (x.shape[1],), len(x), 256) if len(x) else 0
        stored = [b["x"] for b in state["buffer"].values()]
        usage = ResourceUsage(flops_inference=float(encode_flops + head_flops),
                              **held_parameters(cfg, ctx.seed, state["heads"], stored))
        return kind.predictions(kind.probabilities(logits)), usage


@LEARNERS.register("latent_replay", LatentReplayConfig,
                   test_overrides={"encoder": "random:small_convnet", "encoder_input_size": 32, "epochs": 2,
                                   "buffer_per_class": 2})
def make_latent_replay(config: LatentReplayConfig) -> LatentReplayLearner:
    """Frozen encoder + replay buffer of latents + linear/MLP head (task-agnostic or task-incremental)."""
    return LatentReplayLearner(config)
