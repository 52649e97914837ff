"""The distillation learners' shared pieces (learners/_distillation.py): label spaces, averaging of
distillation over old heads, validation on dev, host syncs."""

from types import SimpleNamespace

import numpy as np
import torch
from nevis_bench.learners._distillation import (
    Batch, DistillConfig, EventPlan, MultiHeadNet, assign_space, deployed, initial_state, updated_spaces,
)
from torch import nn

from nevis_bench.protocol import SINGLE_LABEL, TaskInfo


def _task(key, num_classes=100, label_space=""):
    return TaskInfo(key=key, name=key, year=2000, kind=SINGLE_LABEL, num_classes=num_classes, domain="object",
                    channels=3, label_space=label_space)


def _ctx(labels):
    return SimpleNamespace(data=SimpleNamespace(split=lambda key, split: SimpleNamespace(labels=labels[key])))


def _assign_all(config, tasks, labels):
    state, spaces = initial_state(), []
    for task in tasks:
        space, classes = assign_space(config, task, state, _ctx(labels))
        new_spaces, task_space = updated_spaces(state, task, space, classes)
        state = {**state, "spaces": new_spaces, "task_space": task_space}
        spaces.append(space)
    return spaces, state


def test_two_different_100_class_tasks_missing_classes_keep_their_own_heads_on_an_ordinary_stream():
    # LFW then sketches, both 100 classes, both training splits miss classes: on an ordinary stream
    # (no TaskInfo.label_space) their labels mean different things, so they must not share a head.
    # (The old "auto" rule put both into "shared:100".)
    labels = {"lfw": np.arange(0, 100, 2), "sketch": np.arange(1, 100, 3)}
    spaces, state = _assign_all(DistillConfig(), [_task("lfw"), _task("sketch")], labels)
    assert spaces[0] != spaces[1] and not any(s.startswith("shared:") for s in spaces), spaces
    assert state["spaces"][spaces[0]]["seen"] == list(range(100))  # the task's whole label space


def test_tasks_naming_one_label_space_share_a_head_and_its_seen_classes():
    labels = {"a": np.array([0, 1, 1, 0]), "b": np.array([2, 3, 3]), "other": np.array([0, 1])}
    tasks = [_task("a", 4, "ci"), _task("b", 4, "ci"), _task("other", 4)]
    spaces, state = _assign_all(DistillConfig(), tasks, labels)
    assert spaces[0] == spaces[1] == "shared:ci" and spaces[2] == "task:other"
    assert state["spaces"]["shared:ci"]["seen"] == [0, 1, 2, 3]
    assert state["spaces"]["shared:ci"]["tasks"] == {"a": [0, 1], "b": [2, 3]}
    spaces, _ = _assign_all(DistillConfig(label_space="per_task"), tasks, labels)
    assert len(set(spaces)) == 3


def _comformer_kd(num_old):
    """The comformer loss's distillation part with ``num_old`` old per-task heads, each moved from the
    teacher by the same amount."""
    from nevis_bench.learners.comformer import ComformerConfig, ComformerLearner

    torch.manual_seed(0)
    old_spaces = {f"task:old{i}": {"num_classes": 3, "kind": SINGLE_LABEL, "seen": [0, 1, 2],
                                   "tasks": {f"old{i}": [0, 1, 2]}} for i in range(num_old)}
    spaces = {**old_spaces, "task:new": {"num_classes": 3, "kind": SINGLE_LABEL, "seen": [0, 1, 2],
                                         "tasks": {"new": [0, 1, 2]}}}
    base = nn.Linear(4, 3)
    teacher = MultiHeadNet(nn.Identity(), {deployed(sp): base for sp in old_spaces})
    moved = nn.Linear(4, 3)
    with torch.no_grad():
        moved.weight.copy_(base.weight)
        moved.weight[0] += 1.0
        moved.bias.copy_(base.bias)
    student = MultiHeadNet(nn.Identity(), {deployed(sp): moved for sp in spaces})
    plan = EventPlan(_task("new", 3), "task:new", [0, 1, 2], spaces, old_spaces, student, teacher)
    x = torch.randn(16, 4)
    _, parts = ComformerLearner(ComformerConfig(pseudo_weight=0.0)).make_loss(plan)(
        Batch(x, torch.zeros(16, dtype=torch.int64), [], x, [], x))
    return float(parts["kd"])


def test_comformer_averages_distillation_over_old_heads_instead_of_summing():
    # With the sum (the old code) the distillation weight grew with the task count (13-24 on
    # synthetic-short); averaged, 1 or 8 equally-moved old heads cost the same.
    one, eight = _comformer_kd(1), _comformer_kd(8)
    assert one > 1e-3
    assert abs(eight - one) < 1e-5 * one, (one, eight)


def test_distillation_learners_select_on_dev_and_count_the_parameters_they_hold(tmp_path, data_dir):
    # Both learners train through the kit's fit: validations on dev select the kept state, their
    # FLOPs are flops_validation; peak_parameter_count is what is held after the event (backbone +
    # deployed heads; the teacher is rebuilt from them at the next event, the specialist dropped).
    # The old loop never validated and counted student + teacher.
    from nevis_bench.learner_kit.models import make_backbone, parameter_count
    from nevis_bench.run import runner
    from tests.helpers import run_values

    backbone = parameter_count(make_backbone("small_convnet"))
    for name in ("comformer", "muhdi"):
        config = {"max_steps": 6, "min_steps": 3, "eval_every_steps": 2, "patience": 0, "input_size": 16}
        run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, learner=name, learner_config=config,
                                                     run_name=name))
        assert evaluator.run() == "complete"
        train = [e for e in run_dir.read_events() if e["event_type"] == "train"]
        heads = 0
        for event in train:
            info = event["learner_info"]
            assert info["validations"] == 4 and 0 <= info["best_dev_error"] <= 1, (name, info)
            assert event["flops_validation"] > 0, (name, event)
            assert info["label_space"] == f"task:{event['task_key']}"  # synthetic-debug shares no labels
            heads += 256 * 20 + 20  # both tasks of synthetic-debug have 20 classes
            assert event["peak_parameter_count"] == backbone + heads, (name, event["peak_parameter_count"])
