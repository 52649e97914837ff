"""``warpgrad``: Warped Gradient Descent (Flennerhag et al., ICLR 2020) on frozen features.

The network is an MLP on frozen-encoder features in which every adapted *task layer* is followed by
a *warp layer*::

    x -> [task: Linear(D, H) -> ReLU] -> [warp: Linear(H, H)] -> ... (``layers`` times) -> head

The task layers and a per-task head (theta) are adapted by SGD on each task with the warp layers
(omega) frozen; omega is meta-learned after each task from the stored adaptation trajectory, so it
acts as a learned preconditioner of the task layers' gradients.

Follows the paper / ``flennerhag/warpgrad`` (Algorithm 2, ``updaters.py``): linear warps, frozen
during plain-SGD adaptation from the meta-learned theta0; the warp objective ``warp_on_same_loss``
over a trajectory buffer (second order; ``approx``: Hessian-free); ``simplified_leap`` on theta0;
the paper-only continual fix for stale task parameters (``past_weight``).

Deviations [deviation]: frozen-encoder features instead of pixels (the one path,
``learner_kit/features.py``: any encoder, default a random ``small_convnet`` seeded by the run seed;
linear+ReLU blocks, HxH linear warps); warps initialised to the identity; a fresh zero-initialised head per task (BCE for
multi-label tasks); stored theta_t of every task key predicts with the current omega (fixes:
``past_weight``, ``freeze_after``); per-task input standardisation (train statistics kept in the state
per task key); the Leap gradient averaged over
segments; inner SGD lr 0.3, 300 steps, batch 64 (repo 0.1, 100, 128); ``meta_points`` = 30
snapshots; the buffer holds the current task only; ``probe_loss`` at ``probe_step`` reported; no
within-event checkpoints. Every inner step, meta-step and probe is counted with FlopCounterMode as
train FLOPs. Everything runs on ``ctx.device``; losses are read back once per event.

Measured numbers and the full notes: docs/learners/warpgrad.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learner_kit.features import (EncoderConfig, fit_standardiser, held_parameters, split_features,
                                              standardised)
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.protocol import ResourceUsage
from nevis_bench.registry import LEARNERS


@dataclass
class WarpGradConfig(EncoderConfig):
    hidden: int = 128  # width H of task and warp layers
    layers: int = 2  # task layers, each followed by a warp layer
    steps: int = 300  # [deviation] inner SGD steps per task (repo Omniglot: 100)
    batch_size: int = 64  # [deviation] repo 128
    inner_lr: float = 0.3  # [deviation] repo 0.1
    meta_lr: float = 0.1  # outer SGD on the warp parameters (repo default)
    init_lr: float = 0.1  # outer SGD on theta0 (repo default)
    warp_weight: float = 1.0  # warp_on_same_loss on the current task's trajectory (0: off)
    past_weight: float = 1.0  # [paper-only] past-task losses under the current warps (0: off)
    init_weight: float = 1.0  # simplified Leap on theta0 (0: off)
    approx: bool = False  # first-order (Hessian-free) warp objective
    meta_points: int = 30  # trajectory snapshots per task (one every steps/meta_points inner steps)
    meta_epochs: int = 1  # passes over the buffer (DualUpdater ``epochs``)
    past_tasks: int = 5  # tasks (the current one included) in the past-task term
    memory_per_task: int = 32  # stored training features per task for the past-task term
    freeze_after: int = 0  # meta-update the warps during the first N train events only (0: always)
    probe_step: int = 20  # inner step whose full training loss is reported (``probe_loss``)
    eval_batch_size: int = 128


def _task_loss(logits: torch.Tensor, targets: torch.Tensor, multi: bool) -> torch.Tensor:
    """Mean per-class BCE (multi-label) or cross-entropy: the task kind's loss."""
    if multi:
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets.long())


