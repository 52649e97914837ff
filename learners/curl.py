"""``curl``: CURL (Rao et al., NeurIPS 2019) on frozen features, with mixture generative replay.

Two modes. ``mode="supervised"`` (the default; ``train_sup.py`` of ``deepmind-research/curl``): one
mixture component per class, trained at the true label with -log p(x|z_y) + KL(q(z|x,y) || p(z|y))
+ CE(q(y|x), y); a shared encoder h(x), a cluster head q(y|x), one Gaussian head q(z|x,y) and one
prior p(z|y) per component, one shared decoder p(x|z). ``mode="unsupervised"`` (``train_main.py``):
no label in the objective; the ELBO marginalises y over the active components and dynamic expansion
adds a component when enough real samples fall below an ELBO threshold; a label readout (the labels
of the training examples each component claims) turns components into class scores. Both modes use
mixture generative replay (SMGR): the model is frozen at the start of a task and every
``gen_every_n``-th batch is generated from it (components drawn by their usage on real data, trained
at the generating component; generation is charged as train FLOPs).

Deviations ([deviation]; each with its reason on the page named at the end): frozen random-convnet
features (``learners/_frozen_features.py``) instead of pixels, with a Gaussian p(x|z) of learned
diagonal variance; the generative term weighted by ``elbo_weight`` (default 1/D); prediction by the
component posterior over the ``top_k`` components with the highest cluster logit
(``predict_with="cluster"``: the paper's q(y|x)); components keyed by (task, class), or by (number
of classes, class) with ``shared_label_space``; multi-label tasks: one component per label,
per-label BCE, sigmoid scores; a closed-form ELBO-optimal prior update at the end of each train
event (``match_priors``); Adam lr 5e-3 (paper 1e-3 over 100k steps). Unsupervised mode: the ELBO
expectation capped at ``top_k`` components, a relative ELBO threshold (running mean -
``exp_thresh_sd`` running sd), fixed feature standardisation (``standardize``), the label readout.
No within-event checkpoints.

Code: this module (supervised mode), ``_curl_unsupervised.py``, ``_curl_core.py`` (shared).

Measured numbers and the full notes: docs/learners/curl.md.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.learners import _curl_unsupervised as unsupervised
from nevis_bench.learners._curl_core import CurlConfig, CurlNet, adam, net_from_state
from nevis_bench.learners._frozen_features import counted, encode_split, scores_as_predictions
from nevis_bench.learner_kit.models import parameter_count
from nevis_bench.protocol import MULTI_LABEL, ResourceUsage
from nevis_bench.registry import LEARNERS


class CurlLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: CurlConfig):
        self.config = config

    def init(self):
        if self.config.mode == "unsupervised":
            return unsupervised.initial_state()
        return {"components": [], "counts": torch.zeros(0), "params": None, "feature_dim": 0}

    def _space(self, task) -> str:
        return f"shared:{task.num_classes}" if self.config.shared_label_space else f"task:{task.key}"

    def train(self, event, state, ctx):
        if self.config.mode == "unsupervised":
            return unsupervised.train(self.config, self._space(event.task), event, state, ctx)
        cfg, task = self.config, event.task
        multi = task.kind == MULTI_LABEL
        split = ctx.data.split(task.key, event.train_split)
        x, labels, encode_flops = encode_split(split, ctx, cfg.encoder, cfg.encoder_seed, cfg.input_size)
        dim = x.shape[1]
        space = self._space(task)
        components = [list(c) for c in state["components"]]
        lookup = {(s, int(c)): i for i, (s, c) in enumerate(components)}
        present = (labels.sum(0) > 0).nonzero().flatten().tolist() if multi else sorted(set(labels.tolist()))
        for c in present:
            if (space, int(c)) not in lookup:
                lookup[(space, int(c))] = len(components)
                components.append([space, int(c)])
        k_old, k = len(state["components"]), len(components)
        net = net_from_state(state["params"], dim, cfg, k, ctx, task.key)
        old_counts = state["counts"][:k_old].clone()
        replay = cfg.replay and k_old > 0 and float(old_counts.sum()) > 0
        snapshot = copy.deepcopy(net).requires_grad_(False) if replay else None
        # the task's classes -> component ids (class index -> component, -1 when absent)
        class_to_comp = torch.full((task.num_classes,), -1, dtype=torch.long)
        for c in range(task.num_classes):
            class_to_comp[c] = lookup.get((space, c), -1)
        task_comps = torch.tensor([lookup[(space, int(c))] for c in present], dtype=torch.long)
        weight = cfg.elbo_weight or 1.0 / dim
        optimizer = adam(net.parameters(), cfg.learning_rate)
        gen = torch.Generator().manual_seed(ctx.rng_seed("curl-steps"))
        batch = min(cfg.batch_size, len(x))
        flops = float(encode_flops)
        real_steps = gen_steps = 0
        for step in range(cfg.steps):
            generated = replay and cfg.gen_every_n > 0 and step % cfg.gen_every_n == cfg.gen_every_n - 1
            if generated:
                comp = torch.multinomial(old_counts, batch, True, generator=gen)
                with torch.no_grad():
                    xb, gflops = counted(ctx, ("curl-generate", batch, k_old, dim, cfg.hidden, cfg.latent),
                                         lambda: snapshot.generate(comp, gen))
                flops += gflops
                mask = torch.ones(batch)
                target = ("ce", comp)
                gen_steps += 1
            else:
                idx = torch.randperm(len(x), generator=gen)[:batch]
                xb, yb = x[idx], labels[idx]
                if multi:
                    pos = yb[:, present] > 0.5 if present else torch.zeros(batch, 0, dtype=torch.bool)
                    noise = torch.rand(pos.shape, generator=gen) * pos
                    choice = noise.argmax(1) if pos.shape[1] else torch.zeros(batch, dtype=torch.long)
                    mask = pos.any(1).float() if pos.shape[1] else torch.zeros(batch)
                    comp = task_comps[choice] if len(task_comps) else torch.zeros(batch, dtype=torch.long)
                    target = ("bce", yb[:, present].float())
                else:
                    comp = class_to_comp[yb.long()]
                    mask = torch.ones(batch)
                    target = ("ce", comp)
                real_steps += 1

            def step_fn(xb=xb, comp=comp, mask=mask, target=target):
                h = net.encoder(xb)
                elbo = net.elbo(xb, h, comp, gen)
                logits = net.cluster_logits(h)
                if target[0] == "ce":
                    cluster_loss = F.cross_entropy(logits, target[1])
                else:
                    cluster_loss = F.binary_cross_entropy_with_logits(logits[:, task_comps], target[1])
                loss = -(weight * elbo * mask).sum() / batch + cluster_loss
                optimizer.zero_grad()
                loss.backward()
                return loss

            _, step_flops = counted(ctx, ("curl-step", target[0], batch, k, dim, cfg.hidden, cfg.latent,
                                          len(task_comps)), step_fn)
            optimizer.step()
            flops += step_flops
        if cfg.match_priors:
            with torch.no_grad():
                # the task's components: their real data (the whole train split)
                if multi:
                    pos = labels[:, present] > 0.5 if present else torch.zeros(len(x), 0, dtype=torch.bool)
                    noise = torch.rand(pos.shape, generator=gen) * pos
                    comp_all = task_comps[noise.argmax(1)] if len(task_comps) else torch.zeros(len(x), dtype=torch.long)
                    keep = pos.any(1) if pos.shape[1] else torch.zeros(len(x), dtype=torch.bool)
                    real = (x[keep], comp_all[keep])
                else:
                    real = (x, class_to_comp[labels.long()])
                _, f = counted(ctx, ("curl-match", len(real[0]), k, dim, cfg.hidden, cfg.latent),
                               lambda: net.match_priors(real[0], real[1], task_comps))
                flops += f
                current = set(task_comps.tolist())
                earlier = torch.tensor([i for i in range(k_old) if i not in current], dtype=torch.long)
                if replay and cfg.match_samples > 0 and len(earlier):  # earlier components: snapshot samples
                    old = earlier.repeat_interleave(cfg.match_samples)
                    xg, f = counted(ctx, ("curl-generate", len(old), k_old, dim, cfg.hidden, cfg.latent),
                                    lambda: snapshot.generate(old, gen))
                    flops += f
                    _, f = counted(ctx, ("curl-match", len(old), k, dim, cfg.hidden, cfg.latent),
                                   lambda: net.match_priors(xg, old, earlier))
                    flops += f
        counts = torch.cat([state["counts"], torch.zeros(k - k_old)])
        for c in present:
            counts[lookup[(space, int(c))]] += float(labels[:, c].sum()) if multi else float((labels == c).sum())
        params = {n: v.detach().clone() for n, v in net.state_dict().items()}
        peak = parameter_count(net) + (parameter_count(snapshot) if snapshot is not None else 0)
        usage = ResourceUsage(flops_train=flops, peak_parameter_count=peak, peak_parameter_bytes=4 * peak,
                              info={"components": k, "real_steps": real_steps, "generated_steps": gen_steps})
        return {"components": components, "counts": counts, "params": params, "feature_dim": dim}, usage

    def _net(self, state) -> CurlNet:
        net = CurlNet(state["feature_dim"], self.config.hidden, self.config.latent, len(state["components"]))
        net.load_state_dict(state["params"])
        return net.eval()

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        if state["params"] is None:
            raise RuntimeError("curl: predict before any training")
        if cfg.mode == "unsupervised":
            return unsupervised.predict(cfg, self._space(task), event, state, ctx)
        space = self._space(task)
        cand = [(i, c) for i, (s, c) in enumerate(state["components"]) if s == space and c < task.num_classes]
        if not cand:
            raise RuntimeError(f"curl: task {task.key!r} was never trained")
        net = self._net(state)
        split = ctx.data.split(task.key, event.split)
        x, _, flops = encode_split(split, ctx, cfg.encoder, cfg.encoder_seed, cfg.input_size, cfg.eval_batch_size)
        comp_ids = torch.tensor([i for i, _ in cand])
        class_ids = torch.tensor([c for _, c in cand])
        k = min(cfg.top_k, len(cand))
        multi = task.kind == MULTI_LABEL
        all_scores = []
        total = float(flops)
        with torch.no_grad():
            for start in range(0, len(x), cfg.eval_batch_size):
                xb = x[start:start + cfg.eval_batch_size]
                n = len(xb)

                def score_fn(xb=xb, n=n):
                    h = net.encoder(xb)
                    logits = net.cluster_logits(h)[:, comp_ids]
                    out = torch.zeros(n, task.num_classes)
                    if multi:
                        out[:, class_ids] = torch.sigmoid(logits)
                    elif cfg.predict_with == "cluster":
                        out[:, class_ids] = torch.softmax(logits, 1)
                    else:
                        top = logits.topk(k, dim=1).indices  # cheap score: the cluster logit
                        elbo = net.elbo(xb, h, comp_ids[top])  # (n, k)
                        out.scatter_(1, class_ids[top], torch.softmax(elbo, 1))
                    return out

                scores, f = counted(ctx, ("curl-predict", multi, cfg.predict_with, n, k, len(cand),
                                          len(state["components"]), x.shape[1], cfg.hidden, cfg.latent), score_fn)
                total += f
                all_scores.append(scores)
        scores = torch.cat(all_scores).numpy() if all_scores else np.zeros((0, task.num_classes), np.float32)

        peak = parameter_count(net)
        return scores_as_predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=total, peak_parameter_count=peak, peak_parameter_bytes=4 * peak)


@LEARNERS.register("curl", CurlConfig, test_overrides={"steps": 6, "batch_size": 16, "hidden": 32, "latent": 8})
def make_curl(config: CurlConfig) -> CurlLearner:
    """Supervised CURL on frozen features: class components, Gaussian latent heads, mixture generative replay."""
    return CurlLearner(config)
