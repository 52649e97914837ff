"""``der``: Dark Experience Replay++ (Buzzega et al. 2020).

Buzzega, Boschini, Porrello, Abati, Calderara, "Dark Experience for General Continual Learning: a
Strong, Simple Baseline", NeurIPS 2020 (code: aimagelab/mammoth). The buffer of ``er`` (reservoir,
raw images, learners/_replay.py) also keeps the logits the network gave each example; every step
draws two independent replay batches, as the paper's Algorithm 1: the MSE between the network's
logits and the stored ones on the first (weight ``alpha``) and the task loss on the stored labels
of the second (weight ``beta``), added to the current batch's loss. One backbone forward covers the
current batch and both replay batches.

Adapted [deviation]: examples enter the buffer at the end of their task's event (so a resumed event
replays the same batches), with the logits of the trained network in eval mode on the evaluation
preprocessing, instead of the logits of the training-time forward pass when the example streamed
by; their forward passes are counted in ``flops_train``. Defaults ``alpha`` 0.1, ``beta`` 0.5 (the
paper's seq-CIFAR-10 values with a 200-example buffer). Notes and numbers: docs/learners/der.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nevis_bench.learners import _replay as rp
from nevis_bench.learners.er import ERConfig, ERLearner
from nevis_bench.registry import LEARNERS


@dataclass
class DERConfig(ERConfig):
    alpha: float = 0.1  # weight of the MSE to the stored logits
    beta: float = 0.5  # weight of the task loss on the replayed labels (0: DER without ++)


class DERLearner(ERLearner):
    name = "der"
    replay_batches = 2
    stores_logits = True

    def objective(self, net, kinds, kind, x, y, *batches):
        logit_batch, label_batch = batches
        features = net.backbone(torch.cat([x, logit_batch.x, label_batch.x]))
        n, r = x.shape[0], len(logit_batch)
        current = kind.loss(net.current_logits(features[:n]), y)
        cfg = self.config
        dark = rp.replay_loss(net, kinds, features[n:n + r], logit_batch, alpha=cfg.alpha, beta=0.0)
        labels = rp.replay_loss(net, kinds, features[n + r:], label_batch, alpha=0.0, beta=cfg.beta)
        return current + dark + labels, current


@LEARNERS.register("der", DERConfig, test_overrides={"max_steps": 12, "min_steps": 4, "buffer_size": 40,
                                                     "replay_batch_size": 8})
def make_der(config: DERConfig) -> DERLearner:
    """DER++: replay of stored logits (MSE, alpha) and labels (beta) from a reservoir buffer (Buzzega et al. 2020)."""
    return DERLearner(config)
