"""``er``: experience replay from a reservoir buffer of raw images (Chaudhry et al. 2019).

Chaudhry, Rohrbach, Elhoseiny, Ajanthan, Dokania, Torr, Ranzato, "On Tiny Episodic Memories in
Continual Learning", arXiv:1902.10486 (2019); the reservoir buffer as in Riemer et al. 2019 (MER)
and Buzzega et al. 2020. Every step adds ``replay_batch_size`` examples drawn uniformly from the
buffer to the current batch: one backbone forward over both (batch-norm statistics of the mixed
batch), the current batch's loss on its head plus the replayed rows' mean loss on their own heads.
The buffer (``buffer_size`` examples over the whole stream, algorithm R) takes the task's examples
at the end of its event. The backbone carries over and the heads are those of ``finetune_prev``
(one per task key, or one per label space on a class-incremental stream): learners/_replay.py.

FLOPs: ``flops_train`` = steps x the counted forward + backward of the mixed batch (current rows
through the current head, replayed rows through every head); validation as ``finetune_prev``.
Measured numbers and the notes: docs/learners/er.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import RecipeConfig, batch_size_for
from nevis_bench.learners import _replay as rp
from nevis_bench.registry import LEARNERS


@dataclass
class ERConfig(RecipeConfig, rp.BufferConfig, rp.HeadConfig):
    def __post_init__(self):
        super().__post_init__()
        self.check_scores()
        self.check_buffer()


class ERLearner:
    """Experience replay; ``der`` and ``agem`` subclass it (same buffer, other objectives)."""

    name = "er"
    replay_batches = 1  # independent replay batches per step
    stores_logits = False

    def __init__(self, config):
        self.config = config

    def init(self):
        return rp.initial_state(buffer=rp.empty_buffer(self.config.buffer_size))

    # -- the step ---------------------------------------------------------------------------------

    def objective(self, net, kinds, kind, x, y, *batches):
        """(total loss, current-batch loss) of one step with the replayed ``batches``."""
        features = net.backbone(torch.cat([x] + [b.x for b in batches]))
        n = x.shape[0]
        current = kind.loss(net.current_logits(features[:n]), y)
        return current + rp.replay_loss(net, kinds, features[n:], batches[0]), current

    def step_hooks(self, state, ctx):
        def make_step(net, task, counter):
            sampler = rp.ReplaySampler(state["buffer"], self.config.replay_batch_size, self.config,
                                       ctx.rng_seed("replay"), ctx.device)
            if not sampler:
                return {}  # nothing to replay yet: fit's plain step and its count
            kind = task_kind(task, self.config.label_smoothing)
            kinds = rp.replay_kinds(state, net, task)

            def batches(step):
                return [sampler.sample(step, salt) for salt in range(self.replay_batches)]

            def loss(x, y):
                total, current = self.objective(net, kinds, kind, x, y, *batches(counter.value))
                return total, {"current": current.detach()}

            return {"loss": loss, "step_flops": self.count_step(ctx, net, task, kind, kinds, sampler)}
        return make_step

    def count_step(self, ctx, net, task, kind, kinds, sampler) -> int:
        """The counted FLOPs of one step, measured on ``meta`` copies of the shapes fit will use."""
        n = len(ctx.data.split(task.key, "train"))
        b = min(batch_size_for(self.config, n), n)  # TrainBatches' batch
        x = torch.empty((b, 3, self.config.input_size, self.config.input_size))
        y = torch.zeros(kind.target_shape(b), dtype=kind.target_dtype)
        examples = [sampler.sample(0, 1000 + salt) for salt in range(self.replay_batches)]
        return rp.measured_step_flops(
            ctx, (self.name, b, sampler.size, self.replay_batches, kind.loss_key), (net,),
            lambda net_, x_, y_, *bs: self.objective(net_, kinds, kind, x_, y_, *bs)[0], x, y, *examples)

    # -- events -----------------------------------------------------------------------------------

    def train(self, event, state, ctx):
        state, result, net = rp.train_event(self, event, state, ctx, make_step=self.step_hooks(state, ctx))
        split = ctx.data.split(event.task.key, "train")
        rng = np.random.default_rng(ctx.rng_seed("reservoir"))
        model = rp.Classifier(net.backbone, net.head(net.current))
        logits_of = (lambda images: rp.eval_logits(model, images, self.config, ctx.device)) if self.stores_logits else None
        buffer, kept = rp.reservoir_insert(state["buffer"], net.current, split, rng, logits_of)
        flops = 0
        if self.stores_logits and kept:  # DER++: the stored logits' forward passes
            flops = ctx.flops.forward_examples(model, (3, self.config.input_size, self.config.input_size), kept,
                                               self.config.eval_batch_size)
        state = {**state, "buffer": buffer}
        usage = rp.with_extra_flops(result.usage(*rp.network_parameters(state)), flops,
                                    buffer_examples=rp.buffer_size(buffer), buffer_added=kept)
        return state, usage

    def predict(self, event, state, ctx):
        return rp.predict_event(self.name, self.config, event, state, ctx)


@LEARNERS.register("er", ERConfig, test_overrides={"max_steps": 12, "min_steps": 4, "buffer_size": 40,
                                                   "replay_batch_size": 8})
def make_er(config: ERConfig) -> ERLearner:
    """Experience replay: a reservoir buffer of raw images replayed into every step (Chaudhry et al. 2019)."""
    return ERLearner(config)
