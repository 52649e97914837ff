import copy

import torch
from nevis_bench.learners._distillation import Batch, EventPlan, MultiHeadNet, deployed, stage_features
from nevis_bench.learners.muhdi import MuhdiConfig, MuhdiLearner, specialist_name
from torch import nn

from nevis_bench.learner_kit.models import make_backbone
from nevis_bench.protocol import SINGLE_LABEL, TaskInfo

SPACE = "shared:6"


def _task(key):
    return TaskInfo(key=key, name=key, year=2000, kind=SINGLE_LABEL, num_classes=6, domain="object", channels=3)


def _plan(mode, specialist="separate"):
    """Task 'c' (classes 4, 5) after tasks 'a' (0, 1) and 'b' (2, 3), student = a copy of the teacher."""
    learner = MuhdiLearner(MuhdiConfig(mode=mode, specialist=specialist))
    torch.manual_seed(0)
    backbone = make_backbone("small_convnet")
    teacher = MultiHeadNet(backbone, {deployed(SPACE): nn.Linear(backbone.feature_dim, 6)}).eval()
    old = {SPACE: {"num_classes": 6, "kind": SINGLE_LABEL, "seen": [0, 1, 2, 3], "tasks": {"a": [0, 1], "b": [2, 3]}}}
    new = copy.deepcopy(old)
    new[SPACE]["seen"] = list(range(6))
    new[SPACE]["tasks"]["c"] = [4, 5]
    heads = {deployed(SPACE): copy.deepcopy(teacher.head(deployed(SPACE)))}
    for name, outputs in learner.extra_heads(_task("c"), SPACE, [4, 5]).items():
        heads[name] = nn.Linear(backbone.feature_dim, outputs)
    student = MultiHeadNet(copy.deepcopy(backbone), heads).eval()
    return learner, EventPlan(_task("c"), SPACE, [4, 5], new, old, student, teacher)


def _loss_parts(learner, plan, x, y):
    maps, pooled = stage_features(plan.student.backbone, x)
    with torch.no_grad():
        t_maps, t_pooled = stage_features(plan.teacher.backbone, x)
    return learner.make_loss(plan)(Batch(x, y, maps, pooled, t_maps, t_pooled))


def test_teacher_terms_are_exactly_zero_for_identical_student_and_teacher_and_positive_otherwise():
    x = torch.rand(8, 3, 16, 16)
    y = torch.tensor([4, 5] * 4)
    for mode in ("ti", "ta"):
        learner, plan = _plan(mode)
        loss, parts = _loss_parts(learner, plan, x, y)
        assert parts["kt"] == 0.0 and parts["pod"] == 0.0, (mode, parts)  # exactly
        assert parts["ce"] > 0 and torch.isfinite(loss)
        # the specialist term is 0 too when the specialist equals the agnostic head on its classes
        spe, agn = plan.student.head(specialist_name(SPACE)), plan.student.head(deployed(SPACE))
        rows = [4, 5] if mode == "ti" else list(range(6))
        with torch.no_grad():
            spe.weight.copy_(agn.weight[rows])
            spe.bias.copy_(agn.bias[rows])
        _, parts = _loss_parts(learner, plan, x, y)
        assert parts["spe_kd"] == 0.0 and parts["kt"] == 0.0 and parts["pod"] == 0.0, (mode, parts)
        # a student that drifts from the teacher pays both teacher terms
        with torch.no_grad():
            for p in plan.student.backbone.parameters():
                p.add_(0.05 * torch.randn_like(p))
        _, parts = _loss_parts(learner, plan, x, y)
        assert parts["kt"] > 1e-6 and parts["pod"] > 1e-6, (mode, parts)


def test_teacher_distils_every_old_task_head_in_ti_and_the_old_class_slice_in_ta():
    learner, plan = _plan("ti")
    assert learner.teacher_groups(plan) == [(SPACE, [0, 1], False), (SPACE, [2, 3], False)]
    assert learner.extra_heads(plan.task, SPACE, [4, 5]) == {specialist_name(SPACE): 2}
    learner, plan = _plan("ta")
    assert learner.teacher_groups(plan) == [(SPACE, [0, 1, 2, 3], False)]
    assert learner.extra_heads(plan.task, SPACE, [4, 5]) == {specialist_name(SPACE): 6}
    # the baseline switches: no specialist head, no teacher
    assert MuhdiLearner(MuhdiConfig(specialist="none")).extra_heads(plan.task, SPACE, [4, 5]) == {}
    # deployed (the default): TI slices and per-task heads are the specialist; TA keeps a separate one
    assert MuhdiLearner(MuhdiConfig()).extra_heads(plan.task, SPACE, [4, 5]) == {}
    assert MuhdiLearner(MuhdiConfig(mode="ta")).extra_heads(plan.task, SPACE, [4, 5]) == {specialist_name(SPACE): 6}
    assert not MuhdiLearner(MuhdiConfig(kt_weight=0.0, feat_weight=0.0)).uses_teacher()


# ----------------------------------------------------------------------------- runs on a 5-task split

