"""``leo``: Latent Embedding Optimization (Rusu et al., ICLR 2019) on frozen features, meta-trained on the stream.

Follows the paper / ``deepmind/leo`` (``model.py``, ``config.py``): L2-normalised frozen embeddings;
an encoder (dropout, bias-free linear map to ``latent`` = 64) and a relation network give a Gaussian
over each class's latent code z_c; a bias-free linear decoder gives a Gaussian over the class weights
w_c (Glorot offset on the standard deviation); logits x . w_c; the inner loop takes ``latent_steps``
(5) steps on z with learned per-dimension rates, then ``finetune_steps`` (5) on w; meta-training
differentiates through both (second order) with the outer loss of the paper (validation CE + KL,
encoder, L2 and orthogonality penalties), Adam with gradient clipping, N-way 1-shot episodes.

Deviations [deviation] (the repository has no continual loop): any frozen encoder of the one
frozen-encoder path (``learner_kit/features.py``; default a random ``small_convnet`` seeded by the run
seed; every image forwarded is charged), its features standardised with the task's train statistics
(kept in the state per task key) before LEO's L2 normalisation; continual meta-training: each train
event stores up to ``store_per_class`` features per class and runs ``meta_steps`` meta-steps on
episodes of the stored tasks and the current one (no meta-pre-training); ``outer_lr`` 3e-3 (paper 1e-4
over 100k steps), float32, standard deviations floored at 1e-5; each task is solved by the inner loop
on its whole training split (codes from ``solve_shots`` examples per class, relation partners capped
at ``relation_partners``) and its W_t is stored per task key (task-incremental); ``polish_steps``
(200) of Adam on W_t after the inner loop, from LEO's solution; multi-label tasks: one code per label,
per-label BCE, sigmoid scores; no within-event checkpoints. Device: everything runs on ``ctx.device``
with one host read per event (losses are kept as device tensors).

Measured numbers and the full notes: docs/learners/leo.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.learner_kit.features import (EncoderConfig, fit_standardiser, held_parameters, split_features,
                                              standardised)
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.protocol import ResourceUsage
from nevis_bench.registry import LEARNERS

MIN_STD = 1e-5


@dataclass
class LeoConfig(EncoderConfig):
    latent: int = 64
    latent_steps: int = 5
    finetune_steps: int = 5
    latent_lr_init: float = 1.0
    finetune_lr_init: float = 1e-3
    dropout: float = 0.31  # README tuned value for miniImageNet 1-shot (config.py default 0.5)
    kl_weight: float = 1e-3
    encoder_penalty: float = 1e-9
    l2_penalty: float = 1e-8
    orthogonality_penalty: float = 1e-3
    outer_lr: float = 3e-3  # [deviation] paper 1e-4 (README tuned 2.7e-4) over 100k steps
    clip_value: float = 0.1
    clip_norm: float = 0.1
    meta_steps: int = 40  # meta-steps per train event
    meta_batch: int = 12
    n_way: int = 5
    k_shot: int = 1
    val_per_class: int = 15
    store_per_class: int = 16  # stored features per class for later episodes (k_shot + val_per_class)
    solve_shots: int = 5  # codes per class when solving a task
    relation_partners: int = 32  # cap on the relation network's partners
    standardise: bool = True  # [deviation] centre/scale features by the task's train statistics (then L2)
    polish_steps: int = 200  # [deviation] Adam steps on W_t after the inner loop (0: LEO's inner loop only)
    polish_lr: float = 1e-2
    eval_batch_size: int = 128


class LeoNet(nn.Module):
    """The meta-parameters: encoder, relation network, decoder and the inner learning rates."""

    def __init__(self, dim: int, latent: int, latent_lr: float = 1.0, finetune_lr: float = 1e-3):
        super().__init__()
        h = 2 * latent
        self.dim, self.latent = dim, latent
        self.encoder = nn.Linear(dim, latent, bias=False)
        self.relation = nn.Sequential(nn.Linear(2 * latent, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                      nn.Linear(h, 2 * latent))
        self.decoder = nn.Linear(latent, 2 * dim, bias=False)
        self.latent_lr = nn.Parameter(torch.full((latent,), float(latent_lr)))
        self.finetune_lr = nn.Parameter(torch.full((dim,), float(finetune_lr)))


def _dropout(x: torch.Tensor, p: float, gen) -> torch.Tensor:
    if gen is None or p <= 0:
        return x
    keep = (torch.rand(x.shape, generator=gen, device=x.device) >= p).to(x.dtype)
    return x * keep / (1.0 - p)


def _gaussian(params: torch.Tensor, offset: float, gen):
    """(sample or mean, mean, std) of the Gaussian whose parameters are the two halves of ``params``."""
    mean, u = params.chunk(2, dim=-1)
    std = (torch.exp(u) - (1.0 - offset)).clamp_min(MIN_STD)
    if gen is None:
        return mean, mean, std
    return mean + std * torch.randn(mean.shape, generator=gen, device=mean.device), mean, std


def _inner_loss(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, multi: bool) -> torch.Tensor:
    """Mean loss of logits x . w; ``x`` (E, M, D), ``w`` (E, N, D), ``y`` (E, M) or (E, M, N) multi-hot."""
    logits = torch.einsum("emd,end->emn", x, w)
    if multi:
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def encode_classes(net: LeoNet, support: torch.Tensor, cfg: LeoConfig, gen=None, partners=None):
    """Per-class latent codes from ``support`` (E, N, K, D): (z, mean, std); sampled when ``gen`` is given."""
    e, n, k, _ = support.shape
    codes = net.encoder(_dropout(support, cfg.dropout, gen)).reshape(e, n * k, -1)
    others = codes if partners is None else codes[:, partners]
    p = others.shape[1]
    pairs = torch.cat([codes.unsqueeze(2).expand(-1, -1, p, -1), others.unsqueeze(1).expand(-1, n * k, -1, -1)], -1)
    rel = net.relation(pairs).mean(2).reshape(e, n, k, -1).mean(2)  # (E, N, 2L)
    return _gaussian(rel, 0.0, gen)


def decode(net: LeoNet, z: torch.Tensor, samples: int, gen=None) -> torch.Tensor:
    """Class weights (E, N, D) from codes (E, N, L): the mean, or the average of ``samples`` samples."""
    params = net.decoder(z)
    offset = math.sqrt(2.0 / (z.shape[1] + net.dim))
    if gen is None:
        return params.chunk(2, dim=-1)[0]
    draws = [_gaussian(params, offset, gen)[0] for _ in range(max(1, samples))]
    return torch.stack(draws).mean(0)


def inner_loop(net: LeoNet, support, train_x, train_y, cfg: LeoConfig, multi: bool = False, gen=None,
               partners=None, record: bool = False):
    """LEO's adaptation: codes from ``support``, latent steps, decode, fine-tuning steps on (train_x, train_y).

    With ``gen`` (meta-training) codes and weights are sampled, dropout applies and the loops keep
    their graph for the outer gradient. Returns a dict with ``w`` (E, N, D), ``z0``, ``z``, ``kl`` and,
    with ``record``, the training loss before and after the latent steps per episode (device tensors).
    """
    meta = gen is not None
    samples = support.shape[2]
    z0, mean, std = encode_classes(net, support, cfg, gen, partners)
    out = {"z0": z0}
    if meta:
        normal = -0.5 * z0 ** 2
        log_q = -0.5 * ((z0 - mean) / std) ** 2 - torch.log(std)
        out["kl"] = (log_q - normal).mean()
    tx = _dropout(train_x, cfg.dropout, gen)

    def per_episode(w):
        return torch.stack([_inner_loss(tx[i:i + 1], w[i:i + 1], train_y[i:i + 1], multi) for i in range(len(w))])

    z = z0
    with torch.enable_grad():
        if not meta:
            z = z.detach().requires_grad_(True) * 1.0  # not a leaf: FlopCounterMode's hooks reject leaves
        if record:
            out["loss_before"] = per_episode(decode(net, z, samples, gen)).detach()
        for _ in range(cfg.latent_steps):
            loss = _inner_loss(tx, decode(net, z, samples, gen), train_y, multi) * len(z)
            (grad,) = torch.autograd.grad(loss, z, create_graph=meta)
            z = z - net.latent_lr * grad
        w = decode(net, z, samples, gen)
        if record:
            out["loss_after_latent"] = per_episode(w).detach()
        if not meta:
            w = w.detach().requires_grad_(True) * 1.0
        for _ in range(cfg.finetune_steps):
            loss = _inner_loss(tx, w, train_y, multi) * len(w)
            (grad,) = torch.autograd.grad(loss, w, create_graph=meta)
            w = w - net.finetune_lr * grad
    out["z"], out["w"] = z, w if meta else w.detach()
    return out


def orthogonality(weight: torch.Tensor) -> torch.Tensor:
    """mean((corr(rows) - I)^2) of ``weight`` (rows x columns)."""
    norms = weight.norm(dim=1, keepdim=True) + 1e-20
    corr = (weight @ weight.t()) / (norms @ norms.t())
    return ((corr - torch.eye(len(weight), device=weight.device)) ** 2).mean()


def meta_loss(net: LeoNet, support, val_x, val_y, cfg: LeoConfig, gen) -> torch.Tensor:
    """The outer loss of a meta-batch: ``support`` (E, N, K, D), ``val_x`` (E, V, D), ``val_y`` (E, V)."""
    e, n, k, d = support.shape
    train_y = torch.arange(n, device=support.device).repeat_interleave(k).expand(e, -1)
    out = inner_loop(net, support, support.reshape(e, n * k, d), train_y, cfg, gen=gen)
    val = _inner_loss(_dropout(val_x, cfg.dropout, gen), out["w"], val_y, False)
    penalty = ((out["z"].detach() - out["z0"]) ** 2).mean()
    l2 = sum((p ** 2).sum() for name, p in net.named_parameters() if "lr" not in name) / 2
    return (val + cfg.kl_weight * out["kl"] + cfg.encoder_penalty * penalty + cfg.l2_penalty * l2
            + cfg.orthogonality_penalty * orthogonality(net.decoder.weight.t()))


class EpisodePool:
    """Stored (features, labels) of several tasks, indexed once so that drawing a meta-batch of episodes
    is index arithmetic on the host (numpy) and one gather on the features' device: no host sync."""

    def __init__(self, bank: list[tuple[torch.Tensor, torch.Tensor]], cfg: LeoConfig):
        need = cfg.k_shot + 1
        self.tasks, offset, xs = [], 0, []
        for x, y in bank:
            labels = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y).astype(np.int64)
            groups = [np.flatnonzero(labels == c) + offset for c in np.unique(labels)]
            groups = [g for g in groups if len(g) >= need]
            if len(groups) >= 2:
                self.tasks.append(groups)
            offset += len(labels)
            xs.append(x)
        self.features = torch.cat(xs).float() if xs else None
        self.valid = bool(self.tasks)
        if not self.valid:
            return
        self.n = min(cfg.n_way, max(len(g) for g in self.tasks))
        self.tasks = [g for g in self.tasks if len(g) >= self.n]
        smallest = min(len(c) for g in self.tasks for c in g)
        self.v = max(1, min(cfg.val_per_class, smallest - cfg.k_shot))


