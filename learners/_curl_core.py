"""Shared pieces of the ``curl`` learner (not a learner itself): config, network, math of both modes.

* :class:`CurlConfig`: every option of both modes (``mode`` picks one);
* :class:`CurlNet`: shared encoder h(x), cluster head q(y|x), one linear Gaussian head q(z|x,y) and one
  prior p(z|y) per component, one shared decoder p(x|z) with a learned diagonal variance; the ELBO of
  given components, replay generation, and the closed-form prior update (``match_priors``);
* :func:`adam` (fused Adam) and :func:`net_from_state` (a network with more components than a stored one);
* the mixture math of the unsupervised mode: :func:`marginal_elbo` (y marginalised over the top-k
  active components), :func:`component_posterior`, :func:`expand` (dynamic expansion) and
  :func:`claims` (hard assignments for the label readout).

The learner is ``learners/curl.py`` (supervised mode, registration); the unsupervised mode is
``learners/_curl_unsupervised.py``; the notes are in docs/learners/curl.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.learner_kit.features import EncoderConfig, fit_standardiser, split_features, standardised


@dataclass
class CurlConfig(EncoderConfig):
    steps: int = 0  # 0: scaled to the task, epochs x train examples / batch in [min_steps, max_steps]
    epochs: float = 40.0  # [deviation] passes over a task's real data when ``steps`` is 0
    min_steps: int = 200
    max_steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 5e-3  # [deviation] the paper's 1e-3 needs its 100k steps; short loops need more
    final_learning_rate: float = 0.1  # [deviation] cosine decay to this fraction of learning_rate (1: constant)
    hidden: int = 128
    latent: int = 16
    replay: bool = True
    gen_every_n: int = 2  # every n-th step is a generated batch (when there are earlier components)
    elbo_weight: float = 0.0  # 0: 1 / feature_dim
    match_priors: bool = True  # [deviation] closed-form ELBO-optimal p(z|y) at the end of each train event
    match_samples: int = 32  # generated samples per earlier component for its prior update (with replay)
    top_k: int = 8  # components whose ELBO is evaluated at prediction
    predict_with: str = "cluster"  # "cluster" (q(y|x), the paper's classifier) or "elbo" (component posterior)
    # On a shared (class-incremental) label space: "task" scores a task's examples over the classes that
    # task trained (task-aware, as finetune_prev's per-task heads and the other learners do by default);
    # "space" over every class of the space seen so far (task-agnostic, the paper's setting).
    scores: str = "task"
    shared_label_space: bool = False
    standardise: bool = True  # [deviation] centre/scale features by train statistics (per task key; the
    #                         first task's of a shared label space / of the unsupervised mode)
    eval_batch_size: int = 128
    # --- unsupervised mode with dynamic expansion (train_main.py); ignored in the supervised mode ---
    mode: str = "supervised"  # "supervised" (train_sup.py) or "unsupervised" (train_main.py + a label readout)
    max_components: int = 64  # capacity n_y (paper 30 on MNIST); n_y_active starts at 1
    expansion: bool = True  # dynamic expansion (unsupervised mode)
    exp_thresh_sd: float = 4.0  # [deviation] ELBO threshold = running mean - exp_thresh_sd * running sd
    exp_stats_decay: float = 0.99  # EMA decay (per real batch) of the running ELBO mean and variance
    exp_buffer_size: int = 100  # poorly explained samples needed for an expansion (paper 100)
    exp_burn_in: int = 100  # steps before any sample is buffered (paper 100)
    exp_wait_steps: int = 100  # steps between expansions (paper 100)
    exp_passes: int = 10  # passes over the buffer that train the new component (paper 10)

    def __post_init__(self):
        if self.mode not in ("supervised", "unsupervised"):
            raise ValueError(f"curl: mode must be 'supervised' or 'unsupervised', not {self.mode!r}")
        if self.scores not in ("task", "space"):
            raise ValueError(f"curl: scores must be 'task' or 'space', not {self.scores!r}")


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
        z = mu if generator is None else mu + sig * torch.randn(mu.shape, generator=generator, device=mu.device)
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
        return self.decoder(pmu + psig * torch.randn(pmu.shape, generator=generator, device=pmu.device))

    def match_priors(self, x: torch.Tensor, y: torch.Tensor, components: torch.Tensor, chunk: int = 1024) -> None:
        """Set p(z|k) of each of ``components`` to its ELBO-optimal value given q: the Gaussian that
        minimises the average KL(q(z|x,k) || p(z|k)) over the examples ``x`` with ``y == k``, i.e. the
        moments of the aggregate posterior (mean of mu; variance = mean of sig^2 + variance of mu).
        Components without examples are left alone."""
        k, z = self.prior_mu.shape
        dev = x.device
        n, s1, s2 = torch.zeros(k, device=dev), torch.zeros(k, z, device=dev), torch.zeros(k, z, device=dev)
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                yb = y[start:start + chunk]
                mu, sig = self.posterior(self.encoder(x[start:start + chunk]), yb)
                n.index_add_(0, yb, torch.ones(len(yb), device=dev))
                s1.index_add_(0, yb, mu)
                s2.index_add_(0, yb, mu ** 2 + sig ** 2)
            sel = components[n[components] > 0]  # (a host sync, once per call)
            m = s1[sel] / n[sel, None]
            var = (s2[sel] / n[sel, None] - m ** 2).clamp_min(1e-8)
            scale = (var.sqrt() - 1e-4).clamp_min(1e-3)
            self.prior_mu[sel] = m
            self.prior_sig[sel] = scale + torch.log(-torch.expm1(-scale)) - _SP1  # softplus^-1


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: the per-component heads hold most parameters (about 4k per
    component, ~4M at 900 components), and the default for-each update of all of them dominated a
    step there (27 ms vs 2.3 ms fused for the 6 ms forward + backward; 1 CPU thread)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def curl_features(cfg: CurlConfig, ctx, task_key: str, split: str, standardiser: dict, stats_key: str):
    """(features on ``ctx.device``, labels (CPU) or None, encoder FLOPs, the standardiser dict).

    Features come from the one frozen-encoder path; with ``standardise`` they are centred and scaled by
    the statistics ``standardiser[stats_key]``, fitted here on the first (train) split that needs them
    (the returned dict then holds them; the caller keeps it in the learner state)."""
    x, labels, flops = split_features(cfg, ctx, task_key, split)
    if cfg.standardise:
        stats = standardiser.get(stats_key)
        if stats is None:
            stats = fit_standardiser(x)
            standardiser = {**standardiser, stats_key: stats}
        x = standardised(x, stats)
    return x.to(ctx.device), labels, flops, standardiser


def learning_rate_at(cfg: CurlConfig, step: int, steps: int) -> float:
    """Cosine decay from ``learning_rate`` to ``final_learning_rate`` x it over a train event's steps."""
    final = cfg.learning_rate * cfg.final_learning_rate
    return final + 0.5 * (cfg.learning_rate - final) * (1.0 + math.cos(math.pi * step / max(1, steps)))


