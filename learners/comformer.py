"""``comformer``: CoMFormer's adaptive distillation and pseudo-labels, for classification (Tier B).

Cermelli, Cord, Douillard, "CoMFormer: Continual Learning in Semantic and Panoptic Segmentation",
CVPR 2023 (code: fcdl94/CoMFormer). Task-agnostic, single head; see learners/_distillation.py for
the label spaces, the training loop (the shared SGD recipe) and the FLOP accounting.

Follows the paper/code:
* the frozen previous model is the teacher, run on the same (current-task) images;
* unbiased knowledge distillation (``unbiased_knowledge_distillation_loss``): the teacher's softmax
  over [old classes, other] (temperature ``alpha`` on the old logits) against the student's
  log-probabilities of the old classes plus one bucket = logsumexp over the new classes and "other"
  minus the normaliser, i.e. new classes may absorb the old model's "other" mass; KL summed over
  classes, averaged over samples with weights (1 - p_old(other))^gamma, gamma = 2 (``KD_REW``),
  scaled by ``kd_weight`` (the README's ``KD_WEIGHT`` is 10; here the default is 1 [deviation]: with
  the harness's SGD recipe and no "other" training signal, 10 and 3 stop the new classes from being
  learned, see "Measured" below);
* pseudo-labels of old classes from the teacher where its arg-max is not "other" and its score
  exceeds ``pseudo_threshold``;
* a growing classifier with the "other" (no-object) logit kept last.

Adaptations [deviation] (no segmentation, no queries, no Hungarian matching, no masks):
* one linear head over the shared label space + one "other" logit (the Tier B single-logit variant,
  not Mask2Former queries); the class loss is plain CE over the classes seen so far and "other"
  (no focal loss, no no-object weight); "other" is never a CE target (it is only pushed down as a
  negative, there being no unlabelled background in classification), so the teacher's p_old(other)
  stays small, the weights (1 - p_old(other))^2 are close to 1, and UKD acts mostly as a KD of the
  old classes against [old classes, new classes + other];
* a class-incremental image has one (new-class) label, so an old-class pseudo-label cannot replace
  it: it is used as a hard target of CE over the old-class logits only (``pseudo_weight``), the
  classification analogue of appending old-class masks to the targets of non-GT pixels;
* SGD recipe of the harness instead of AdamW (lr 1e-4, wd 0.05);
* per-task label spaces (ordinary streams such as Pascal 2007 then COIL-20): there is no
  background shift, so UKD reduces to KD (LwF) of every old task head on current inputs, weighted
  per sample by (max_c p_old)^2 (single-label) or unweighted per-class Bernoulli KL (multi-label);
  no pseudo-labels across label spaces.
* ``kd_weight = 0, pseudo_weight = 0, wa_step = 0`` is plain fine-tuning of the shared head (CE
  only, no teacher forward counted): the baseline of the acceptance test.

Weight aligning, ON by default [deviation from the paper's scripts, which set ``CONT.WA_STEP`` 0]:
``wa_step`` (the code's ``CONT.WA_STEP`` / ``WA_Hook``) = 1: after every update, the new classes' weight
rows of the shared head are rescaled to the mean norm of the old rows (biases untouched, as in the
code). It is the code's own answer to task-recency bias, and the piece that made the margin over
plain fine-tuning hold on every seed without replay (measured below); ``wa_step = 0`` turns it off.

Optional pieces of the official recipe/code, OFF by default (measured: no robust gain):
* ``backbone_lr_scale`` (Mask2Former/CoMFormer ``SOLVER.BACKBONE_MULTIPLIER`` 0.1): the backbone's
  learning rate times this factor, the heads' unchanged;
* ``incremental_lr_scale`` (CoMFormer: base step lr 1e-4, incremental steps 5e-5, i.e. 0.5): the
  learning rate of every event that has a previous model;
* ``clip_grad_norm`` (Mask2Former ``CLIP_GRADIENTS`` full-model, value 0.01 for AdamW; the value does
  not carry over to SGD, hence off);
* ``other_weight`` [deviation, Tier B stand-in for Mask2Former's unmatched queries trained towards
  no-object with ``NO_OBJECT_WEIGHT`` 0.1]: adds ``other_weight`` x CE(towards "other") to each sample,
  so that the teacher's p_old(other) is not 0 and UKD's bucket has mass to hand to the new classes.

Measured (synthetic-class-incremental, 5 tasks x 2 classes, 32 train / 32 eval images per class, no
replay, TA, 16x16, batch 32, 40 steps a task, no random crop; final average accuracy; baseline = the
same config with kd_weight = pseudo_weight = wa_step = 0, i.e. plain fine-tuning of the shared head):
* learning rate 0.01, the acceptance test (2 torch threads, seeds 0/1/2): defaults 0.206/0.222/0.281
  vs 0.181/0.184/0.191; without weight aligning 0.184/0.216/0.319;
* the same with 1 torch thread (seeds 0-5): defaults 0.231/0.231/0.247/0.219/0.297/0.281 vs
  0.200/0.181/0.200/0.200/0.200/0.200; without weight aligning 0.191/0.219/0.241 (seeds 0-2);
  weight aligning without pseudo-labels 0.250/0.287/0.300 (seeds 3-5); kd_weight 3 0.231/0.100/0.103
  (seeds 3-5: the new classes are no longer learned); weight aligning + other_weight 0.1
  0.303/0.244/0.203 (seeds 0-2);
* the recipe's learning rate 0.05, augmented, 16 or 32 images per class, 20 or 40 steps, weight
  aligning off (earlier measurements): defaults 0.19/0.09/0.16 vs 0.12/0.10/0.20; backbone lr 0.1 +
  incremental lr 0.5, other_weight 0.1 - 1, kd_weight 10 or 3: no setting above the baseline on all
  of seeds 0/1/2; kd_weight 10 stops the new classes from being learned (0.05 - 0.12).
Why the gains stay small (per-step logs of the loss terms): after the first task the head is
saturated (old logits ~17, CE ~0), so the teacher gives p_old(other) ~ 0 and max p_old ~ 1 on the
new images: every weight (1 - p_old(other))^2 is ~ 1, every new image yields an old-class
pseudo-label (all wrong by construction: no new image shows an old class), and UKD degenerates to
KD that asks the student to keep p(old) ~ 1 on images CE labels as new. The two terms compromise on
the new images (the first CE of each task is large, 10 - 28) and the new classes are learned less
well (accuracy right after the task 0.3 - 0.9 vs 0.9 - 1.0 for fine-tuning). A segmentation image has
background/unmatched queries that keep p_old(no-object) high on new objects; a single-label
classification image has none, which is the missing ingredient. Weight aligning lets the old classes
that KD kept compete with the new ones' larger weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nevis_bench.learners._distillation import DistillConfig, DistillLearner, EventPlan, deployed, kd_kl
from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class ComformerConfig(DistillConfig):
    kd_weight: float = 1.0  # the paper uses 10; with this recipe 10 stops new classes from being learned
    gamma: float = 2.0  # reweighting exponent
    alpha: float = 1.0  # multiplier on the teacher's logits
    reweight: bool = True
    pseudo_weight: float = 1.0
    pseudo_threshold: float = 0.5
    backbone_lr_scale: float = 1.0  # official 0.1 (BACKBONE_MULTIPLIER); off: measured no robust gain
    incremental_lr_scale: float = 1.0  # official 0.5 (5e-5 / 1e-4); off: measured no robust gain
    clip_grad_norm: float = 0.0  # full-model gradient-norm clipping; 0 = off
    other_weight: float = 0.0  # [deviation] CE towards "other" per sample (stand-in for no-object queries)
    wa_step: int = 1  # weight aligning of the new classes' rows every wa_step updates; 0 = off


def unbiased_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, old: list[int], new: list[int],
                gamma: float = 2.0, alpha: float = 1.0, reweight: bool = True) -> torch.Tensor:
    """UKD with reweighting. Logits are full heads ``(B, K + 1)`` with "other" last; ``old``/``new``
    index the classes the teacher knows / the student adds. 0 when the student equals the teacher and
    the new-class logits are -inf."""
    other = student_logits.shape[1] - 1
    t = alpha * teacher_logits[:, old + [other]]
    log_t = t - torch.logsumexp(t, dim=1, keepdim=True)
    normaliser = torch.logsumexp(student_logits[:, old + new + [other]], dim=1, keepdim=True)
    bucket = torch.logsumexp(student_logits[:, new + [other]], dim=1, keepdim=True)
    log_s = torch.cat([student_logits[:, old], bucket], dim=1) - normaliser
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(1)
    if not reweight:
        return kl.mean()
    weights = (1.0 - log_t[:, -1].exp()).clamp_min(0.0) ** gamma
    return (weights * kl).sum() / weights.sum().clamp_min(1e-12)


def pseudo_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, old: list[int],
                      threshold: float, alpha: float = 1.0) -> tuple[torch.Tensor, float]:
    """CE over the old-class logits towards the teacher's confident old-class arg-max; (loss, kept fraction)."""
    other = teacher_logits.shape[1] - 1
    p_old = torch.softmax(alpha * teacher_logits[:, old + [other]], dim=1)
    score, arg = p_old.max(dim=1)
    keep = (arg < len(old)) & (score > threshold)
    if not bool(keep.any()):
        return student_logits.sum() * 0.0, 0.0
    ce = F.cross_entropy(student_logits[keep][:, old], arg[keep], reduction="sum") / len(keep)
    return ce, float(keep.float().mean())


