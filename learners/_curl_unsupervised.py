"""The unsupervised mode of ``curl`` (``mode="unsupervised"``; ``train_main.py`` + ``training.py`` of
``deepmind-research/curl``): no label enters the objective. Not a learner itself; ``learners/curl.py``
dispatches here.

A fixed capacity of ``max_components`` components of which ``n_active`` are active (starting at 1);
the loss on real data is the ELBO with y marginalised over the active components (capped at the
``top_k`` most likely ones); dynamic expansion buffers the real samples whose ELBO falls below a
running threshold and adds a component for them; mixture generative replay as in the supervised mode;
a label readout (per component, the labels of the training examples it claims) turns the components
into class scores. Every FLOP is charged as train FLOPs. The deviations and the measured numbers are
in docs/learners/curl.md.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from nevis_bench.learners._curl_core import (CurlConfig, CurlNet, adam, claims, component_posterior, curl_features,
                                             expand, marginal_elbo, task_steps)
from nevis_bench.learner_kit.features import fit_standardiser, held_parameters, split_features
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.protocol import ResourceUsage

STATS_KEY = "unsupervised"  # one standardisation for every task: the first train event's statistics


def initial_state() -> dict:
    """The learner state before the first event."""
    return {"mode": "unsupervised", "n_active": 0, "counts": torch.zeros(0), "params": None,
            "feature_dim": 0, "step": 0, "last_expansion": 0, "elbo_stats": [0.0, 0.0, 0],
            "readout": {}, "expansions": 0, "standardiser": {}}


def train(cfg: CurlConfig, space: str, event, state, ctx):
    """One train event of the unsupervised mode (see docs/learners/curl.md)."""
    task = event.task
    kind = task_kind(task)
    multi, device = kind.multi_label, ctx.device
    standardiser = state.get("standardiser", {})
    if cfg.standardise and STATS_KEY not in standardiser:  # the first train event: fit, one scalar scale
        raw, _, _ = split_features(cfg, ctx, task.key, event.train_split)
        stats = fit_standardiser(raw)
        stats["std"] = stats["std"].mean().expand_as(stats["std"]).clone()
        standardiser = {**standardiser, STATS_KEY: stats}
    x, labels, encode_flops, standardiser = curl_features(cfg, ctx, task.key, event.train_split, standardiser,
                                                          STATS_KEY)
    dim, cap = x.shape[1], cfg.max_components
    with ctx.seeded("curl-init", "unsupervised"):
        net = CurlNet(dim, cfg.hidden, cfg.latent, cap)
    if state["params"] is not None:
        net.load_state_dict(state["params"])
    net.to(device)
    n_active = max(1, int(state["n_active"]))
    counts = state["counts"].clone() if len(state["counts"]) else torch.zeros(cap)
    replay = cfg.replay and float(counts.sum()) > 0
    snapshot = copy.deepcopy(net).requires_grad_(False) if replay else None
    snap_active = n_active
    snap_counts = counts[:snap_active].clone()
    counts = counts.to(device)
    weight = cfg.elbo_weight or 1.0 / dim
    optimizer = adam(net.parameters(), cfg.learning_rate)
    gen = torch.Generator().manual_seed(ctx.rng_seed("curl-steps"))  # host: batches, components
    noise = torch.Generator(device=device).manual_seed(ctx.rng_seed("curl-noise"))  # device: z samples
    batch = min(cfg.batch_size, len(x))
    steps = task_steps(cfg, len(x))
    mean, var, seen = float(state["elbo_stats"][0]), float(state["elbo_stats"][1]), int(state["elbo_stats"][2])
    step0, last_expansion = int(state["step"]), int(state["last_expansion"])
    buffer: list[torch.Tensor] = []
    buffered = 0
    flops = {"encode": float(encode_flops), "steps": 0.0, "replay": 0.0, "expansion": 0.0, "readout": 0.0,
             "priors": 0.0}
    expansions, real_steps, gen_steps, poor_seen = [], 0, 0, 0
    for step in range(steps):  # a constant learning rate: the expansion threshold follows running ELBO statistics
        gstep = step0 + step
        generated = replay and cfg.gen_every_n > 0 and step % cfg.gen_every_n == cfg.gen_every_n - 1
        if generated:  # SMGR: a batch of the snapshot, trained at its generating component
            comp = torch.multinomial(snap_counts, batch, True, generator=gen).to(device)
            with torch.no_grad():
                xb, f = ctx.flops.measured(("curl-generate", batch, cap, dim, cfg.hidden, cfg.latent),
                                           lambda: snapshot.generate(comp, noise))
            flops["replay"] += f

            def step_fn(xb=xb, comp=comp, n_active=n_active):
                h = net.encoder(xb)
                loss = weight * (-net.elbo(xb, h, comp, noise).mean()
                                 + F.cross_entropy(net.cluster_logits(h)[:, :n_active], comp))
                optimizer.zero_grad()
                loss.backward()
                return None

            _, f = ctx.flops.measured(("curl-u-replay-step", batch, n_active, cap, dim, cfg.hidden, cfg.latent),
                                      step_fn)
            optimizer.step()
            flops["steps"] += f
            gen_steps += 1
            continue
        xb = x[torch.randperm(len(x), generator=gen)[:batch].to(device)]

        def step_fn(xb=xb, n_active=n_active):
            h = net.encoder(xb)
            elbo, logits = marginal_elbo(net, xb, h, n_active, cfg.top_k, noise)
            loss = -weight * elbo.mean()
            optimizer.zero_grad()
            loss.backward()
            return elbo.detach(), logits.detach().argmax(1)

        (elbo, assigned), f = ctx.flops.measured(("curl-u-step", batch, n_active, min(cfg.top_k, n_active), cap,
                                                  dim, cfg.hidden, cfg.latent), step_fn)
        optimizer.step()
        flops["steps"] += f
        real_steps += 1
        counts.index_add_(0, assigned, torch.ones(len(assigned), device=device))  # usage on real data
        # dynamic expansion: buffer the poorly explained samples (ELBO below the running threshold)
        started = seen > 0 and gstep >= cfg.exp_burn_in
        if started:
            poor = elbo < mean - cfg.exp_thresh_sd * math.sqrt(var)
        else:
            poor = torch.zeros(len(elbo), dtype=torch.bool, device=device)
        eligible = cfg.expansion and started and gstep - last_expansion >= cfg.exp_wait_steps and n_active < cap
        # the running statistics follow the explained samples only (else new data would drag them down);
        # the step's one host read: [poor count, explained count, explained mean, explained variance]
        keep = (~poor).to(elbo.dtype)
        n_keep = keep.sum()
        e_mean = (elbo * keep).sum() / n_keep.clamp_min(1.0)
        e_var = (((elbo - e_mean) ** 2) * keep).sum() / n_keep.clamp_min(1.0)
        n_poor, n_explained, bm, bv = torch.stack([poor.sum().to(elbo.dtype), n_keep, e_mean, e_var]).tolist()
        n_poor = int(n_poor)
        if eligible and n_poor:
            buffer.append(xb[poor])
            buffered += n_poor
        poor_seen += n_poor
        if n_explained > 1:
            if seen == 0:
                mean, var = bm, bv
            else:
                d = cfg.exp_stats_decay
                mean, var = d * mean + (1 - d) * bm, d * var + (1 - d) * bv
            seen += 1
        if eligible and buffered >= cfg.exp_buffer_size:
            buf = torch.cat(buffer)
            (best, new), f = ctx.flops.measured(("curl-expand", len(buf), n_active, cap, dim, cfg.hidden, cfg.latent,
                                                 cfg.exp_passes, cfg.batch_size, cfg.match_priors),
                                                lambda: expand(net, buf, n_active, cfg, weight, gen, noise))
            flops["expansion"] += f
            expansions.append({"step": gstep, "buffer": len(buf), "copied_from": best, "flops": f})
            n_active, last_expansion = new + 1, gstep
            buffer, buffered = [], 0
    # readout: the component each training example is assigned to, per label (labels used only here)
    assigned, f = ctx.flops.measured(("curl-u-claims", len(x), n_active, min(cfg.top_k, n_active), cap, dim,
                                cfg.hidden, cfg.latent, cfg.eval_batch_size),
                          lambda: claims(net, x, n_active, cfg.top_k, cfg.eval_batch_size))
    flops["readout"] += f
    assigned = assigned.cpu()
    readout = {s: [v.clone() for v in r] for s, r in state["readout"].items()}
    if space not in readout:
        readout[space] = [torch.zeros(cap, task.num_classes), torch.zeros(cap)]
    onehot = labels.float() if multi else F.one_hot(labels.long(), task.num_classes).float()
    readout[space][0].index_add_(0, assigned, onehot)
    readout[space][1].index_add_(0, assigned, torch.ones(len(assigned)))
    if cfg.match_priors:  # [deviation] closed-form p(z|k), hard assignments: real claims + snapshot samples
        xs, ys = [x], [assigned.to(device)]
        old = (snap_counts > 0).nonzero().flatten().to(device) if replay else torch.zeros(0, dtype=torch.long)
        if replay and cfg.match_samples > 0 and len(old):
            comp = old.repeat_interleave(cfg.match_samples)
            with torch.no_grad():
                xg, f = ctx.flops.measured(("curl-generate", len(comp), cap, dim, cfg.hidden, cfg.latent),
                                           lambda: snapshot.generate(comp, noise))
            flops["priors"] += f
            xs.append(xg)
            ys.append(comp)
        xm, ym = torch.cat(xs), torch.cat(ys)
        _, f = ctx.flops.measured(("curl-match", len(xm), cap, dim, cfg.hidden, cfg.latent),
                                  lambda: net.match_priors(xm, ym, torch.arange(n_active, device=device)))
        flops["priors"] += f
    params = {n: v.detach().cpu().clone() for n, v in net.state_dict().items()}
    new_state = {"mode": "unsupervised", "n_active": n_active, "counts": counts.cpu(), "params": params,
                 "feature_dim": dim, "step": step0 + steps, "last_expansion": last_expansion,
                 "elbo_stats": [mean, var, seen], "readout": readout,
                 "expansions": int(state["expansions"]) + len(expansions), "standardiser": standardiser}
    info = {"components": n_active, "expansions": len(expansions), "expansion_log": expansions,
            "real_steps": real_steps, "generated_steps": gen_steps, "poor_samples": poor_seen,
            "elbo_threshold": mean - cfg.exp_thresh_sd * math.sqrt(var),
            **{f"flops_{k}": v for k, v in flops.items()}}
    usage = ResourceUsage(flops_train=sum(flops.values()), info=info, **held_parameters(cfg, ctx.seed, net, snapshot))
    return new_state, usage


def predict(cfg: CurlConfig, space: str, event, state, ctx):
    """Posterior over the components (top-k capped), then the label readout of the task's label space."""
    task = event.task
    if space not in state["readout"]:
        raise RuntimeError(f"curl: task {task.key!r} was never trained")
    label_counts, n_claims = state["readout"][space]
    n_active = int(state["n_active"])
    candidates = (n_claims[:n_active] > 0).nonzero().flatten()
    kind = task_kind(task)
    if kind.multi_label:  # per-label frequency among the examples a component claims
        table = label_counts / n_claims.clamp_min(1)[:, None]
    else:  # the majority label of the examples it claims
        table = F.one_hot(label_counts.argmax(1), task.num_classes).float()
    device = ctx.device
    table, candidates = table.to(device), candidates.to(device)
    net = CurlNet(state["feature_dim"], cfg.hidden, cfg.latent, cfg.max_components)
    net.load_state_dict(state["params"])
    net.to(device).eval()
    x, _, total, _ = curl_features(cfg, ctx, task.key, event.split, state.get("standardiser", {}), STATS_KEY)
    k = min(cfg.top_k, len(candidates))
    all_scores = []
    with torch.no_grad():
        for start in range(0, len(x), cfg.eval_batch_size):
            xb = x[start:start + cfg.eval_batch_size]

            def score_fn(xb=xb):
                top, post = component_posterior(net, xb, net.encoder(xb), candidates, cfg.top_k)
                return torch.einsum("bk,bkc->bc", post, table[top])

            scores, f = ctx.flops.measured(("curl-u-predict", len(xb), k, len(candidates), cfg.max_components,
                                            x.shape[1], cfg.hidden, cfg.latent, task.num_classes), score_fn)
            total += f
            all_scores.append(scores)
    scores = torch.cat(all_scores) if all_scores else torch.zeros((0, task.num_classes))
    return kind.predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=float(total),
                                                                        **held_parameters(cfg, ctx.seed, net))