def sample_episodes(pool: EpisodePool, cfg: LeoConfig, rng: np.random.Generator):
    """A meta-batch of N-way K-shot episodes: (support (E, N, K, D), val_x (E, N*V, D), val_y (E, N*V))."""
    if not pool.valid:
        return None
    n, k, v = pool.n, cfg.k_shot, pool.v
    rows = np.empty((cfg.meta_batch, n, k + v), dtype=np.int64)
    for e in range(cfg.meta_batch):
        groups = pool.tasks[rng.integers(len(pool.tasks))]
        for j, c in enumerate(rng.permutation(len(groups))[:n]):
            rows[e, j] = rng.permutation(groups[c])[:k + v]
    device = pool.features.device
    x = pool.features[torch.from_numpy(rows).to(device)]  # (E, N, K+V, D)
    support = x[:, :, :k]
    val_x = x[:, :, k:].reshape(cfg.meta_batch, n * v, -1)
    val_y = torch.arange(n, device=device).repeat_interleave(v).expand(cfg.meta_batch, -1)
    return support, val_x, val_y


def meta_step(net: LeoNet, optimizer, episode, cfg: LeoConfig, gen, ctx) -> tuple[torch.Tensor, int]:
    """One meta-update on a meta-batch; returns (the loss as a device tensor, FLOPs). No host sync."""
    support, val_x, val_y = episode

    def fn():
        optimizer.zero_grad()
        loss = meta_loss(net, support, val_x, val_y, cfg, gen)
        loss.backward()
        return loss.detach()

    loss, flops = ctx.flops.measured(("leo-meta-step", tuple(support.shape), tuple(val_x.shape), cfg.latent,
                                      cfg.latent_steps, cfg.finetune_steps), fn)
    named = list(net.named_parameters())
    finite = torch.stack([torch.isfinite(p.grad).all() for _, p in named]).all()
    with torch.no_grad():
        for name, p in named:  # paper: a non-finite gradient is replaced by the L2 gradient only
            fallback = cfg.l2_penalty * p.detach() if "lr" not in name else torch.zeros_like(p)
            p.grad = torch.where(finite, p.grad, fallback)
        torch.nn.utils.clip_grad_value_([p for _, p in named], cfg.clip_value)
        for _, p in named:  # tf.clip_by_norm: per tensor
            p.grad.mul_((cfg.clip_norm / p.grad.norm().clamp_min(1e-12)).clamp(max=1.0))
    optimizer.step()
    return loss, flops


