"""``lwf``: Learning without Forgetting (Li & Hoiem 2016).

Li, Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2018. The previous model (the backbone
and heads at the start of the event, frozen, eval mode) is the teacher on the new task's training
batches; the loss is the new task's loss plus ``distill_weight`` x the distillation loss at
temperature ``temperature`` (2, as the paper) between the network's and the teacher's outputs of
every old head, averaged over old heads (so its weight does not grow with the number of tasks).
Old heads are those of earlier task keys (per-task streams: softmax KL, or per-class Bernoulli KL
for multi-label heads); on a class-incremental stream, where the tasks share one head, the old
outputs follow the scores: with ``scores="task"`` (the default) each earlier task's classes are one
old output (its softmax is that task's prediction, as a per-task head's), with ``scores="space"``
all the classes trained before form one. Heads and backbone as ``finetune_prev``
(learners/_replay.py).

Adapted [deviation]: no warm-up phase that first trains the new head alone; the teacher's outputs
are computed on each augmented batch (a teacher forward per step, counted in ``flops_train``)
rather than once on un-augmented images before training; distillation as KL (the same gradient as
the paper's modified cross-entropy) without a T^2 factor, as the paper. Notes: docs/learners/lwf.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import RecipeConfig, batch_size_for
from nevis_bench.learners import _replay as rp
from nevis_bench.registry import LEARNERS


@dataclass
class LwFConfig(RecipeConfig, rp.HeadConfig):
    distill_weight: float = 1.0  # lambda_o of the paper
    temperature: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        self.check_scores()
        if self.distill_weight < 0 or self.temperature <= 0:
            raise ValueError("distill_weight must be >= 0 and temperature > 0")


def distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float, multi_label: bool) -> torch.Tensor:
    """Mean over the batch of KL(teacher || student) at ``temperature`` (per-class Bernoulli if multi-label)."""
    s, t = student.float() / temperature, teacher.float() / temperature
    if multi_label:
        log_s = torch.stack([F.logsigmoid(s), F.logsigmoid(-s)], dim=-1)
        log_t = torch.stack([F.logsigmoid(t), F.logsigmoid(-t)], dim=-1)
        return F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1).mean()
    return F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), reduction="batchmean", log_target=True)


class LwFLearner:
    name = "lwf"

    def __init__(self, config: LwFConfig):
        self.config = config

    def init(self):
        return rp.initial_state()

    def old_outputs(self, state, task) -> list[tuple[str, list[int] | None, bool]]:
        """(head, columns or None for all, multi-label) of every old output to distil.

        A shared label space's old output follows how it is scored: with ``scores="task"`` each
        earlier task's own classes (a softmax over them is that task's prediction, as a per-task
        head's), with ``scores="space"`` every class trained before (one softmax over all of them)."""
        key = rp.head_key(task)
        old = []
        for name in state["heads"]:
            multi = bool(state["kinds"][name][0])
            if name != key:
                old.append((name, None, multi))
            elif self.config.scores == "task":
                old.extend((name, list(classes), multi) for other, classes in state["task_classes"].items()
                           if other != task.key and state["head_of"].get(other) == key)
            elif state["classes"].get(key):
                old.append((name, list(state["classes"][key]), multi))
        return old

    def objective(self, net, teacher, kind, old, x, y):
        cfg = self.config
        features = net.backbone(x)
        current = kind.loss(net.current_logits(features), y)
        with torch.no_grad():
            taught = teacher.backbone(x)
        student_out, teacher_out, terms = {}, {}, []
        for name, columns, multi in old:
            if name not in student_out:  # each head once, however many of its slices are distilled
                student_out[name] = net.head(name)(features)
                with torch.no_grad():
                    teacher_out[name] = teacher.head(name)(taught)
            s, t = student_out[name], teacher_out[name]
            if columns is not None:
                s, t = s[:, columns], t[:, columns]
            terms.append(distillation(s, t, cfg.temperature, multi))
        kd = torch.stack(terms).mean()
        return current + cfg.distill_weight * kd, current, kd

    def train(self, event, state, ctx):
        task = event.task
        old = self.old_outputs(state, task)

        def make_step(net, task, counter):
            if not old or self.config.distill_weight == 0:
                return {}
            teacher = copy.deepcopy(net).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            kind = task_kind(task, self.config.label_smoothing)

            def loss(x, y):
                total, current, kd = self.objective(net, teacher, kind, old, x, y)
                return total, {"current": current.detach(), "distill": kd.detach()}

            n = len(ctx.data.split(task.key, "train"))
            b = min(batch_size_for(self.config, n), n)
            x = torch.empty((b, 3, self.config.input_size, self.config.input_size))
            y = torch.zeros(kind.target_shape(b), dtype=kind.target_dtype)
            flops = rp.measured_step_flops(
                ctx, (self.name, b, kind.loss_key, repr(old)), (net, teacher),
                lambda net_, teacher_, x_, y_: self.objective(net_, teacher_, kind, old, x_, y_)[0], x, y)
            return {"loss": loss, "step_flops": flops}

        new_state, result, _ = rp.train_event(self, event, state, ctx, make_step=make_step)
        usage = result.usage(*rp.network_parameters(new_state))
        usage.info["old_heads"] = len(old)
        return new_state, usage

    def predict(self, event, state, ctx):
        return rp.predict_event(self.name, self.config, event, state, ctx)


@LEARNERS.register("lwf", LwFConfig, test_overrides={"max_steps": 12, "min_steps": 4})
def make_lwf(config: LwFConfig) -> LwFLearner:
    """Learning without Forgetting: distil the previous model's old heads on the new task's inputs (Li & Hoiem 2016)."""
    return LwFLearner(config)