def task_steps(cfg: CurlConfig, examples: int) -> int:
    """Steps of a train event: ``steps`` when set, else ``epochs`` passes over the task's ``examples``
    (real batches; generated batches come on top) within [``min_steps``, ``max_steps``]."""
    if cfg.steps > 0:
        return int(cfg.steps)
    real = math.ceil(cfg.epochs * examples / max(1, min(cfg.batch_size, examples)))
    return int(min(cfg.max_steps, max(cfg.min_steps, real)))


def net_from_state(params, dim: int, config: CurlConfig, components: int, ctx, tag: str) -> CurlNet:
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
    return net.to(ctx.device)


_COMPONENT_PARAMS = ("cluster_w", "cluster_b", "zmu_w", "zmu_b", "zsig_w", "zsig_b", "prior_mu", "prior_sig")


def marginal_elbo(net: CurlNet, x: torch.Tensor, h: torch.Tensor, n_active: int, top_k: int,
                  generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-example ELBO with y marginalised over the active components, cluster logits (B, n_active)).

    ELBO = sum_k q(k|x) [log p(x|z_k) - KL(q(z|x,k) || p(z|k))] - KL(q(y|x) || p(y)), p(y) uniform over
    the ``n_active`` components (exactly as ``model.py``). [deviation] The cap: the expectation runs over
    the ``top_k`` components of q(y|x) only, with q renormalised over them (one decoder pass per evaluated
    component, so the cost is capped at ``top_k`` passes whatever the number of components); the
    KL(q(y|x) || p(y)) term uses the full q. Exact when ``top_k >= n_active``; otherwise components
    outside the top-k of an example get no gradient from its reconstruction term in that step.
    """
    logits = net.cluster_logits(h)[:, :n_active]
    logq = F.log_softmax(logits, 1)
    k = min(top_k, n_active)
    top = logits.detach().topk(k, dim=1).indices
    comp = net.elbo(x, h, top, generator)  # (B, k)
    q_top = torch.softmax(logits.gather(1, top), 1)
    kl_y = (logq.exp() * (logq + math.log(n_active))).sum(1)
    return (q_top * comp).sum(1) - kl_y, logits


def component_posterior(net: CurlNet, x: torch.Tensor, h: torch.Tensor, candidates: torch.Tensor,
                        top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(component ids (B, k), posterior (B, k)): p(k|x) ∝ p(k) exp(ELBO_k(x)) (z at the mean, p(k) uniform)
    over the ``top_k`` of ``candidates`` with the highest cluster logit (the cheap score of q(y|x))."""
    logits = net.cluster_logits(h)[:, candidates]
    top = candidates[logits.topk(min(top_k, len(candidates)), dim=1).indices]
    return top, torch.softmax(net.elbo(x, h, top), 1)