def _single_labels(y: torch.Tensor, multi: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, class) of the examples usable as single-label ones."""
    if not multi:
        return torch.arange(len(y)), y.long()
    single = (y > 0.5).sum(1) == 1
    return single.nonzero().flatten(), y[single].argmax(1)


def task_features(cfg: LeoConfig, ctx, task_key: str, split: str, stats=None):
    """(features on ctx.device: standardised with ``stats`` (fitted here on a train split when None),
    then L2-normalised; labels (CPU) or None; encoder FLOPs; the statistics)."""
    x, labels, flops = split_features(cfg, ctx, task_key, split)
    if cfg.standardise:
        if stats is None:
            stats = fit_standardiser(x)
        x = standardised(x, stats)
    return F.normalize(x, dim=1).to(ctx.device), labels, flops, stats


class LeoLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: LeoConfig):
        self.config = config

    def init(self):
        return {"meta": None, "feature_dim": 0, "bank": {}, "heads": {}, "standardiser": {}}

    def net_from_state(self, state, device=None) -> LeoNet:
        cfg = self.config
        net = LeoNet(state["feature_dim"], cfg.latent, cfg.latent_lr_init, cfg.finetune_lr_init)
        net.load_state_dict(state["meta"])
        return net.to(device or torch.device("cpu"))

    def train(self, event, state, ctx):
        cfg, task = self.config, event.task
        kind = task_kind(task)
        multi, device = kind.multi_label, ctx.device
        x, labels, flops, stats = task_features(cfg, ctx, task.key, event.train_split)
        dim = x.shape[1]
        if state["meta"] is None:
            with ctx.seeded("leo-init"):
                net = LeoNet(dim, cfg.latent, cfg.latent_lr_init, cfg.finetune_lr_init).to(device)
        else:
            net = self.net_from_state(state, device)
        gen = torch.Generator().manual_seed(ctx.rng_seed("leo"))  # host: stored examples, solve shots
        dgen = torch.Generator(device=device).manual_seed(ctx.rng_seed("leo", "device"))  # dropout, samples
        rng = np.random.default_rng(ctx.rng_seed("leo", "episodes"))
        # store this task's features for later episodes (single-label examples, capped per class)
        pos, single = _single_labels(labels, multi)
        keep = []
        for c in range(task.num_classes):
            idx = pos[single == c]
            keep.append(idx[torch.randperm(len(idx), generator=gen)[:cfg.store_per_class]])
        keep = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.long)
        bank = dict(state["bank"])
        bank[task.key] = {"x": x[keep.to(device)].half().cpu(),
                          "y": (labels[keep].argmax(1) if multi else labels[keep]).long()}
        # meta-training on episodes of the stored tasks
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.outer_lr, fused=True)
        pool = EpisodePool([(b["x"].to(device), b["y"]) for b in bank.values()], cfg)
        losses = []
        net.train()
        for _ in range(cfg.meta_steps if pool.valid else 0):
            loss, f = meta_step(net, optimizer, sample_episodes(pool, cfg, rng), cfg, dgen, ctx)
            flops += f
            losses.append(loss)
        # solve the task: the inner loop on its training features
        w, trained, f, diagnostics = self._solve(net, x, labels, task.num_classes, multi, gen, ctx)
        flops += f
        heads = dict(state["heads"])
        heads[task.key] = {"w": w.cpu(), "trained": trained}
        standardiser = dict(state.get("standardiser", {}))
        if stats is not None:
            standardiser[task.key] = stats
        meta = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        new_state = {"meta": meta, "feature_dim": dim, "bank": bank, "heads": heads, "standardiser": standardiser}
        # the one host read of the event: meta-losses and inner-loop diagnostics (device tensors until here)
        reads = ([losses[0], losses[-1]] if losses else []) + list(diagnostics.values())
        values = torch.stack([r.float().reshape(()) for r in reads]).tolist() if reads else []
        first, last = (values[0], values[1]) if losses else (None, None)
        info = {"meta_steps": len(losses), "stored_features": sum(len(b["y"]) for b in bank.values()),
                "meta_loss_first": first, "meta_loss_last": last, "solved_classes": int(trained.sum()),
                **dict(zip(diagnostics, values[2 if losses else 0:]))}
        return new_state, ResourceUsage(flops_train=float(flops), info=info,
                                        **held_parameters(cfg, ctx.seed, meta, [h["w"] for h in heads.values()]))

    def _solve(self, net: LeoNet, x, labels, num_classes: int, multi: bool, gen, ctx):
        """(W_t (K, D) on x's device, trained-class mask (CPU), FLOPs, device diagnostics)."""
        cfg, device = self.config, x.device
        w_full = torch.zeros(num_classes, x.shape[1], device=device)
        trained = torch.zeros(num_classes, dtype=torch.bool)
        if multi:
            members = [(labels[:, c] > 0.5).nonzero().flatten() for c in range(num_classes)]
        else:
            members = [(labels == c).nonzero().flatten() for c in range(num_classes)]
        present = [c for c in range(num_classes) if len(members[c])]
        if not present:
            return w_full, trained, 0, {}
        k = max(1, min(cfg.solve_shots, max(len(members[c]) for c in present)))
        support = []
        for c in present:
            idx = members[c]
            order = idx[torch.randperm(len(idx), generator=gen)]
            if len(order) < k:
                order = torch.cat([order, idx[torch.randint(len(idx), (k - len(order),), generator=gen)]])
            support.append(order[:k])
        support = x[torch.stack(support).to(device)].unsqueeze(0)  # (1, N, K, D)
        n = len(present)
        partners = None
        if n * k > cfg.relation_partners:
            partners = torch.randperm(n * k, generator=gen)[:cfg.relation_partners].to(device)
        if multi:
            train_y = labels[:, present].float().unsqueeze(0).to(device)
        else:
            lookup = torch.full((num_classes,), -1, dtype=torch.long)
            lookup[torch.tensor(present)] = torch.arange(n)
            train_y = lookup[labels.long()].unsqueeze(0).to(device)
        net.eval()

        def fn():
            return inner_loop(net, support, x.unsqueeze(0), train_y, cfg, multi, partners=partners, record=True)

        out, flops = ctx.flops.measured(("leo-solve", multi, n, k, len(x), x.shape[1], cfg.latent, cfg.latent_steps,
                                         cfg.finetune_steps, partners is not None and len(partners)), fn)
        w = out["w"][0].detach()
        diagnostics = {"inner_loss_before": out["loss_before"][0], "inner_loss_after_latent": out["loss_after_latent"][0]}
        if cfg.polish_steps > 0:
            diagnostics["inner_loss_after_inner_loop"] = _inner_loss(x.unsqueeze(0), w.unsqueeze(0), train_y, multi).detach()
            w = w.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=cfg.polish_lr, fused=True)
            for _ in range(cfg.polish_steps):
                def step(w=w):
                    opt.zero_grad()
                    loss = _inner_loss(x.unsqueeze(0), w.unsqueeze(0), train_y, multi)
                    loss.backward()
                    return loss.detach()

                loss, f = ctx.flops.measured(("leo-polish", multi, n, len(x), x.shape[1]), step)
                opt.step()
                flops += f
            w = w.detach()
            diagnostics["polish_loss_last"] = loss
        w_full[torch.tensor(present, device=device)] = w
        trained[torch.tensor(present)] = True
        return w_full, trained, flops, diagnostics

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        if task.key not in state["heads"]:
            raise RuntimeError(f"leo: task {task.key!r} was never trained")
        head = state["heads"][task.key]
        kind = task_kind(task)
        w, trained = head["w"].to(ctx.device), head["trained"].to(ctx.device)
        x, _, flops, _ = task_features(cfg, ctx, task.key, event.split, state.get("standardiser", {}).get(task.key))
        total = float(flops)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(x), cfg.eval_batch_size):
                xb = x[start:start + cfg.eval_batch_size]

                def score(xb=xb):
                    return kind.probabilities((xb @ w.t()).masked_fill(~trained, float("-inf")))

                s, f = ctx.flops.measured(("leo-predict", kind.multi_label, len(xb), w.shape[0], w.shape[1]), score)
                total += f
                chunks.append(s)
        scores = torch.cat(chunks) if chunks else torch.zeros((0, task.num_classes))
        held = held_parameters(cfg, ctx.seed, state["meta"], [h["w"] for h in state["heads"].values()])
        return kind.predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=total, **held)


@LEARNERS.register("leo", LeoConfig, test_overrides={"meta_steps": 3, "meta_batch": 2, "latent": 8,
                                                     "latent_steps": 2, "finetune_steps": 2, "polish_steps": 5})
def make_leo(config: LeoConfig) -> LeoLearner:
    """LEO on frozen features: per-class latent codes decoded to classifier weights, meta-trained on stored features."""
    return LeoLearner(config)
