"""``latent_replay``: heads and buffers per task key unless tasks share a label space, and replay
beats its own no-replay ablation on a class-incremental stream (issue 14)."""

import numpy as np
import pytest
import torch

from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.learners import latent_replay
from nevis_bench.learners.latent_replay import LatentReplayConfig, LatentReplayLearner
from nevis_bench.protocol import SINGLE_LABEL, PredictEvent, TaskInfo, TrainEvent
from nevis_bench.run import runner
from nevis_bench.run.context import LearnerContext


def _task(key: str, label_space: str = "") -> TaskInfo:
    return TaskInfo(key=key, name=key, year=2000, kind=SINGLE_LABEL, num_classes=4, domain="objects", channels=3,
                    label_space=label_space)


def _splits():
    """Two 4-class tasks on the SAME features (4 well-separated clusters) with conflicting labels."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    cluster = np.repeat(np.arange(4), 25)
    x = torch.tensor(centres[cluster] + rng.normal(size=(100, 16)), dtype=torch.float32)
    a_labels = torch.tensor(cluster)
    b_labels = torch.tensor((cluster + 1) % 4)  # task b names every cluster differently
    return {("a", "train"): (x, a_labels), ("b", "train"): (x, b_labels), ("a", "test"): (x, None),
            ("b", "test"): (x, None)}, a_labels, b_labels


def _run(monkeypatch, label_space: str):
    splits, a_labels, b_labels = _splits()
    monkeypatch.setattr(latent_replay, "split_features",
                        lambda config, ctx, key, split: (splits[(key, split)][0].clone(), splits[(key, split)][1], 1.0))
    monkeypatch.setattr(latent_replay, "held_parameters", lambda config, seed, *held: {})
    learner = LatentReplayLearner(LatentReplayConfig(epochs=30, buffer_per_class=10))

    def ctx(index):
        return LearnerContext(data=None, device=torch.device("cpu"), seed=0, event_index=index, flops=FlopCounter())

    def predict(state, key, index):
        predictions, _ = learner.predict(PredictEvent(index, _task(key, label_space), "test"), state, ctx(index))
        return np.concatenate([p.scores for p in predictions])

    state = learner.init()
    state, _ = learner.train(TrainEvent(0, _task("a", label_space)), state, ctx(0))
    a_before = predict(state, "a", 1)
    state, usage = learner.train(TrainEvent(2, _task("b", label_space)), state, ctx(2))
    return state, usage, a_before, predict(state, "a", 3), predict(state, "b", 4), a_labels, b_labels


def test_tasks_without_a_shared_label_space_get_their_own_head_and_buffer(monkeypatch):
    state, usage, a_before, a_after, b_scores, a_labels, b_labels = _run(monkeypatch, label_space="")
    # the old keying by (kind, class count) put both 4-class tasks on one head and one buffer
    assert sorted(state["heads"]) == ["task:a", "task:b"] and sorted(state["buffer"]) == ["task:a", "task:b"]
    assert usage.info["head_key"] == "task:b" and usage.info["buffer_size"] == 40
    assert np.array_equal(a_before, a_after)  # a frozen encoder and its own head: no forgetting at all
    assert (a_after.argmax(1) == a_labels.numpy()).mean() >= 0.9
    assert (b_scores.argmax(1) == b_labels.numpy()).mean() >= 0.9
    torch.testing.assert_close(state["standardisers"]["task:a"]["mean"], state["standardisers"]["task:b"]["mean"])


def test_tasks_naming_one_label_space_share_head_buffer_and_statistics(monkeypatch):
    state, usage, a_before, a_after, _, a_labels, b_labels = _run(monkeypatch, label_space="shared")
    assert list(state["heads"]) == ["space:shared"] and list(state["buffer"]) == ["space:shared"]
    assert state["seen"]["space:shared"] == [0, 1, 2, 3]
    # the buffer keeps a's classes (10 each) and adds none of b's: they are already buffered
    assert usage.info["buffer_size"] == 40 and torch.equal(state["buffer"]["space:shared"]["y"].bincount(),
                                                           torch.tensor([10, 10, 10, 10]))
    assert (a_before.argmax(1) == a_labels.numpy()).mean() >= 0.9
    assert not np.array_equal(a_before, a_after)  # one shared head: training b changed a's scores


def _final_eval(tmp_path, data_dir, seed: int, buffer_per_class: int) -> dict:
    options = {"base": "coil20", "tasks": 5, "classes_per_task": 4, "train_per_class": 20, "eval_per_class": 5}
    config = {"encoder": "random:small_convnet", "encoder_input_size": 32, "epochs": 20,
              "buffer_per_class": buffer_per_class}
    values = {"stream": "synthetic-class-incremental", "learner": "latent_replay", "seed": seed,
              "runs_dir": str(tmp_path / "runs"), "data_dir": str(data_dir), "progress": False, "final_eval": True,
              "run_name": f"s{seed}-m{buffer_per_class}", "learner_config": config, "stream_options": options}
    run_dir, evaluator = runner.start(values)
    evaluator.run()
    return run_dir.read_summary()["final_eval"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_beats_its_no_replay_ablation_on_a_class_incremental_stream(tmp_path, data_dir, seed):
    replay = _final_eval(tmp_path, data_dir, seed, 20)
    ablation = _final_eval(tmp_path, data_dir, seed, 0)
    print(f"seed {seed}: final error replay {replay['final_average_error']:.3f} / no replay "
          f"{ablation['final_average_error']:.3f}; forgetting {replay['average_forgetting']:.3f} / "
          f"{ablation['average_forgetting']:.3f}")
    assert ablation["final_average_error"] - replay["final_average_error"] >= 0.15
    assert ablation["average_forgetting"] - replay["average_forgetting"] >= 0.15
