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

Deviations ([deviation]; each with its reason on the page named at the end): frozen-encoder features
(the one path, ``learner_kit/features.py``: any encoder, default a random ``small_convnet`` seeded by the
run seed) instead of pixels, standardised with train statistics kept in the state (per task key; the
first task's for a shared label space and the unsupervised mode), with a Gaussian p(x|z) of learned
diagonal variance; steps scaled to the task (``epochs`` passes over its real data within
[``min_steps``, ``max_steps``]) with a cosine learning-rate decay; the generative term weighted by ``elbo_weight`` (default 1/D); prediction by the
component posterior over the ``top_k`` components with the highest cluster logit
(``predict_with="cluster"``: the paper's q(y|x)); components keyed by (task, class), or by (number
of classes, class) with ``shared_label_space``; multi-label tasks: one component per label,
per-label BCE, sigmoid scores; a closed-form ELBO-optimal prior update at the end of each train
event (``match_priors``); Adam lr 5e-3 (paper 1e-3 over 100k steps). Unsupervised mode: the ELBO
expectation capped at ``top_k`` components, a relative ELBO threshold (running mean -
``exp_thresh_sd`` running sd), the label readout. No within-event checkpoints. Everything runs on
``ctx.device``; a supervised step reads nothing back, an unsupervised step reads one vector (its
expansion statistics).

Code: this module (supervised mode), ``_curl_unsupervised.py``, ``_curl_core.py`` (shared).

Measured numbers and the full notes: docs/learners/curl.md.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from nevis_bench.learners import _curl_unsupervised as unsupervised
from nevis_bench.learners._curl_core import (CurlConfig, CurlNet, adam, curl_features, learning_rate_at, net_from_state,
                                             task_steps)
from nevis_bench.learner_kit.features import held_parameters
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.protocol import ResourceUsage
from nevis_bench.registry import LEARNERS


class CurlLearner:
    checkpoints_within_event = False  # its loops run on frozen features; no within-event checkpoints

    def __init__(self, config: CurlConfig):
        self.config = config

    def init(self):
        if self.config.mode == "unsupervised":
            return unsupervised.initial_state()
        return {"components": [], "counts": torch.zeros(0), "params": None, "feature_dim": 0, "standardiser": {},
                "task_classes": {}}

    def _space(self, task) -> str:
        """Components are keyed by (space, class): the task's shared label space when the stream names
        one (class-incremental), every task of the same class count with ``shared_label_space``, else
        the task key."""
        if task.label_space:
            return f"space:{task.label_space}"
        return f"shared:{task.num_classes}" if self.config.shared_label_space else f"task:{task.key}"

    def _stats_key(self, task) -> str:
        """Standardisation statistics: per task key, or per shared label space (its first task's)."""
        space = self._space(task)
        return task.key if space.startswith("task:") else space

    def train(self, event, state, ctx):
        if self.config.mode == "unsupervised":
            return unsupervised.train(self.config, self._space(event.task), event, state, ctx)
        cfg, task = self.config, event.task
        kind = task_kind(task)
        multi, device = kind.multi_label, ctx.device
        x, labels, encode_flops, standardiser = curl_features(cfg, ctx, task.key, event.train_split,
                                                              state.get("standardiser", {}), self._stats_key(task))
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
        task_comps_dev = task_comps.to(device)
        weight = cfg.elbo_weight or 1.0 / dim
        optimizer = adam(net.parameters(), cfg.learning_rate)
        gen = torch.Generator().manual_seed(ctx.rng_seed("curl-steps"))  # host: batches, components
        noise = torch.Generator(device=device).manual_seed(ctx.rng_seed("curl-noise"))  # device: z samples
        batch = min(cfg.batch_size, len(x))
        flops = float(encode_flops)
        real_steps = gen_steps = 0
        steps = task_steps(cfg, len(x))
        ones = torch.ones(batch, device=device)
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(cfg, step, steps)
            generated = replay and cfg.gen_every_n > 0 and step % cfg.gen_every_n == cfg.gen_every_n - 1
            if generated:
                comp = torch.multinomial(old_counts, batch, True, generator=gen).to(device)
                with torch.no_grad():
                    xb, gflops = ctx.flops.measured(("curl-generate", batch, k_old, dim, cfg.hidden, cfg.latent),
                                                    lambda: snapshot.generate(comp, noise))
                flops += gflops
                mask = ones
                target = ("ce", comp)
                gen_steps += 1
            else:
                idx = torch.randperm(len(x), generator=gen)[:batch]
                xb, yb = x[idx.to(device)], labels[idx]
                if multi:
                    pos = yb[:, present] > 0.5 if present else torch.zeros(batch, 0, dtype=torch.bool)
                    pick = torch.rand(pos.shape, generator=gen) * pos
                    choice = pick.argmax(1) if pos.shape[1] else torch.zeros(batch, dtype=torch.long)
                    mask = (pos.any(1).float() if pos.shape[1] else torch.zeros(batch)).to(device)
                    comp = (task_comps[choice] if len(task_comps) else torch.zeros(batch, dtype=torch.long)).to(device)
                    target = ("bce", yb[:, present].float().to(device))
                else:
                    comp = class_to_comp[yb.long()].to(device)
                    mask = ones
                    target = ("ce", comp)
                real_steps += 1

            def step_fn(xb=xb, comp=comp, mask=mask, target=target):
                h = net.encoder(xb)
                elbo = net.elbo(xb, h, comp, noise)
                logits = net.cluster_logits(h)
                if target[0] == "ce":
                    cluster_loss = F.cross_entropy(logits, target[1])
                else:
                    cluster_loss = F.binary_cross_entropy_with_logits(logits[:, task_comps_dev], target[1])
                loss = -(weight * elbo * mask).sum() / batch + cluster_loss
                optimizer.zero_grad()
                loss.backward()
                return loss.detach()

            _, step_flops = ctx.flops.measured(("curl-step", target[0], batch, k, dim, cfg.hidden, cfg.latent,
                                                len(task_comps)), step_fn)
            optimizer.step()
            flops += step_flops
        if cfg.match_priors:
            with torch.no_grad():
                # the task's components: their real data (the whole train split)
                if multi:
                    pos = labels[:, present] > 0.5 if present else torch.zeros(len(x), 0, dtype=torch.bool)
                    pick = torch.rand(pos.shape, generator=gen) * pos
                    comp_all = task_comps[pick.argmax(1)] if len(task_comps) else torch.zeros(len(x), dtype=torch.long)
                    keep = pos.any(1) if pos.shape[1] else torch.zeros(len(x), dtype=torch.bool)
                    real = (x[keep.to(device)], comp_all[keep].to(device))
                else:
                    real = (x, class_to_comp[labels.long()].to(device))
                _, f = ctx.flops.measured(("curl-match", len(real[0]), k, dim, cfg.hidden, cfg.latent),
                                          lambda: net.match_priors(real[0], real[1], task_comps_dev))
                flops += f
                current = set(task_comps.tolist())
                earlier = torch.tensor([i for i in range(k_old) if i not in current], dtype=torch.long, device=device)
                if replay and cfg.match_samples > 0 and len(earlier):  # earlier components: snapshot samples
                    old = earlier.repeat_interleave(cfg.match_samples)
                    xg, f = ctx.flops.measured(("curl-generate", len(old), k_old, dim, cfg.hidden, cfg.latent),
                                               lambda: snapshot.generate(old, noise))
                    flops += f
                    _, f = ctx.flops.measured(("curl-match", len(old), k, dim, cfg.hidden, cfg.latent),
                                              lambda: net.match_priors(xg, old, earlier))
                    flops += f
        counts = torch.cat([state["counts"], torch.zeros(k - k_old)])
        per_class = labels.sum(0) if multi else torch.bincount(labels.long(), minlength=task.num_classes)
        counts.index_add_(0, task_comps, per_class[torch.tensor(present, dtype=torch.long)].float())
        params = {n: v.detach().cpu().clone() for n, v in net.state_dict().items()}
        usage = held_parameters(cfg, ctx.seed, net, snapshot)
        info = {"components": k, "steps": steps, "real_steps": real_steps, "generated_steps": gen_steps}
        new_state = {"components": components, "counts": counts, "params": params, "feature_dim": dim,
                     "standardiser": standardiser,
                     "task_classes": {**state.get("task_classes", {}), task.key: [int(c) for c in present]}}
        return new_state, ResourceUsage(flops_train=flops, info=info, **usage)

    def _net(self, state, device) -> CurlNet:
        net = CurlNet(state["feature_dim"], self.config.hidden, self.config.latent, len(state["components"]))
        net.load_state_dict(state["params"])
        return net.to(device).eval()

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        if state["params"] is None:
            raise RuntimeError("curl: predict before any training")
        if cfg.mode == "unsupervised":
            return unsupervised.predict(cfg, self._space(task), event, state, ctx)
        space, device = self._space(task), ctx.device
        cand = [(i, c) for i, (s, c) in enumerate(state["components"]) if s == space and c < task.num_classes]
        if cfg.scores == "task" and task.key in state.get("task_classes", {}):
            own = set(state["task_classes"][task.key])
            cand = [(i, c) for i, c in cand if c in own]
        if not cand:
            raise RuntimeError(f"curl: task {task.key!r} was never trained")
        net = self._net(state, device)
        kind = task_kind(task)
        x, _, flops, _ = curl_features(cfg, ctx, task.key, event.split, state.get("standardiser", {}),
                                       self._stats_key(task))
        comp_ids = torch.tensor([i for i, _ in cand], device=device)
        class_ids = torch.tensor([c for _, c in cand], device=device)
        k = min(cfg.top_k, len(cand))
        all_scores = []
        total = float(flops)
        with torch.no_grad():
            for start in range(0, len(x), cfg.eval_batch_size):
                xb = x[start:start + cfg.eval_batch_size]
                n = len(xb)

                def score_fn(xb=xb, n=n):
                    h = net.encoder(xb)
                    logits = net.cluster_logits(h)[:, comp_ids]
                    out = torch.zeros(n, task.num_classes, device=device)
                    if kind.multi_label or cfg.predict_with == "cluster":
                        out[:, class_ids] = kind.probabilities(logits)
                    else:
                        top = logits.topk(k, dim=1).indices  # cheap score: the cluster logit
                        elbo = net.elbo(xb, h, comp_ids[top])  # (n, k)
                        out.scatter_(1, class_ids[top], torch.softmax(elbo, 1))
                    return out

                scores, f = ctx.flops.measured(("curl-predict", kind.multi_label, cfg.predict_with, n, k, len(cand),
                                                len(state["components"]), x.shape[1], cfg.hidden, cfg.latent), score_fn)
                total += f
                all_scores.append(scores)
        scores = torch.cat(all_scores) if all_scores else torch.zeros((0, task.num_classes))
        return kind.predictions(scores, cfg.eval_batch_size), ResourceUsage(flops_inference=total,
                                                                            **held_parameters(cfg, ctx.seed, net))


@LEARNERS.register("curl", CurlConfig, test_overrides={"steps": 6, "batch_size": 16, "hidden": 32, "latent": 8})
def make_curl(config: CurlConfig) -> CurlLearner:
    """Supervised CURL on frozen features: class components, Gaussian latent heads, mixture generative replay."""
    return CurlLearner(config)
