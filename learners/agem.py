"""``agem``: Averaged Gradient Episodic Memory (Chaudhry et al. 2019).

Chaudhry, Ranzato, Rohrbach, Elhoseiny, "Efficient Lifelong Learning with A-GEM", ICLR 2019. Each
step computes the gradient ``g`` of the current batch's loss and a reference gradient ``g_ref`` of
the loss of ``replay_batch_size`` examples drawn from the buffer; when ``g . g_ref < 0`` the update
uses ``g - (g . g_ref / g_ref . g_ref) g_ref`` (the projection onto the half-space where the replayed
loss does not increase), else ``g``. The projection runs in ``fit``'s ``before_step`` hook (after the
backward pass, before the optimiser's update) over every parameter of the network, without reading
anything back from the device (``min(g . g_ref, 0)`` is computed on it).

Adapted [deviation]: the memory is the reservoir buffer of ``er`` (learners/_replay.py) rather than
A-GEM's per-task ring buffers (Chaudhry et al. 2019b show reservoir sampling as good or better); the
reference batch is sampled per step with a seeded generator; the reference loss's forward/backward
runs in training mode (batch-norm statistics see replayed batches, as Mammoth's implementation).
FLOPs: each step counts the current forward/backward plus the reference batch's forward/backward.
Notes and numbers: docs/learners/agem.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import autocast
from nevis_bench.learners import _replay as rp
from nevis_bench.learners.er import ERConfig, ERLearner
from nevis_bench.registry import LEARNERS


@dataclass
class AGEMConfig(ERConfig):
    replay_batch_size: int = 64  # the reference batch (A-GEM: 256 on its larger streams; here the training batch)


def project(params: list[torch.nn.Parameter], reference: list[torch.Tensor | None]) -> None:
    """A-GEM's projection of the parameters' gradients, in place, with no host sync."""
    pairs = [(p, r) for p, r in zip(params, reference) if r is not None]
    for p, r in pairs:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    dot = sum((p.grad * r).sum() for p, r in pairs)
    norm = sum((r * r).sum() for _, r in pairs)
    scale = torch.clamp(dot, max=0.0) / norm.clamp_min(1e-12)
    for p, r in pairs:
        p.grad.sub_(scale * r)


class AGEMLearner(ERLearner):
    name = "agem"

    def reference_gradient(self, net, kinds, batch):
        params = [p for p in net.parameters() if p.requires_grad]
        features = net.backbone(batch.x)
        loss = rp.replay_loss(net, kinds, features, batch)
        return params, torch.autograd.grad(loss, params, allow_unused=True)

    def step_hooks(self, state, ctx):
        def make_step(net, task, counter):
            sampler = rp.ReplaySampler(state["buffer"], self.config.replay_batch_size, self.config,
                                       ctx.rng_seed("replay"), ctx.device)
            if not sampler:
                return {}
            kind = task_kind(task, self.config.label_smoothing)
            kinds = rp.replay_kinds(state, net, task)

            def before_step(step):
                with autocast(self.config, ctx.device):
                    params, reference = self.reference_gradient(net, kinds, sampler.sample(step))
                project(params, reference)

            def counted(net_, x, y, batch):  # the current step and the reference gradient + projection
                net_.zero_grad(set_to_none=True)
                kind.loss(net_(x), y).backward()
                params, reference = self.reference_gradient(net_, kinds, batch)
                project(params, reference)
                return None

            return {"before_step": before_step, "step_flops": self.count_step(ctx, net, task, kind, kinds, sampler,
                                                                             counted)}
        return make_step

    def count_step(self, ctx, net, task, kind, kinds, sampler, counted=None) -> int:
        from nevis_bench.learner_kit.training import batch_size_for
        n = len(ctx.data.split(task.key, "train"))
        b = min(batch_size_for(self.config, n), n)
        x = torch.empty((b, 3, self.config.input_size, self.config.input_size))
        y = torch.zeros(kind.target_shape(b), dtype=kind.target_dtype)
        return rp.measured_step_flops(ctx, (self.name, b, sampler.size, kind.loss_key), (net,), counted, x, y,
                                      sampler.sample(0, 1000))


@LEARNERS.register("agem", AGEMConfig, test_overrides={"max_steps": 12, "min_steps": 4, "buffer_size": 40,
                                                       "replay_batch_size": 8})
def make_agem(config: AGEMConfig) -> AGEMLearner:
    """A-GEM: project the gradient when it would increase the loss of a replayed reference batch (Chaudhry et al. 2019)."""
    return AGEMLearner(config)
