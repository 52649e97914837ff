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

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.learners._curl_core import CurlConfig, CurlNet, adam, claims, component_posterior, expand, marginal_elbo
from nevis_bench.learners._frozen_features import counted, encode_split, scores_as_predictions
from nevis_bench.learner_kit.models import parameter_count
from nevis_bench.protocol import MULTI_LABEL, ResourceUsage


def initial_state() -> dict:
    """The learner state before the first event."""
    return {"mode": "unsupervised", "n_active": 0, "counts": torch.zeros(0), "params": None,
            "feature_dim": 0, "step": 0, "last_expansion": 0, "elbo_stats": [0.0, 0.0, 0],
            "readout": {}, "expansions": 0, "feature_norm": None}


def train(cfg: CurlConfig, space: str, event, state, ctx):
    """One train event of the unsupervised mode (see docs/learners/curl.md)."""
    task = event.task
    multi = task.kind == MULTI_LABEL
    split = ctx.data.split(task.key, event.train_split)
    x, labels, encode_flops = encode_split(split, ctx, cfg.encoder, cfg.encoder_seed, cfg.input_size)
    dim, cap = x.shape[1], cfg.max_components
    norm = state.get("feature_norm")
    if norm is None and cfg.standardize:  # [deviation] fixed centring and scalar scaling (first train event)
        norm = [x.mean(0), x.std(0).mean().clamp_min(1e-6).expand(x.shape[1]).clone()]
    if norm is not None:
        x = (x - norm[0]) / norm[1]
    with ctx.seeded("curl-init", "unsupervised"):
        net = CurlNet(dim, cfg.hidden, cfg.latent, cap)
    if state["params"] is not None:
        net.load_state_dict(state["params"])
    n_active = max(1, int(state["n_active"]))
    counts = state["counts"].clone() if len(state["counts"]) else torch.zeros(cap)
    replay = cfg.replay and float(counts.sum()) > 0
    snapshot = copy.deepcopy(net).requires_grad_(False) if replay else None
    snap_active = n_active
    weight = cfg.elbo_weight or 1.0 / dim
    optimizer = adam(net.parameters(), cfg.learning_rate)
    gen = torch.Generator().manual_seed(ctx.rng_seed("curl-steps"))
    batch = min(cfg.batch_size, len(x))
    mean, var, seen = float(state["elbo_stats"][0]), float(state["elbo_stats"][1]), int(state["elbo_stats"][2])
    step0, last_expansion = int(state["step"]), int(state["last_expansion"])
    buffer: list[torch.Tensor] = []
    buffered = 0
    flops = {"encode": float(encode_flops), "steps": 0.0, "replay": 0.0, "expansion": 0.0, "readout": 0.0,
             "priors": 0.0}
    expansions, real_steps, gen_steps, poor_seen = [], 0, 0, 0
    for step in range(cfg.steps):
        gstep = step0 + step
        generated = replay and cfg.gen_every_n > 0 and step % cfg.gen_every_n == cfg.gen_every_n - 1
        if generated:  # SMGR: a batch of the snapshot, trained at its generating component
            comp = torch.multinomial(counts[:snap_active], batch, True, generator=gen)
            with torch.no_grad():
                xb, f = counted(ctx, ("curl-generate", batch, cap, dim, cfg.hidden, cfg.latent),
                                lambda: snapshot.generate(comp, gen))
            flops["replay"] += f

            def step_fn(xb=xb, comp=comp, n_active=n_active):
                h = net.encoder(xb)
                loss = weight * (-net.elbo(xb, h, comp, gen).mean()
                                 + F.cross_entropy(net.cluster_logits(h)[:, :n_active], comp))
                optimizer.zero_grad()
                loss.backward()
                return None

            _, f = counted(ctx, ("curl-u-replay-step", batch, n_active, cap, dim, cfg.hidden, cfg.latent), step_fn)
            optimizer.step()
            flops["steps"] += f
            gen_steps += 1
            continue
        xb = x[torch.randperm(len(x), generator=gen)[:batch]]

        def step_fn(xb=xb, n_active=n_active):
            h = net.encoder(xb)
            elbo, logits = marginal_elbo(net, xb, h, n_active, cfg.top_k, gen)
            loss = -weight * elbo.mean()
            optimizer.zero_grad()
            loss.backward()
            return elbo.detach(), logits.detach().argmax(1)

        (elbo, assigned), f = counted(ctx, ("curl-u-step", batch, n_active, min(cfg.top_k, n_active), cap, dim,
                                            cfg.hidden, cfg.latent), step_fn)
        optimizer.step()
        flops["steps"] += f
        real_steps += 1
        counts.index_add_(0, assigned, torch.ones(len(assigned)))  # usage on real data (replay weights)
        # dynamic expansion: buffer the poorly explained samples (ELBO below the running threshold)
        started = seen > 0 and gstep >= cfg.exp_burn_in
        poor = elbo < mean - cfg.exp_thresh_sd * math.sqrt(var) if started else torch.zeros(len(elbo), dtype=torch.bool)
        eligible = cfg.expansion and started and gstep - last_expansion >= cfg.exp_wait_steps and n_active < cap
        if eligible and poor.any():
            buffer.append(xb[poor])
            buffered += int(poor.sum())
        poor_seen += int(poor.sum())
        # the running statistics follow the explained samples only (else new data would drag them down)
        explained = elbo[~poor]
        if len(explained) > 1:
            bm, bv = float(explained.mean()), float(explained.var(unbiased=False))
            if seen == 0:
                mean, var = bm, bv
            else:
                d = cfg.exp_stats_decay
                mean, var = d * mean + (1 - d) * bm, d * var + (1 - d) * bv
            seen += 1
        if eligible and buffered >= cfg.exp_buffer_size:
            buf = torch.cat(buffer)
            (best, new), f = counted(ctx, ("curl-expand", len(buf), n_active, cap, dim, cfg.hidden, cfg.latent,
                                           cfg.exp_passes, cfg.batch_size, cfg.match_priors),
                                     lambda: expand(net, buf, n_active, cfg, weight, gen))
            flops["expansion"] += f
            expansions.append({"step": gstep, "buffer": len(buf), "copied_from": best, "flops": f})
            n_active, last_expansion = new + 1, gstep
            buffer, buffered = [], 0
    # readout: the component each training example is assigned to, per label (labels used only here)
    assigned, f = counted(ctx, ("curl-u-claims", len(x), n_active, min(cfg.top_k, n_active), cap, dim,
                                cfg.hidden, cfg.latent, cfg.eval_batch_size),
                          lambda: claims(net, x, n_active, cfg.top_k, cfg.eval_batch_size))
    flops["readout"] += f
    readout = {s: [v.clone() for v in r] for s, r in state["readout"].items()}
    if space not in readout:
        readout[space] = [torch.zeros(cap, task.num_classes), torch.zeros(cap)]
    onehot = labels.float() if multi else F.one_hot(labels.long(), task.num_classes).float()
    readout[space][0].index_add_(0, assigned, onehot)
    readout[space][1].index_add_(0, assigned, torch.ones(len(assigned)))
    if cfg.match_priors:  # [deviation] closed-form p(z|k), hard assignments: real claims + snapshot samples
        xs, ys = [x], [assigned]
        old = (counts[:snap_active] > 0).nonzero().flatten() if replay else torch.zeros(0, dtype=torch.long)
        if replay and cfg.match_samples > 0 and len(old):
            comp = old.repeat_interleave(cfg.match_samples)
            with torch.no_grad():
                xg, f = counted(ctx, ("curl-generate", len(comp), cap, dim, cfg.hidden, cfg.latent),
                                lambda: snapshot.generate(comp, gen))
            flops["priors"] += f
            xs.append(xg)
            ys.append(comp)
        xm, ym = torch.cat(xs), torch.cat(ys)
        _, f = counted(ctx, ("curl-match", len(xm), cap, dim, cfg.hidden, cfg.latent),
                       lambda: net.match_priors(xm, ym, torch.arange(n_active)))
        flops["priors"] += f
    params = {n: v.detach().clone() for n, v in net.state_dict().items()}
    peak = parameter_count(net) + (parameter_count(snapshot) if snapshot is not None else 0)
    new_state = {"mode": "unsupervised", "n_active": n_active, "counts": counts, "params": params,
                 "feature_dim": dim, "step": step0 + cfg.steps, "last_expansion": last_expansion,
                 "elbo_stats": [mean, var, seen], "readout": readout,
                 "expansions": int(state["expansions"]) + len(expansions), "feature_norm": norm}
    info = {"components": n_active, "expansions": len(expansions), "expansion_log": expansions,
            "real_steps": real_steps, "generated_steps": gen_steps, "poor_samples": poor_seen,
            "elbo_threshold": mean - cfg.exp_thresh_sd * math.sqrt(var),
            **{f"flops_{k}": v for k, v in flops.items()}}
    usage = ResourceUsage(flops_train=sum(flops.values()), peak_parameter_count=peak,
                          peak_parameter_bytes=4 * peak, info=info)
    return new_state, usage