# 3 tasks x 2 classes of the synthetic COIL-100 stand-in, one shared label space, no replay.
STREAM = {"tasks": 3, "classes_per_task": 2, "train_per_class": 32, "eval_per_class": 32}
BUDGET = {"max_steps": 40, "min_steps": 40, "input_size": 16, "batch_size": 32, "mode": "ti"}
# The ablation: the same learner and network with no distillation from the previous model
# (kt_weight = feat_weight = 0), i.e. plain fine-tuning of the shared backbone with one slice of the
# shared head per task (TI). finetune_prev would not do: it keeps a separate head per task key.
NO_DISTILLATION = {**BUDGET, "kt_weight": 0.0, "feat_weight": 0.0}
SEEDS = (0, 1, 2)
# Sized from the measured spread: margins 0.19 / 0.18 / 0.10 at 1 torch thread and 0.141 / 0.180 / -0.008
# at 2 (seed 2 moved by 0.11 between thread counts), means 0.157 and 0.104: each seed is held to minus
# that spread, the mean of the three to half the lower measured mean.
MUHDI_MIN_MARGIN, MUHDI_MEAN_MARGIN = -0.11, 0.05

_RUNS: dict[tuple, tuple[dict, list[dict]]] = {}


def _run(tmp_path_factory, data_dir, name, learner_config, stream=STREAM, seed=0):
    """(final_eval summary, events) of one run, computed once per test session."""
    if (name, seed) not in _RUNS:
        from nevis_bench.run import runner
        values = {
            "stream": "synthetic-class-incremental", "learner": "muhdi",
            "runs_dir": str(tmp_path_factory.mktemp("muhdi_runs")), "data_dir": str(data_dir), "progress": False,
            "final_eval": True, "run_name": f"{name}-{seed}", "seed": seed, "stream_options": stream,
            "learner_config": learner_config,
        }
        run_dir, evaluator = runner.start(values)
        assert evaluator.run() == "complete"
        _RUNS[name, seed] = (run_dir.read_summary()["final_eval"], run_dir.read_events())
    return _RUNS[name, seed]


def test_muhdi_forgets_less_than_its_no_distillation_ablation_on_three_seeds(tmp_path_factory, data_dir):
    # TI is where the paper's claim carries over: MuHDi keeps the old heads working by distilling the
    # previous model (mostly through local POD: the teacher's logit KL keeps the code's weight 1e-5).
    # Measured numbers (per seed, 1 and 2 torch threads) in docs/learners/muhdi.md.
    margins = []
    for seed in SEEDS:
        base, _ = _run(tmp_path_factory, data_dir, "no_distillation", NO_DISTILLATION, seed=seed)
        method, _ = _run(tmp_path_factory, data_dir, "muhdi", BUDGET, seed=seed)
        print(f"seed {seed}: forgetting muhdi {method['average_forgetting']:.3f}, "
              f"no distillation {base['average_forgetting']:.3f}")
        margins.append(base["average_forgetting"] - method["average_forgetting"])
        # every task was learned (TI chance is 0.5)
        just_trained = [row["values"][i] for i, row in enumerate(method["rows"][:-1])]
        assert min(just_trained) > 0.7, just_trained
    assert min(margins) > MUHDI_MIN_MARGIN and sum(margins) / len(margins) > MUHDI_MEAN_MARGIN, margins


def test_train_flops_include_the_teacher_forward(tmp_path_factory, data_dir):
    _, base = _run(tmp_path_factory, data_dir, "no_distillation", NO_DISTILLATION)
    _, method = _run(tmp_path_factory, data_dir, "muhdi", BUDGET)
    base_train = [e["flops_train"] / e["learner_info"]["steps"] for e in base if e["event_type"] == "train"]
    method_train = [e["flops_train"] / e["learner_info"]["steps"] for e in method if e["event_type"] == "train"]
    # task 1: no teacher, and the deployed specialist is the task's rows: the same step
    assert method_train[0] == base_train[0]
    # later tasks: + one teacher forward per step, about a third of a forward + backward
    for m, b in zip(method_train[1:], base_train[1:]):
        assert 1.25 < m / b < 1.45, (m, b)


def test_task_agnostic_mode_learns_every_task(tmp_path_factory, data_dir):
    final, _ = _run(tmp_path_factory, data_dir, "muhdi_ta", {**BUDGET, "mode": "ta"})
    # accuracy on each task right after training it, over every class seen so far (chance 1/2, 1/4, 1/6)
    just_trained = [row["values"][i] for i, row in enumerate(final["rows"][:-1])]
    assert min(just_trained) > 0.6, just_trained


# ----------------------------------------------------------------------------- the specialist, deployed

# one 20-class task at the recipe's defaults but 16x16 inputs (no teacher: the first task)
ONE_TASK = {"tasks": 1, "classes_per_task": 20, "train_per_class": 16, "eval_per_class": 8}


def test_the_deployed_specialist_learns_a_many_class_first_task_as_plain_training_does(tmp_path_factory, data_dir):
    # The old default trained the deployed head only through a temperature-2 KL from a specialist
    # trained from scratch at the same time, on 8 epochs: COIL-100 at task 1 of synthetic-short, error
    # 0.815 against 0.215 for independent (seed 0; now 0.19). Deployed, the task's rows are the
    # specialist, trained with CE over the recipe's 12 epochs: exactly plain training. Measured here
    # (seed 0): error 0.069; a separate specialist on the same 12 epochs 0.094.
    assert MuhdiConfig().epochs == 12.0
    default, _ = _run(tmp_path_factory, data_dir, "one_default", {"input_size": 16}, ONE_TASK)
    plain, _ = _run(tmp_path_factory, data_dir, "one_plain",
                    {"input_size": 16, "specialist": "none", "kt_weight": 0.0, "feat_weight": 0.0}, ONE_TASK)
    assert default["final_average_error"] == plain["final_average_error"], (default, plain)
    assert default["final_average_error"] < 0.2, default  # chance: 0.95
