"""The standard baselines of issue 19 (er, der, ewc, lwf, agem): their pieces, and on a class-incremental
split against finetune_prev (less forgetting; er/der more final accuracy; more FLOPs where a step does more).

Measured numbers and the full-budget leaderboard runs: docs/learners/{er,der,ewc,lwf,agem}.md."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nevis_bench.learners import _replay as rp
from nevis_bench.learners.agem import project
from nevis_bench.learners.lwf import distillation


class _Split:
    def __init__(self, n, offset=0):
        self.images = (np.arange(n)[:, None, None, None] + offset).astype(np.uint8) * np.ones((1, 4, 4, 3), np.uint8)
        self.labels = np.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def take(self, idx):
        return self.images[idx], self.labels[idx]


def _slots(buffer):
    return sorted(s for g in buffer["groups"].values() for s in g["slots"].tolist())


def test_reservoir_keeps_capacity_and_holds_each_task_in_proportion_to_its_size():
    shares = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        buffer = rp.empty_buffer(50)
        buffer, kept = rp.reservoir_insert(buffer, "a", _Split(30), rng)
        assert kept == 30 and rp.buffer_size(buffer) == 30  # not full: everything enters
        buffer, _ = rp.reservoir_insert(buffer, "b", _Split(170, offset=30), rng)
        assert rp.buffer_size(buffer) == 50 and _slots(buffer) == list(range(50))  # full, each slot once
        assert buffer["seen"] == 200
        shares.append(len(buffer["groups"]["a"]["slots"]) / 50)
        # each example's image and label travel together
        g = buffer["groups"]["b"]
        assert torch.equal(g["labels"], (g["images"][:, 0, 0, 0].long() - 30) % 3)
    # algorithm R: every example of the stream is kept with probability 50/200, so task a holds 30/200
    assert abs(np.mean(shares) - 30 / 200) < 0.04


def test_reservoir_insertion_is_a_function_of_the_seed():
    a, _ = rp.reservoir_insert(rp.empty_buffer(10), "t", _Split(40), np.random.default_rng(3))
    b, _ = rp.reservoir_insert(rp.empty_buffer(10), "t", _Split(40), np.random.default_rng(3))
    c, _ = rp.reservoir_insert(rp.empty_buffer(10), "t", _Split(40), np.random.default_rng(4))
    assert torch.equal(a["groups"]["t"]["images"], b["groups"]["t"]["images"])
    assert not torch.equal(a["groups"]["t"]["images"], c["groups"]["t"]["images"])


def test_replay_sampler_gives_the_same_batch_for_the_same_step_and_groups_rows_by_head():
    buffer, _ = rp.reservoir_insert(rp.empty_buffer(60), "a", _Split(20), np.random.default_rng(0))
    buffer, _ = rp.reservoir_insert(buffer, "b", _Split(20, offset=100), np.random.default_rng(1))
    recipe = SimpleNamespace(augment=rp.RecipeConfig(input_size=4).augment, channels_last=False)
    sampler = rp.ReplaySampler(buffer, 16, recipe, seed=7, device="cpu")
    first, again, other = sampler.sample(5), sampler.sample(5), sampler.sample(6)
    assert torch.equal(first.x, again.x) and not torch.equal(first.x, other.x)
    assert len(first) == 16 and [g.head for g in first.groups] == ["a", "b"]
    assert first.groups[0].start == 0 and first.groups[-1].stop == 16
    assert rp.ReplaySampler(rp.empty_buffer(5), 16, recipe, 0, "cpu").size == 0  # empty buffer: no replay


def test_agem_projection_removes_the_conflicting_component_and_leaves_an_agreeing_gradient():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, -1.0])
    project([p], [torch.tensor([0.0, 1.0])])  # conflict: g . g_ref = -1
    assert torch.allclose(p.grad, torch.tensor([1.0, 0.0]))  # projected: g . g_ref = 0
    p.grad = torch.tensor([1.0, 1.0])
    project([p], [torch.tensor([0.0, 1.0])])  # no conflict: unchanged
    assert torch.allclose(p.grad, torch.tensor([1.0, 1.0]))


def test_lwf_distillation_is_zero_for_equal_outputs_and_positive_otherwise():
    z = torch.randn(6, 5)
    for multi in (False, True):
        assert distillation(z, z.clone(), 2.0, multi).abs().item() < 1e-6
        assert distillation(z + torch.randn(6, 5), z, 2.0, multi).item() > 1e-3


def test_lwf_distils_a_shared_head_the_way_it_is_scored():
    # after tasks a (classes 0-3) and b (4-7) of one label space, training task c (8-11)
    from nevis_bench.learners.lwf import LwFConfig, LwFLearner

    state = {**rp.initial_state(), "heads": {"space:s": {}, "task:x": {}},
             "kinds": {"space:s": [False, 12], "task:x": [False, 3]}, "classes": {"space:s": list(range(8))},
             "head_of": {"a": "space:s", "b": "space:s", "x": "task:x"},
             "task_classes": {"a": [0, 1, 2, 3], "b": [4, 5, 6, 7], "x": [0, 1, 2]}}
    task = SimpleNamespace(key="c", label_space="s")
    # task-aware scores: one softmax per earlier task, as each is predicted (measured on the class-incremental
    # stream, 3 seeds: forgetting 0.160 against 0.256 with one softmax over all 8 old classes)
    assert LwFLearner(LwFConfig()).old_outputs(state, task) == [
        ("space:s", [0, 1, 2, 3], False), ("space:s", [4, 5, 6, 7], False), ("task:x", None, False)]
    assert LwFLearner(LwFConfig(scores="space")).old_outputs(state, task) == [
        ("space:s", list(range(8)), False), ("task:x", None, False)]


# ----------------------------------------------------------------------------- runs

from nevis_bench.run import runner  # noqa: E402

BASELINES = ("er", "der", "ewc", "lwf", "agem")
SMALL = {"max_steps": 4, "min_steps": 4, "patience": 0}
SMALL_EXTRA = {"er": {"buffer_size": 40, "replay_batch_size": 8}, "der": {"buffer_size": 40, "replay_batch_size": 8},
               "agem": {"buffer_size": 40, "replay_batch_size": 8}, "ewc": {"fisher_examples": 8}}


def _run(tmp_path, data_dir, learner, config, stream="synthetic-debug", seed=0, stream_options=None):
    values = {"stream": stream, "learner": learner, "runs_dir": str(tmp_path / "runs"), "data_dir": str(data_dir),
              "progress": False, "final_eval": True, "run_name": f"{learner}-{seed}", "seed": seed,
              "learner_config": config}
    if stream_options:
        values["stream_options"] = stream_options
    run_dir, evaluator = runner.start(values)
    assert evaluator.run() == "complete"
    return run_dir


def _train_events(run_dir):
    return [e for e in run_dir.read_events() if e["event_type"] == "train"]


def test_each_baseline_counts_its_extra_work_above_finetune_prev_event_by_event(tmp_path, data_dir):
    # Same steps (patience 0: no early stopping), same validations: the differences are the work each
    # method adds. First event: no buffer / teacher / Fisher yet, except EWC's Fisher after the task
    # and DER++'s stored logits (measured: 2.386e10 against 2.266e10 for finetune_prev).
    base = _train_events(_run(tmp_path, data_dir, "finetune_prev", SMALL))
    for name in BASELINES:
        run_dir = _run(tmp_path, data_dir, name, {**SMALL, **SMALL_EXTRA.get(name, {})})
        events = _train_events(run_dir)
        assert [e["learner_info"]["steps"] for e in events] == [e["learner_info"]["steps"] for e in base]
        assert [e["flops_validation"] for e in events] == [e["flops_validation"] for e in base]
        first, second = events[0]["flops_train"], events[1]["flops_train"]
        if name == "ewc":  # the Fisher passes after each task, nothing more per step
            assert first > base[0]["flops_train"] and second > base[1]["flops_train"]
        elif name == "der":  # the forward passes of the logits stored with the buffer's examples, then replay
            assert first > base[0]["flops_train"] and second > 1.05 * base[1]["flops_train"]
        else:
            assert first == pytest.approx(base[0]["flops_train"], rel=0.02)  # nothing to replay / distil yet
            assert second > 1.05 * base[1]["flops_train"], (name, second, base[1]["flops_train"])
        if name in ("er", "der", "agem"):
            assert events[1]["learner_info"]["buffer_examples"] == 40  # full buffer, its bytes in the state
            assert run_dir.read_summary()["peak_state_bytes"] > 40 * 32 * 32  # raw images held


# ----------------------------------------------------------------------------- the acceptance of issue 19

SEEDS = (0, 1, 2)
# how far one seed's forgetting margin may fall below 0 (same code, another CPU or thread count: the
# comformer and muhdi ablation margins moved by 0.03 to 0.11 per seed between 1 and 2 threads)
SEED_TOLERANCE = 0.05
_CI_RUNS: dict = {}


def _ci_final(tmp_path_factory, data_dir, learner, seed):
    """(average forgetting, final average accuracy, headline FLOPs) on synthetic-class-incremental at
    default settings (5 tasks x 4 classes, the leaderboard's setup); one run per (learner, seed)."""
    if (learner, seed) not in _CI_RUNS:
        run_dir = _run(tmp_path_factory.mktemp(f"ci-{learner}-{seed}"), data_dir, learner, {},
                       stream="synthetic-class-incremental", seed=seed)
        summary = run_dir.read_summary()
        final = summary["final_eval"]
        # the headline total the records keep (train + validation + search + selection, summed over the stream)
        _CI_RUNS[learner, seed] = (final["average_forgetting"], 1.0 - final["final_average_error"],
                                   summary["cumulative_flops"])
    return _CI_RUNS[learner, seed]


@pytest.mark.slow  # 18 runs at the leaderboard's defaults: forgetting needs the full budget (see below)
@pytest.mark.parametrize("name", BASELINES)
def test_on_the_class_incremental_stream_each_baseline_forgets_less_than_finetune_prev(name, tmp_path_factory, data_dir):
    # At reduced budgets (3 tasks, 20 steps a task) finetune_prev's task-aware heads did not forget at
    # all (forgetting -0.05 on seed 0: the backbone kept improving), so this runs at the defaults.
    margins = []
    for seed in SEEDS:
        base = _ci_final(tmp_path_factory, data_dir, "finetune_prev", seed)
        method = _ci_final(tmp_path_factory, data_dir, name, seed)
        print(f"seed {seed}: forgetting {name} {method[0]:.3f}, finetune_prev {base[0]:.3f}")
        margins.append(base[0] - method[0])
        assert method[2] > base[2]  # more headline FLOPs: replay, teacher or Fisher on top of the same steps
    # Measured (1 thread): mean margins er 0.227, der 0.256, ewc 0.119, lwf 0.123, agem 0.196; the smallest
    # single-seed margin is ewc's 0.007 on seed 0 (0.312 against 0.319), inside what float summation order
    # moves between machines, so one seed may trail by a little while the mean must clear 0.05.
    assert sum(margins) / len(margins) > 0.05 and min(margins) > -SEED_TOLERANCE, margins


@pytest.mark.slow
@pytest.mark.parametrize("name", ("er", "der"))
def test_on_the_class_incremental_stream_replay_beats_finetune_prev_final_accuracy(name, tmp_path_factory, data_dir):
    margins = []
    for seed in SEEDS:
        base = _ci_final(tmp_path_factory, data_dir, "finetune_prev", seed)
        method = _ci_final(tmp_path_factory, data_dir, name, seed)
        print(f"seed {seed}: final accuracy {name} {method[1]:.3f}, finetune_prev {base[1]:.3f}")
        margins.append(method[1] - base[1])
    # measured: er 0.870-0.985 against 0.725-0.76 (mean margin 0.21), der 0.955-1.0 (0.24)
    assert sum(margins) / len(margins) > 0.1 and min(margins) > 0.0, margins