def _forward(x: torch.Tensor, theta: list[torch.Tensor], omega: list[torch.Tensor]) -> torch.Tensor:
    """theta = [W1, b1, ..., WL, bL, head_W, head_b]; omega = [U1, c1, ..., UL, cL]."""
    h = x
    for i in range(len(omega) // 2):
        h = F.relu(F.linear(h, theta[2 * i], theta[2 * i + 1]))
        h = F.linear(h, omega[2 * i], omega[2 * i + 1])
    return F.linear(h, theta[-2], theta[-1])


def _body_names(layers: int) -> list[str]:
    return [f"task{i}.{p}" for i in range(layers) for p in ("weight", "bias")]


def _warp_names(layers: int) -> list[str]:
    return [f"warp{i}.{p}" for i in range(layers) for p in ("weight", "bias")]


class WarpGradLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: WarpGradConfig):
        self.config = config

    def init(self):
        return {"theta0": None, "omega": None, "tasks": {}, "memory": [], "train_events": 0, "feature_dim": 0,
                "standardiser": {}}

    # ----------------------------------------------------------------- helpers
    def _fresh(self, dim: int, ctx) -> tuple[dict, dict]:
        """theta0 (nn.Linear default init, seeded) and identity warps, on ``ctx.device``."""
        cfg = self.config
        theta0, omega = {}, {}
        with ctx.seeded("warpgrad-theta0"):
            width = dim
            for i in range(cfg.layers):
                layer = torch.nn.Linear(width, cfg.hidden)
                theta0[f"task{i}.weight"] = layer.weight.detach().clone().to(ctx.device)
                theta0[f"task{i}.bias"] = layer.bias.detach().clone().to(ctx.device)
                width = cfg.hidden
        for i in range(cfg.layers):
            omega[f"warp{i}.weight"] = torch.eye(cfg.hidden, device=ctx.device)
            omega[f"warp{i}.bias"] = torch.zeros(cfg.hidden, device=ctx.device)
        return theta0, omega

    def _shape_key(self, dim: int) -> tuple:
        return (dim, self.config.hidden, self.config.layers)

    # ------------------------------------------------------------------- train
    def train(self, event, state, ctx):
        cfg, task = self.config, event.task
        kind = task_kind(task)
        multi, device = kind.multi_label, ctx.device
        x, labels, encode_flops = split_features(cfg, ctx, task.key, event.train_split)
        dim, n = x.shape[1], len(x)
        if n == 0:
            raise RuntimeError(f"warpgrad: task {task.key!r} has no training examples")
        stats = fit_standardiser(x)
        x = standardised(x, stats).to(device)
        labels = labels.to(kind.target_dtype).to(device)
        if state["theta0"] is None:
            theta0, omega = self._fresh(dim, ctx)
        else:
            theta0 = {k: v.clone().to(device) for k, v in state["theta0"].items()}
            omega = {k: v.clone().to(device) for k, v in state["omega"].items()}
        body, warps = _body_names(cfg.layers), _warp_names(cfg.layers)
        classes = task.num_classes
        shapes = self._shape_key(dim) + (classes, multi)
        gen = torch.Generator().manual_seed(ctx.rng_seed("warpgrad"))
        batch = min(cfg.batch_size, n)
        flops = float(encode_flops)

        # --- adaptation: theta from theta0 (+ fresh zero head), omega frozen, trajectory buffered
        theta = [theta0[k].clone().requires_grad_(True) for k in body]
        theta += [torch.zeros(classes, cfg.hidden, device=device, requires_grad=True),
                  torch.zeros(classes, device=device, requires_grad=True)]
        omega_frozen = [omega[k] for k in warps]
        points = sorted({i * cfg.steps // max(1, cfg.meta_points) for i in range(max(0, cfg.meta_points))})
        buffer: list[list[torch.Tensor]] = []
        info: dict = {}

        reads: dict[str, torch.Tensor] = {}  # device scalars, read back once at the end of the event

        def full_loss(params):
            with torch.no_grad():
                return ctx.flops.measured(("warpgrad-full-loss", n) + shapes,
                                          lambda: _task_loss(_forward(x, params, omega_frozen), labels, multi))

        for step in range(cfg.steps + 1):
            if step in points and step < cfg.steps:
                buffer.append([t.detach().clone() for t in theta])
            if step == cfg.probe_step:
                reads["probe_loss"], f = full_loss(theta)
                flops += f
            if step == cfg.steps:
                break
            idx = torch.randperm(n, generator=gen)[:batch].to(device)

            def inner(xb=x[idx], yb=labels[idx]):
                loss = _task_loss(_forward(xb, theta, omega_frozen), yb, multi)
                return torch.autograd.grad(loss, theta)

            grads, f = ctx.flops.measured(("warpgrad-inner", batch) + shapes, inner)
            flops += f
            with torch.no_grad():
                for t, g in zip(theta, grads):
                    t.sub_(cfg.inner_lr * g)
        final = [t.detach().clone() for t in theta]
        reads["final_loss"], f = full_loss(final)
        flops += f

        # --- store the task's parameters and a small memory of its features
        tasks = dict(state["tasks"])
        tasks[task.key] = {"theta": {k: v for k, v in zip(body + ["head.weight", "head.bias"], final)},
                           "multi": multi, "num_classes": classes}
        standardiser = {**state.get("standardiser", {}), task.key: stats}
        keep = torch.randperm(n, generator=gen)[: min(cfg.memory_per_task, n)].to(device)
        memory = [m for m in state["memory"] if m["key"] != task.key]
        memory.append({"key": task.key, "x": x[keep].clone(), "y": labels[keep].clone()})
        memory = memory[-cfg.past_tasks:] if cfg.past_tasks > 0 else []

        # --- meta-update of the warps (warp objective + past-task term)
        frozen = cfg.freeze_after > 0 and state["train_events"] >= cfg.freeze_after
        use_warp = cfg.warp_weight != 0 and not frozen and len(buffer) > 0
        use_past = cfg.past_weight != 0 and not frozen and len(memory) > 0
        meta_steps = 0
        if use_warp or use_past:
            omega_list = [omega[k].clone() for k in warps]
            before = [t.clone() for t in omega_list]
            past = [([tasks[m["key"]]["theta"][k].to(device) for k in body + ["head.weight", "head.bias"]],
                     m["x"].to(device), m["y"].to(device), tasks[m["key"]]["multi"]) for m in memory]
            past_key = tuple((len(m["x"]), tasks[m["key"]]["num_classes"], tasks[m["key"]]["multi"]) for m in memory)
            order = [i for _ in range(max(1, cfg.meta_epochs)) for i in torch.randperm(len(buffer), generator=gen).tolist()]
            if not use_warp:  # past-task term only: as many meta-steps as the warp objective would take
                order = [0] * (max(1, cfg.meta_epochs) * max(1, len(points)))
            for i in order:
                b1 = torch.randperm(n, generator=gen)[:batch].to(device)
                b2 = torch.randperm(n, generator=gen)[:batch].to(device)
                w_params = [t.requires_grad_(True) for t in omega_list]

                def meta(i=i, b1=b1, b2=b2, w_params=w_params):
                    total = torch.zeros((), device=device)
                    if use_warp:
                        start = [t.clone().requires_grad_(not cfg.approx) for t in buffer[i]]
                        if cfg.approx:
                            warp_loss = _task_loss(_forward(x[b1], start, w_params), labels[b1], multi)
                        else:
                            loss1 = _task_loss(_forward(x[b1], start, w_params), labels[b1], multi)
                            g = torch.autograd.grad(loss1, start, create_graph=True)
                            stepped = [t - cfg.inner_lr * gi for t, gi in zip(start, g)]
                            warp_loss = _task_loss(_forward(x[b2], stepped, w_params), labels[b2], multi)
                        total = total + cfg.warp_weight * warp_loss
                    if use_past:
                        past_loss = sum(_task_loss(_forward(px, p, w_params), py, pm) for p, px, py, pm in past)
                        total = total + cfg.past_weight * past_loss / len(past)
                    return torch.autograd.grad(total, w_params)

                key = ("warpgrad-meta", batch, cfg.approx, use_warp, use_past, past_key) + shapes
                grads, f = ctx.flops.measured(key, meta)
                flops += f
                with torch.no_grad():
                    omega_list = [t.detach() - cfg.meta_lr * g for t, g in zip(w_params, grads)]
                meta_steps += 1
            omega = {k: t.detach().clone() for k, t in zip(warps, omega_list)}
            reads["warp_change"] = torch.stack([(a - b).pow(2).sum() for a, b in zip(omega_list, before)]).sum().sqrt()

        # --- init objective: simplified Leap on theta0 (task layers only)
        if cfg.init_weight != 0 and len(buffer) > 0:
            path = [snap[: len(body)] for snap in buffer] + [final[: len(body)]]
            grad = [torch.zeros_like(theta0[k]) for k in body]
            for a, b in zip(path[:-1], path[1:]):
                diff = [u - v for u, v in zip(a, b)]
                norm = torch.stack([d.pow(2).sum() for d in diff]).sum().sqrt() + 1e-9  # stays on the device
                for acc, d in zip(grad, diff):
                    acc.add_(d / norm)
            segments = len(path) - 1  # [deviation] mean, not sum, over segments (see the docstring)
            theta0 = {k: theta0[k] - cfg.init_lr * cfg.init_weight * g / segments for k, g in zip(body, grad)}

        info.update(zip(reads, torch.stack(list(reads.values())).float().tolist()))  # the event's one read
        info.update({"meta_steps": meta_steps, "warps_frozen": bool(frozen), "trajectory_points": len(buffer)})
        host = lambda d: {k: v.detach().cpu() for k, v in d.items()}  # noqa: E731 -- the state lives on the host
        tasks[task.key]["theta"] = host(tasks[task.key]["theta"])
        memory[-1] = {**memory[-1], "x": memory[-1]["x"].cpu(), "y": memory[-1]["y"].cpu()}
        theta0, omega = host(theta0), host(omega)
        new_state = {"theta0": theta0, "omega": omega, "tasks": tasks, "memory": memory,
                     "train_events": state["train_events"] + 1, "feature_dim": dim, "standardiser": standardiser}
        usage = held_parameters(cfg, ctx.seed, theta0, omega, [t["theta"] for t in tasks.values()])
        return new_state, ResourceUsage(flops_train=flops, info=info, **usage)

    # ----------------------------------------------------------------- predict
    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        stored = state["tasks"].get(task.key)
        if stored is None or state["omega"] is None:
            raise RuntimeError(f"warpgrad: task {task.key!r} was never trained")
        device, kind = ctx.device, task_kind(task)
        body = _body_names(cfg.layers) + ["head.weight", "head.bias"]
        theta = [stored["theta"][k].to(device) for k in body]
        omega = [state["omega"][k].to(device) for k in _warp_names(cfg.layers)]
        x, _, flops = split_features(cfg, ctx, task.key, event.split)
        x = standardised(x, state["standardiser"][task.key]).to(device)
        total = float(flops)
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), cfg.eval_batch_size):
                xb = x[start:start + cfg.eval_batch_size]
                logits, f = ctx.flops.measured(("warpgrad-predict", len(xb), task.num_classes)
                                               + self._shape_key(x.shape[1]), lambda xb=xb: _forward(xb, theta, omega))
                total += f
                outs.append(kind.probabilities(logits))
        scores = torch.cat(outs) if outs else torch.zeros((0, task.num_classes))
        usage = held_parameters(cfg, ctx.seed, state["theta0"], state["omega"], [t["theta"] for t in state["tasks"].values()])
        return kind.predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=total, **usage)


@LEARNERS.register("warpgrad", WarpGradConfig,
                   test_overrides={"steps": 6, "meta_points": 2, "hidden": 16, "batch_size": 16, "probe_step": 3})
def make_warpgrad(config: WarpGradConfig) -> WarpGradLearner:
    """WarpGrad on frozen features: identity-initialised linear warps between adapted layers, meta-learned per task."""
    return WarpGradLearner(config)