class ComformerLearner(DistillLearner):
    name = "comformer"
    other_logit = True

    def uses_teacher(self) -> bool:
        return self.config.kd_weight > 0 or self.config.pseudo_weight > 0

    def train_options(self, plan: EventPlan):
        cfg = self.config
        recipe = cfg
        if plan.old_spaces and cfg.incremental_lr_scale != 1.0:
            recipe = dataclasses.replace(cfg, learning_rate=cfg.learning_rate * cfg.incremental_lr_scale)
        options = {"backbone_lr_scale": cfg.backbone_lr_scale, "clip_grad_norm": cfg.clip_grad_norm}
        old = plan.old_classes(plan.space) if plan.shared else []
        if cfg.wa_step > 0 and old:
            head = plan.student.head(deployed(plan.space))
            new = [c for c in plan.classes if c not in set(old)]

            def align(step: int):
                if step % cfg.wa_step == 0:
                    with torch.no_grad():
                        norms = head.weight.norm(dim=1)
                        head.weight[new] *= norms[old].mean() / norms[new].mean().clamp_min(1e-12)
            options["after_step"] = align
        return recipe, options

    def make_loss(self, plan: EventPlan):
        cfg = self.config
        task, space = plan.task, plan.space
        entry = plan.spaces[space]
        device = next(plan.student.parameters()).device
        mask = None
        if plan.shared:
            mask = torch.full((entry["num_classes"] + 1,), float("-inf"), device=device)
            mask[torch.tensor(entry["seen"] + [entry["num_classes"]], device=device)] = 0.0
        old_by_space = {sp: plan.old_classes(sp) for sp in plan.old_spaces} if plan.teacher is not None else {}
        old_by_space = {sp: old for sp, old in old_by_space.items() if old}
        new_by_space = {sp: [c for c in plan.spaces[sp]["seen"] if c not in set(old)]
                        for sp, old in old_by_space.items() if sp.startswith("shared:")}

        def loss_fn(b):
            logits = {n: plan.student.head(n)(b.student_pooled) for n in plan.student.names}
            current = logits[deployed(space)]
            if plan.shared:
                ce = F.cross_entropy(current + mask, b.y)
                if cfg.other_weight > 0:
                    target = torch.full_like(b.y, current.shape[1] - 1)
                    ce = ce + cfg.other_weight * F.cross_entropy(current + mask, target)
            elif task.kind == MULTI_LABEL:
                ce = F.binary_cross_entropy_with_logits(current, b.y)
            else:
                ce = F.cross_entropy(current, b.y)
            total, parts = ce, {"ce": ce.item()}
            kd_total = ce.new_zeros(())
            pseudo_total = ce.new_zeros(())
            for sp, old in old_by_space.items():
                s = logits[deployed(sp)]
                t = plan.teacher.head(deployed(sp))(b.teacher_pooled)
                if sp in new_by_space:
                    kd_total = kd_total + unbiased_kd(s, t, old, new_by_space[sp], cfg.gamma, cfg.alpha, cfg.reweight)
                    if cfg.pseudo_weight > 0:
                        pl, kept = pseudo_label_loss(s, t, old, cfg.pseudo_threshold, cfg.alpha)
                        pseudo_total = pseudo_total + pl
                        parts["pseudo_kept"] = kept
                elif plan.old_spaces[sp]["kind"] == MULTI_LABEL:
                    kd_total = kd_total + kd_kl(s, t, multi_label=True).mean()
                else:
                    kl = kd_kl(s, cfg.alpha * t)
                    w = torch.softmax(cfg.alpha * t, dim=1).max(dim=1).values ** cfg.gamma
                    kd_total = kd_total + (w * kl).sum() / w.sum().clamp_min(1e-12)
            if old_by_space:
                total = total + cfg.kd_weight * kd_total + cfg.pseudo_weight * pseudo_total
                parts.update(kd=kd_total.item(), pseudo=pseudo_total.item())
            return total, parts

        return loss_fn


@LEARNERS.register("comformer", ComformerConfig, test_overrides={"max_steps": 6, "min_steps": 3})
def make_comformer(config: ComformerConfig) -> ComformerLearner:
    """CoMFormer-cls: CE + unbiased, reweighted logit distillation and old-class pseudo-labels (task-agnostic)."""
    return ComformerLearner(config)
