"""``comformer``: CoMFormer's adaptive distillation and pseudo-labels, for classification (Tier B).

Cermelli, Cord, Douillard, "CoMFormer: Continual Learning in Semantic and Panoptic Segmentation",
CVPR 2023 (code: fcdl94/CoMFormer). Task-agnostic, single head; see learners/_distillation.py for
the label spaces, the training loop (the shared SGD recipe) and the FLOP accounting.

Follows the paper/code: the frozen previous model is the teacher on the current images; unbiased
knowledge distillation (UKD: the teacher's softmax over [old classes, other] against the student's
old classes plus one bucket of new classes + "other", samples weighted by (1 - p_old(other))^gamma,
``gamma`` 2, ``alpha`` on the teacher's logits, ``kd_weight``); old-class pseudo-labels where the
teacher's arg-max is not "other" and exceeds ``pseudo_threshold``; a growing classifier with the
"other" logit last; weight aligning of the new classes' rows to the old rows' mean norm
(``wa_step``, the code's ``WA_Hook``).

Deviations [deviation]: one linear head + one "other" logit instead of queries, masks and matching;
plain CE, "other" never a target; a pseudo-label is a CE target over the old-class logits only
(``pseudo_weight``); the harness's SGD recipe (through the kit's ``fit``: validation on dev keeps the
best state, early stopping) instead of AdamW; per-task label spaces reduce UKD to LwF-style KD, and
distillation is averaged over the old heads (its weight does not grow with the task count);
``kd_weight`` 1 (README 10: with this recipe 10 and 3 stop the new classes from being learned);
weight aligning on by default (the paper's scripts set it off). Off by default (no robust gain
measured): ``backbone_lr_scale``, ``incremental_lr_scale``, ``clip_grad_norm``, ``other_weight``.
``kd_weight = pseudo_weight = wa_step = 0`` is plain fine-tuning of the shared head;
``distillation = "plain"`` is the plain-distillation ablation (KD over the old classes, no bucket,
no reweighting, no pseudo-labels).

Measured numbers and the full notes: docs/learners/comformer.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from nevis_bench.learners._distillation import (
    DistillConfig, DistillLearner, EventPlan, deployed, kd_kl,
)

from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.registry import LEARNERS


@dataclass
class ComformerConfig(DistillConfig):
    # no early stopping, the full step budget with the best validated state kept (the reference's recipe
    # never stops early either): with patience 3, synthetic COIL-100 as a first task stopped at step 49 of
    # 94 on a dev plateau at error 0.635 (0.655 on dev_test); trained to the end it reaches 0.17 (seed 0)
    patience: int = 0
    # The protocol names the task of every predict event, and finetune_prev, muhdi and the standard
    # baselines score a task over its own classes: ti by default compares like with like on the
    # class-incremental leaderboard; ta (every seen class) is the paper's class-incremental setting.
    mode: str = "ti"
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
    distillation: str = "ukd"  # ukd: CoMFormer's; plain: the ablation (LwF-style KD, no pseudo-labels)

    def __post_init__(self):
        super().__post_init__()
        if self.distillation not in ("ukd", "plain"):
            raise ValueError("distillation must be 'ukd' or 'plain'")


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
                      threshold: float, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """CE over the old-class logits towards the teacher's confident old-class arg-max, summed over the
    kept samples and divided by the batch size; (loss, kept fraction as a detached tensor). No host
    sync: samples are kept by a 0/1 weight, not by boolean indexing."""
    other = teacher_logits.shape[1] - 1
    p_old = torch.softmax(alpha * teacher_logits[:, old + [other]].float(), dim=1)
    score, arg = p_old.max(dim=1)
    keep = ((arg < len(old)) & (score > threshold)).float()
    target = arg.clamp_max(len(old) - 1)
    ce = F.cross_entropy(student_logits[:, old].float(), target, reduction="none")
    return (keep * ce).sum() / len(keep), keep.mean().detach()


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
            old_rows = torch.tensor(old, dtype=torch.int64, device=head.weight.device)
            new_rows = torch.tensor(new, dtype=torch.int64, device=head.weight.device)

            def align(step: int):
                if step % cfg.wa_step == 0:
                    with torch.no_grad():
                        norms = head.weight.norm(dim=1)
                        scale = norms[old_rows].mean() / norms[new_rows].mean().clamp_min(1e-12)
                        head.weight[new_rows] *= scale
            options["after_step"] = align
        return recipe, options

    def make_loss(self, plan: EventPlan):
        cfg = self.config
        space = plan.space
        entry = plan.spaces[space]
        kind = plan.kind
        device = next(plan.student.parameters()).device
        mask = None
        if plan.shared:
            mask = torch.full((entry["num_classes"] + 1,), float("-inf"), device=device)
            mask[torch.tensor(entry["seen"] + [entry["num_classes"]], device=device)] = 0.0
        old_by_space = {sp: plan.old_classes(sp) for sp in plan.old_spaces} if plan.teacher is not None else {}
        old_by_space = {sp: old for sp, old in old_by_space.items() if old}
        new_by_space = {sp: [c for c in plan.spaces[sp]["seen"] if c not in set(old)]
                        for sp, old in old_by_space.items() if sp.startswith("shared:")}
        plain = cfg.distillation == "plain"
        pseudo_on = cfg.pseudo_weight > 0 and not plain

        def loss_fn(b):
            logits = {n: plan.student.head(n)(b.student_pooled) for n in plan.student.names}
            current = logits[deployed(space)]
            if plan.shared:
                ce = kind.loss(current + mask, b.y)
                if cfg.other_weight > 0:
                    target = torch.full_like(b.y, current.shape[1] - 1)
                    ce = ce + cfg.other_weight * F.cross_entropy(current + mask, target)
            else:
                ce = kind.loss(current, b.y)
            total, parts = ce, {"ce": ce.detach()}
            if not old_by_space:
                return total, parts
            kd_total = ce.new_zeros((), dtype=torch.float32)
            pseudo_total = ce.new_zeros((), dtype=torch.float32)
            for sp, old in old_by_space.items():
                s = logits[deployed(sp)]
                t = plan.teacher.head(deployed(sp))(b.teacher_pooled)
                if sp in new_by_space:
                    if plain:  # LwF: KD over the old classes' softmax, no bucket, no weights
                        kd_total = kd_total + kd_kl(s[:, old], cfg.alpha * t[:, old]).mean()
                    else:
                        kd_total = kd_total + unbiased_kd(s.float(), t.float(), old, new_by_space[sp],
                                                          cfg.gamma, cfg.alpha, cfg.reweight)
                    if pseudo_on:
                        pl, kept = pseudo_label_loss(s, t, old, cfg.pseudo_threshold, cfg.alpha)
                        pseudo_total = pseudo_total + pl
                        parts["pseudo_kept"] = kept
                elif plan.old_spaces[sp]["kind"] == MULTI_LABEL:
                    kd_total = kd_total + kd_kl(s, t, multi_label=True).mean()
                else:
                    kl = kd_kl(s, cfg.alpha * t)
                    if plain or not cfg.reweight:
                        kd_total = kd_total + kl.mean()
                    else:
                        w = torch.softmax(cfg.alpha * t.float(), dim=1).max(dim=1).values ** cfg.gamma
                        kd_total = kd_total + (w * kl).sum() / w.sum().clamp_min(1e-12)
            # averaged over the old heads: the weight of distillation does not grow with the task count
            kd_total = kd_total / len(old_by_space)
            pseudo_total = pseudo_total / len(old_by_space)
            total = total + cfg.kd_weight * kd_total + cfg.pseudo_weight * pseudo_total
            parts.update(kd=kd_total.detach(), pseudo=pseudo_total.detach())
            return total, parts

        return loss_fn


@LEARNERS.register("comformer", ComformerConfig, test_overrides={"max_steps": 6, "min_steps": 3})
def make_comformer(config: ComformerConfig) -> ComformerLearner:
    """CoMFormer-cls: CE + unbiased, reweighted logit distillation and old-class pseudo-labels (task-agnostic)."""
    return ComformerLearner(config)
