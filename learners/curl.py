"""``curl``: supervised CURL (Rao et al., NeurIPS 2019) on frozen features, with mixture generative replay.

What follows the paper / ``deepmind-research/curl`` (``model.py``, ``training.py``, ``train_sup.py``):

* the generative model: components ``y`` (here one per class), p(y) uniform over the *active*
  components, p(z|y) Gaussian with per-component mean and softplus scale (linear in one-hot y),
  one shared decoder p(x|z) (the ``single`` decoder of ``train_sup.py``);
* inference: a shared encoder h(x) (MLP), a cluster head q(y|x) (linear, softmax over the active
  components) and one linear Gaussian head q(z|x,y=k) per component;
* the supervised loss at the true label: -log p(x|z_y) + KL(q(z|x,y) || p(z|y)) + CE(q(y|x), y);
* mixture generative replay (``fixed``): at the start of a task the model is frozen (a snapshot);
  every ``gen_every_n``-th step the batch is generated from the snapshot instead of real data:
  components of earlier tasks drawn in proportion to their cumulative usage on real data, z from
  their prior p(z|y), x = the decoder mean; the generated batch is trained with the supervised loss
  (ELBO at the generating component + CE of q(y|x) to it) with the generating component as its label
  (SMGR). Generation is charged as train FLOPs.

Adaptations ([deviation]):

* frozen features instead of pixels, with a Gaussian p(x|z) with a learned diagonal (per-dimension,
  input-independent) variance, as learner_specs.md recommends; replay generates features. The frozen
  encoder is ``learners/_frozen_features.py`` (a seeded random ``small_convnet``, eval mode);
  feature extraction is charged as train FLOPs (train events) or inference FLOPs (predict events);
* the generative term is weighted by ``elbo_weight`` (default 1/D, a per-dimension average) against
  the cluster cross-entropy, so the same learning rate works for any feature size;
* prediction uses the component posterior p(y|x) ∝ p(y) exp(ELBO_y(x)) (z at the mean of q(z|x,y),
  p(y) uniform over the candidates) instead of argmax q(y|x) (``predict_with="cluster"`` gives the
  paper's q(y|x)). Evaluating the ELBO of every active component costs one decoder pass each, so
  only the ``top_k`` components with the highest cheap score (the cluster logit of q(y|x)) are
  evaluated; the others get probability 0;
* label spaces: components are keyed by (task key, class); with ``shared_label_space=True`` they are
  keyed by (number of classes, class) so tasks that share one global label space (the
  class-incremental streams) share components and prediction is task-agnostic over every class seen;
* multi-label tasks: one component per label; an example trains the component of one of its
  positive labels (drawn at random each step; none: no generative term) and the cluster head is
  trained with per-label BCE over the task's components; predictions are sigmoid(cluster logits)
  (per-label heads) since the mixture posterior assumes exactly one component per example;
* [deviation] closed-form prior update (``match_priors``, on by default): at the end of a train event
  p(z|k) of every component trained in it is set to its ELBO-optimal value given q, the moments of
  the aggregate posterior q(z|k) (mean of the means; variance = mean variance + variance of the
  means), which minimises the average KL(q(z|x,k) || p(z|k)) over the component's examples: real
  data for the task's components, ``match_samples`` samples of the snapshot for earlier components
  (with replay). It is a coordinate-ascent step on the same ELBO, not a new objective. Why: the
  paper's p(z|k) is learned by SGD over 100k steps; in a few hundred Adam steps it moves at most
  ~lr per step and lags far behind the posterior (measured after 150 steps: prior-to-posterior-mean
  distance 2-3 against a within-class spread of 0.1-0.3), so z ~ p(z|k) decodes to features of no
  particular class and replay trains the old labels on near class-agnostic samples. Charged as train
  FLOPs;
* Adam lr 5e-3 by default (paper 1e-3 over 100k steps): loops here are a few hundred steps;
* why replay did not protect the old classes on 5 tasks at 150 steps a task (final average accuracy
  0.27-0.31 with replay vs 0.30 without): the snapshot's replay samples were classified as their own
  component at 0.40 on 4 classes after task 1 (chance 0.25) and at chance (0.10) by task 5: besides
  the lagging prior, at that budget the latents are barely used (q(z|x,y) scale still ~0.85, its
  initial 1). Measured on ``synthetic-class-incremental`` (5 x 4 classes, task-agnostic over 20
  classes, hidden 64, batch 32): 150 steps 0.41 with prior matching (0.32 without); 300 steps 0.625
  (0.55 without prior matching; replay samples classified right at 0.96 after task 1, 0.85 after
  task 5) against 0.21 with replay off; 600 steps 0.705 (0.70 without prior matching) vs 0.21.
  ``tests/test_curl.py`` runs the 300-step pair. Remaining gap: real data of old classes gets a
  higher ELBO under the components trained on real data (later tasks) than under its own, whose
  heads only saw replayed samples since, so the oldest task is held worst (0.175 at 300 steps);
* the dynamic expansion of the unsupervised mode is not implemented (the supervised variant has a
  component per class, as in ``train_sup.py``); no within-event checkpoints (short loops).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.learners._frozen_features import counted, encode_split
from nevis_bench.protocol import MULTI_LABEL, Predictions, ResourceUsage
from nevis_bench.registry import LEARNERS


@dataclass
class CurlConfig:
    steps: int = 600
    batch_size: int = 64
    learning_rate: float = 5e-3  # [deviation] the paper's 1e-3 needs its 100k steps; short loops need more
    hidden: int = 128
    latent: int = 16
    replay: bool = True
    gen_every_n: int = 2  # every n-th step is a generated batch (when there are earlier components)
    elbo_weight: float = 0.0  # 0: 1 / feature_dim
    match_priors: bool = True  # [deviation] closed-form ELBO-optimal p(z|y) at the end of each train event
    match_samples: int = 32  # generated samples per earlier component for its prior update (with replay)
    top_k: int = 8  # components whose ELBO is evaluated at prediction
    predict_with: str = "elbo"  # "elbo" (component posterior) or "cluster" (q(y|x))
    shared_label_space: bool = False
    encoder: str = "small_convnet"
    encoder_seed: int = 0
    input_size: int = 32
    eval_batch_size: int = 128


_SP1 = math.log(math.e - 1.0)  # softplus(_SP1) = 1: heads and priors start at unit scale


class CurlNet(nn.Module):
    def __init__(self, dim: int, hidden: int, latent: int, components: int):
        super().__init__()
        k, h, z = components, hidden, latent
        self.encoder = nn.Sequential(nn.Linear(dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.cluster_w = nn.Parameter(torch.randn(k, h) / math.sqrt(h))
        self.cluster_b = nn.Parameter(torch.zeros(k))
        self.zmu_w = nn.Parameter(torch.randn(k, h, z) / math.sqrt(h))
        self.zmu_b = nn.Parameter(torch.zeros(k, z))
        self.zsig_w = nn.Parameter(torch.randn(k, h, z) * 0.01 / math.sqrt(h))
        self.zsig_b = nn.Parameter(torch.zeros(k, z))
        self.prior_mu = nn.Parameter(torch.randn(k, z) * 0.1)
        self.prior_sig = nn.Parameter(torch.zeros(k, z))
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, dim))
        self.dec_logsig = nn.Parameter(torch.zeros(dim))

    def cluster_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.cluster_w.t() + self.cluster_b

    def posterior(self, h: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of q(z|x, y); ``h`` (B, H), ``y`` (B,) or (B, k) -> (B, Z) or (B, k, Z)."""
        hs = h.unsqueeze(1) if y.dim() == 2 else h
        mu = torch.einsum("...h,...hz->...z", hs, self.zmu_w[y]) + self.zmu_b[y]
        sig = F.softplus(torch.einsum("...h,...hz->...z", hs, self.zsig_w[y]) + self.zsig_b[y] + _SP1) + 1e-4
        return mu, sig

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prior_mu[y], F.softplus(self.prior_sig[y] + _SP1) + 1e-4

    def elbo(self, x: torch.Tensor, h: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """ELBO of x under components y; ``x``/``h`` (B, .), ``y`` (B,) or (B, k) -> (B,) or (B, k)."""
        mu, sig = self.posterior(h, y)
        z = mu if generator is None else mu + sig * torch.randn(mu.shape, generator=generator)
        xmean = self.decoder(z)
        xs = x.unsqueeze(1) if y.dim() == 2 else x
        logsig = self.dec_logsig.clamp(-5.0, 3.0)
        loglik = (-0.5 * ((xs - xmean) * torch.exp(-logsig)) ** 2 - logsig - 0.5 * math.log(2 * math.pi)).sum(-1)
        pmu, psig = self.prior(y)
        kl = (torch.log(psig / sig) + (sig ** 2 + (mu - pmu) ** 2) / (2 * psig ** 2) - 0.5).sum(-1)
        return loglik - kl

    def generate(self, y: torch.Tensor, generator) -> torch.Tensor:
        """Replay samples of components ``y``: z ~ p(z|y), x = the decoder mean (as in the paper)."""
        pmu, psig = self.prior(y)
        return self.decoder(pmu + psig * torch.randn(pmu.shape, generator=generator))

    def match_priors(self, x: torch.Tensor, y: torch.Tensor, components: torch.Tensor, chunk: int = 1024) -> None:
        """Set p(z|k) of each of ``components`` to its ELBO-optimal value given q: the Gaussian that
        minimises the average KL(q(z|x,k) || p(z|k)) over the examples ``x`` with ``y == k``, i.e. the
        moments of the aggregate posterior (mean of mu; variance = mean of sig^2 + variance of mu).
        Components without examples are left alone."""
        k, z = self.prior_mu.shape
        n, s1, s2 = torch.zeros(k), torch.zeros(k, z), torch.zeros(k, z)
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                yb = y[start:start + chunk]
                mu, sig = self.posterior(self.encoder(x[start:start + chunk]), yb)
                n.index_add_(0, yb, torch.ones(len(yb)))
                s1.index_add_(0, yb, mu)
                s2.index_add_(0, yb, mu ** 2 + sig ** 2)
            sel = components[n[components] > 0]
            if len(sel) == 0:
                return
            m = s1[sel] / n[sel, None]
            var = (s2[sel] / n[sel, None] - m ** 2).clamp_min(1e-8)
            scale = (var.sqrt() - 1e-4).clamp_min(1e-3)
            self.prior_mu[sel] = m
            self.prior_sig[sel] = scale + torch.log(-torch.expm1(-scale)) - _SP1  # softplus^-1


def _net_from_state(params, dim: int, config: CurlConfig, components: int, ctx, tag: str) -> CurlNet:
    """A network with ``components`` components; the first rows come from ``params`` when given."""
    with ctx.seeded("curl-init", tag):
        net = CurlNet(dim, config.hidden, config.latent, components)
    if params is not None:
        fresh = net.state_dict()
        for name, value in params.items():
            if fresh[name].shape == value.shape:
                fresh[name] = value.clone()
            else:  # per-component tensor: keep the old rows, new rows stay fresh
                fresh[name][: value.shape[0]] = value
        net.load_state_dict(fresh)
    return net


def _param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class CurlLearner:
    def __init__(self, config: CurlConfig):
        self.config = config

    def init(self):
        return {"components": [], "counts": torch.zeros(0), "params": None, "feature_dim": 0}

    def _space(self, task) -> str:
        return f"shared:{task.num_classes}" if self.config.shared_label_space else f"task:{task.key}"

    def train(self, event, state, ctx):
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
        net = _net_from_state(state["params"], dim, cfg, k, ctx, task.key)
        old_counts = state["counts"][:k_old].clone()
        replay = cfg.replay and k_old > 0 and float(old_counts.sum()) > 0
        snapshot = copy.deepcopy(net).requires_grad_(False) if replay else None
        # the task's classes -> component ids (class index -> component, -1 when absent)
        class_to_comp = torch.full((task.num_classes,), -1, dtype=torch.long)
        for c in range(task.num_classes):
            class_to_comp[c] = lookup.get((space, c), -1)
        task_comps = torch.tensor([lookup[(space, int(c))] for c in present], dtype=torch.long)
        weight = cfg.elbo_weight or 1.0 / dim
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
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
        peak = _param_count(net) + (_param_count(snapshot) if snapshot is not None else 0)
        usage = ResourceUsage(flops_train=flops, peak_parameter_count=peak, peak_parameter_bytes=4 * peak,
                              info={"components": k, "real_steps": real_steps, "generated_steps": gen_steps})
        return {"components": components, "counts": counts, "params": params, "feature_dim": dim}, usage

    def _net(self, state, ctx) -> CurlNet:
        net = CurlNet(state["feature_dim"], self.config.hidden, self.config.latent, len(state["components"]))
        net.load_state_dict(state["params"])
        return net.eval()

    def predict(self, event, state, ctx):
        cfg, task = self.config, event.task
        if state["params"] is None:
            raise RuntimeError("curl: predict before any training")
        space = self._space(task)
        cand = [(i, c) for i, (s, c) in enumerate(state["components"]) if s == space and c < task.num_classes]
        if not cand:
            raise RuntimeError(f"curl: task {task.key!r} was never trained")
        net = self._net(state, ctx)
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

        def batches():
            for start in range(0, len(scores), cfg.eval_batch_size):
                idx = np.arange(start, min(start + cfg.eval_batch_size, len(scores)))
                yield Predictions(indices=idx, scores=scores[idx])

        peak = _param_count(net)
        return batches(), ResourceUsage(flops_inference=total, peak_parameter_count=peak, peak_parameter_bytes=4 * peak)


@LEARNERS.register("curl", CurlConfig, test_overrides={"steps": 6, "batch_size": 16, "hidden": 32, "latent": 8})
def make_curl(config: CurlConfig) -> CurlLearner:
    """Supervised CURL on frozen features: class components, Gaussian latent heads, mixture generative replay."""
    return CurlLearner(config)