def predict(cfg: CurlConfig, space: str, event, state, ctx):
    """Posterior over the components (top-k capped), then the label readout of the task's label space."""
    task = event.task
    if space not in state["readout"]:
        raise RuntimeError(f"curl: task {task.key!r} was never trained")
    label_counts, n_claims = state["readout"][space]
    n_active = int(state["n_active"])
    candidates = (n_claims[:n_active] > 0).nonzero().flatten()
    if task.kind == MULTI_LABEL:  # per-label frequency among the examples a component claims
        table = label_counts / n_claims.clamp_min(1)[:, None]
    else:  # the majority label of the examples it claims
        table = F.one_hot(label_counts.argmax(1), task.num_classes).float()
    net = CurlNet(state["feature_dim"], cfg.hidden, cfg.latent, cfg.max_components)
    net.load_state_dict(state["params"])
    net.eval()
    split = ctx.data.split(task.key, event.split)
    x, _, total = encode_split(split, ctx, cfg.encoder, cfg.encoder_seed, cfg.input_size, cfg.eval_batch_size)
    if state.get("feature_norm") is not None:
        x = (x - state["feature_norm"][0]) / state["feature_norm"][1]
    k = min(cfg.top_k, len(candidates))
    all_scores = []
    with torch.no_grad():
        for start in range(0, len(x), cfg.eval_batch_size):
            xb = x[start:start + cfg.eval_batch_size]

            def score_fn(xb=xb):
                top, post = component_posterior(net, xb, net.encoder(xb), candidates, cfg.top_k)
                return torch.einsum("bk,bkc->bc", post, table[top])

            scores, f = counted(ctx, ("curl-u-predict", len(xb), k, len(candidates), cfg.max_components,
                                      x.shape[1], cfg.hidden, cfg.latent, task.num_classes), score_fn)
            total += f
            all_scores.append(scores)
    scores = torch.cat(all_scores).numpy() if all_scores else np.zeros((0, task.num_classes), np.float32)

    peak = parameter_count(net)
    return scores_as_predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=float(total), peak_parameter_count=peak,
                                    peak_parameter_bytes=4 * peak)
