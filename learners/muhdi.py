"""``muhdi``: Multi-Head Distillation for classification.

Saporta, Douillard, Vu, Perez, Cord, "Multi-Head Distillation for Continual Unsupervised Domain
Adaptation in Semantic Segmentation", CVPR 2022 Workshop on Continual Learning (code: valeoai/MuHDi,
``train_UDA.py``: ``train_advent_muhdi``, ``features_distillation``, ``_local_pod``). See
learners/_distillation.py for the label spaces, the training loop (the shared SGD recipe, full step
budget) and the FLOP accounting.

Follows the paper/code:
* two head sets on one backbone: a per-task **specialist** head trained with the supervised loss
  (CE; BCE for multi-label tasks) and the deployed **agnostic** head, which never sees a label: it
  learns only by distillation, KL(specialist, detached || agnostic) on the current task's inputs
  (``spe_weight``, the code's ``LAMBDA_KT_TARGET`` = 1);
* the frozen previous model (backbone + agnostic heads, eval mode) is the teacher:
  KL(old agnostic || new agnostic) (``kt_weight``) and multi-level local POD between the old and the
  new backbone's block outputs (pre-ReLU; squared activations, scales 1, 2, 4, width- and
  height-pooled cells, Frobenius distance averaged over the batch then over the levels;
  ``feat_weight``);
* only the agnostic head is kept for prediction; the specialist is rebuilt (fresh) for every task
  and dropped after it; backbone, agnostic heads and the teacher snapshot persist.

Adaptations [deviation] (supervised classification, no domains):
* no adversarial / entropy alignment and no discriminators: every task is labelled, so the
  specialist is trained with CE on the task's labels;
* no always-available source set: the teacher terms use the current task's inputs (LwF-style);
* no ASPP and no auxiliary (stage-3) head: one linear head per set on the pooled features;
* loss weights: ``kt_weight`` keeps the code's ``KT_LAMBDA = 1e-5`` (the teacher's logit KL is
  all but off, as in the code); ``feat_weight`` is retuned to 0.01 (the code's 1e-5 was tuned for
  per-pixel segmentation features; here the POD term is about 30 before weighting) and every KL
  runs at temperature 2 (the code: 1) [deviation]. Measured in TI on the 5-task x 2-class split of
  tests/test_muhdi.py (40 steps per task; final average accuracy for seeds 0 / 1 / 2): plain
  fine-tuning 0.72 / 0.66 / 0.81; these defaults 0.83 / 0.81 / 0.86; without POD 0.77 / 0.68 /
  0.78; the spec's retuned ``kt_weight`` 0.1: 0.77 / 0.73 / 0.76 and 1: 0.68 / 0.74 / - (on 2-class
  heads the teacher's KL on new-task inputs tends to pin an old head to one class);
  ``feat_weight = 0.1`` swamps the CE and new tasks stay at chance. At temperature 1 the agnostic
  head, which learns only through the specialist, was sometimes still at chance after 30 steps.
* teacher KL averaged over the old heads (MuHDi has one agnostic head; here there is one per task);
* budget: 8 epochs per task (the harness recipe: 12), clipped to [40, 400] steps, so that the
  default run of ``synthetic-short`` (25 tasks, 1848 steps) stays near 4 minutes on 2 cores
  (estimated from a 40-steps-per-task run: 1000 steps in 209 s on one loaded thread);
* SGD recipe of the harness (Nesterov, warm-up + cosine, one learning rate for all heads) instead of
  SGD 2.5e-4 with 10x on the heads and poly decay; no warm start of the agnostic head from the
  specialist (``train.py`` copies checkpointed specialist heads into the agnostic slots; here the
  specialist is new for every task, so there is nothing to copy).

Modes in a shared (class-incremental) label space:
* ``ti`` (task-incremental, the default; the setting where the paper's claim carries over):
  the agnostic head's rows of task ``j``'s classes are its head ``A_j`` (a softmax restricted to
  them equals a separate per-task head). The specialist covers the task's classes and distils into
  ``A_t``; the teacher distils every old ``A_j`` (softmax over task ``j``'s classes) on current
  inputs; predictions are restricted to the task's classes.
* ``ta`` (task-agnostic): one head over every class seen so far. The specialist covers the seen
  classes (as in MuHDi, where specialist and agnostic heads share one label space) and is trained
  with CE over them on the task's data; it distils into the agnostic head over the seen classes, and
  the teacher into the old-class slice (softmax over the old classes). [deviation] The spec's
  "specialist into the task-t slice only" gives no signal between the slices, so cross-task scores
  would be uncalibrated.
Per-task label spaces (ordinary streams): one agnostic head per task key; the specialist has the
task's outputs and distils into that head; the teacher distils every old head (softmax, or
per-class Bernoulli KL for multi-label heads).

``specialist = False`` trains the agnostic head with the supervised loss directly (TI: CE over the
task's classes; TA: CE over the seen classes); with ``kt_weight = feat_weight = 0`` as well this is
plain fine-tuning of the same network with no teacher forward counted: the acceptance baseline.

FLOPs (train phase, counted by the shared loop): forward + backward of the backbone and every head
(agnostic heads and the specialist) per step, plus the teacher's forward (backbone + its heads) per
step. KL and POD are elementwise (counted as 0 like the optimiser update, the harness convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learners._distillation import (
    DistillConfig, DistillLearner, EventPlan, deployed, kd_kl, local_pod,
)
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class MuhdiConfig(DistillConfig):
    epochs: float = 8.0  # the recipe's 12 would take ~5 min on synthetic-short (teacher forward per step)
    mode: str = "ti"  # ti | ta (see the module docstring)
    specialist: bool = True  # False: the agnostic head is trained with CE directly (no specialist)
    spe_weight: float = 1.0  # KL(specialist || agnostic), LAMBDA_KT_TARGET
    kt_weight: float = 1e-5  # KL(old agnostic || new agnostic) on current inputs (the code's KT_LAMBDA)
    feat_weight: float = 0.01  # local POD, old vs new backbone (code: FEAT_LAMBDA 1e-5)
    temperature: float = 2.0  # of every KL (code: 1)

    def __post_init__(self):
        super().__post_init__()
        if min(self.spe_weight, self.kt_weight, self.feat_weight) < 0 or self.temperature <= 0:
            raise ValueError("loss weights must be >= 0 and temperature > 0")


def specialist_name(space: str) -> str:
    return f"specialist/{space}"


class MuhdiLearner(DistillLearner):
    name = "muhdi"

    def extra_heads(self, task, space, classes):
        if not self.config.specialist:
            return {}
        if not space.startswith("shared:"):
            return {specialist_name(space): task.num_classes}
        # TI: the task's classes; TA: the whole space (masked to the seen classes in the loss)
        return {specialist_name(space): len(classes) if self.config.mode == "ti" else task.num_classes}

    def uses_teacher(self):
        return self.config.kt_weight > 0 or self.config.feat_weight > 0

    def teacher_groups(self, plan: EventPlan) -> list[tuple[str, list[int] | None, bool]]:
        """What the teacher distils: (space, classes of one softmax or None for the whole head, multi-label)."""
        if plan.teacher is None or self.config.kt_weight == 0:
            return []
        groups = []
        for sp, entry in plan.old_spaces.items():
            if sp.startswith("shared:"):
                if self.config.mode == "ti":
                    current = set(plan.classes) if sp == plan.space else set()
                    for key, cls in entry["tasks"].items():
                        if not (sp == plan.space and key == plan.task.key) and not set(cls) & current:
                            groups.append((sp, list(cls), False))
                else:
                    old = plan.old_classes(sp)
                    if old:
                        groups.append((sp, old, False))
            elif sp != plan.space:
                groups.append((sp, None, entry["kind"] == MULTI_LABEL))
        return groups

    def make_loss(self, plan: EventPlan):
        cfg = self.config
        task, space = plan.task, plan.space
        device = next(plan.student.parameters()).device
        multi = task.kind == MULTI_LABEL
        temp = cfg.temperature
        # the logits the supervised / specialist terms act on, as an index into the agnostic head
        if plan.shared and cfg.mode == "ti":
            target_classes = list(plan.classes)
        elif plan.shared:
            target_classes = list(plan.spaces[space]["seen"])
        else:
            target_classes = list(range(task.num_classes))
        index = torch.tensor(target_classes, dtype=torch.int64, device=device)
        lookup = torch.full((plan.spaces[space]["num_classes"],), -1, dtype=torch.int64, device=device)
        lookup[index] = torch.arange(len(target_classes), device=device)
        groups = self.teacher_groups(plan)
        use_pod = plan.teacher is not None and cfg.feat_weight > 0

        def supervised(logits, y):
            if multi:
                return F.binary_cross_entropy_with_logits(logits, y)
            return F.cross_entropy(logits, lookup[y])

        def loss_fn(b):
            agn = plan.student.head(deployed(space))(b.student_pooled)[:, index]
            parts = {}
            if cfg.specialist:
                spe = plan.student.head(specialist_name(space))(b.student_pooled)
                if plan.shared and cfg.mode == "ta":
                    spe = spe[:, index]
                ce = supervised(spe, b.y)
                kd = kd_kl(agn, spe.detach(), multi_label=multi, temperature=temp).mean()
                total = ce + cfg.spe_weight * kd
                parts.update(ce=ce.item(), spe_kd=kd.item())
            else:
                total = supervised(agn, b.y)
                parts.update(ce=total.item())
            if groups:
                kt = total.new_zeros(())
                for sp, cls, multi_old in groups:
                    s = plan.student.head(deployed(sp))(b.student_pooled)
                    t = plan.teacher.head(deployed(sp))(b.teacher_pooled)
                    if cls is not None:
                        s, t = s[:, cls], t[:, cls]
                    kt = kt + kd_kl(s, t, multi_label=multi_old, temperature=temp).mean()
                kt = kt / len(groups)
                total = total + cfg.kt_weight * kt
                parts.update(kt=kt.item())
            if use_pod:
                pod = local_pod(b.student_maps, b.teacher_maps)
                total = total + cfg.feat_weight * pod
                parts.update(pod=pod.item())
            return total, parts

        return loss_fn


@LEARNERS.register("muhdi", MuhdiConfig, test_overrides={"max_steps": 6, "min_steps": 3})
def make_muhdi(config: MuhdiConfig) -> MuhdiLearner:
    """MuHDi-cls: an agnostic head distilled from a per-task specialist and the previous model, plus local POD."""
    return MuhdiLearner(config)