def expand(net: CurlNet, buffer: torch.Tensor, n_active: int, cfg: CurlConfig, weight: float,
           generator, noise=None) -> tuple[int, int]:
    """Add component ``n_active`` for the poorly explained ``buffer``; returns (its best match, its id).

    As ``training.py``: the best-matching existing component k* = argmax of q(y|x) summed over the
    buffer; its cluster-head column, latent-encoder head and prior row are copied into the new
    component, which is then trained for ``exp_passes`` passes over the buffer with the supervised loss
    at y = new component, updating only the component-specific parameters (cluster head, latent heads,
    priors; the shared encoder and decoder stay fixed). Every FLOP here is counted by the caller.
    """
    with torch.no_grad():
        q = torch.softmax(net.cluster_logits(net.encoder(buffer))[:, :n_active], 1)
        best = int(q.sum(0).argmax())
        for name in _COMPONENT_PARAMS:
            getattr(net, name)[n_active] = getattr(net, name)[best]
    new, n_active = n_active, n_active + 1
    optimizer = adam([getattr(net, name) for name in _COMPONENT_PARAMS], cfg.learning_rate)
    batch = min(cfg.batch_size, len(buffer))
    target = torch.full((batch,), new, dtype=torch.long, device=buffer.device)
    noise = generator if noise is None else noise  # the device generator of the reparameterisation
    for _ in range(cfg.exp_passes):
        order = torch.randperm(len(buffer), generator=generator).to(buffer.device)
        for start in range(0, len(buffer) - batch + 1, batch):  # whole batches only (a short last one dropped)
            xb = buffer[order[start:start + batch]]
            with torch.no_grad():
                h = net.encoder(xb)
            loss = weight * (-net.elbo(xb, h, target, noise).mean()
                             + F.cross_entropy(net.cluster_logits(h)[:, :n_active], target))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.zero_grad(set_to_none=True)
    if cfg.match_priors:
        net.match_priors(buffer, torch.full((len(buffer),), new, dtype=torch.long, device=buffer.device),
                         torch.tensor([new], device=buffer.device))
    return best, new


def claims(net: CurlNet, x: torch.Tensor, n_active: int, top_k: int, chunk: int) -> torch.Tensor:
    """The component each example is assigned to: argmax of the component posterior (top-k capped)."""
    out = []
    candidates = torch.arange(n_active, device=x.device)
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = x[start:start + chunk]
            top, post = component_posterior(net, xb, net.encoder(xb), candidates, top_k)
            out.append(top.gather(1, post.argmax(1, keepdim=True)).squeeze(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)
