"""Acceptance tests of the ``leo`` learner (Latent Embedding Optimization on frozen features)."""

import dataclasses

import numpy as np
import pytest
import torch
from nevis_bench.learners import leo

from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.protocol import PredictEvent, TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run.context import LearnerContext, event_context
from nevis_bench.stream import StreamData

META_TASKS = 3  # tasks 0-2 (30 classes) meta-train; tasks 3-4 (20 classes) are held out
META_STEPS = 100  # per train event
EPISODES = 200


@pytest.fixture(scope="module")
def stream_data(tmp_path_factory):
    stream = STREAMS.get("synthetic-class-incremental").factory(tasks=5, classes_per_task=10, train_per_class=20)
    data = StreamData(stream, 2020, tmp_path_factory.mktemp("leo-data"), 32)
    data.prepare(progress=False)
    return stream, data


def _ctx(data, event, flops):
    return event_context(data, event, flops=flops) if data is not None else LearnerContext(
        data=None, device=torch.device("cpu"), seed=0, event_index=event.index, flops=flops)


def _train(stream, data, config, tasks):
    learner, flops = leo.LeoLearner(config), FlopCounter()
    state, usages, states = learner.init(), [], []
    for i, entry in enumerate(stream.entries[:tasks]):
        event = TrainEvent(2 * i, entry.task)
        state, usage = learner.train(event, state, _ctx(data, event, flops))
        usages.append(usage)
        states.append(state)
    return learner, states, usages, flops


def _held_out_episodes(stream, data, config):
    """5-way 1-shot episodes (15 queries per class) from the training features of the held-out tasks."""
    xs, ys = [], []
    for entry in stream.entries[META_TASKS:]:
        x, y, _ = leo._features(data.split(entry.task.key, "train"), _ctx(data, TrainEvent(0, entry.task), FlopCounter()), config)
        xs.append(x)
        ys.append(y)
    cfg = dataclasses.replace(config, meta_batch=EPISODES, n_way=5, k_shot=1, val_per_class=15)
    return leo.sample_episodes([(torch.cat(xs), torch.cat(ys))], cfg, torch.Generator().manual_seed(123))


def _evaluate(net, config, episodes):
    support, query, query_y = episodes
    e, n, k, d = support.shape
    train_y = torch.arange(n).repeat_interleave(k).expand(e, -1)
    out = leo.inner_loop(net.eval(), support, support.reshape(e, n * k, d), train_y, config, record=True)
    accuracy = (torch.einsum("evd,end->evn", query, out["w"]).argmax(-1) == query_y).float().mean()
    lowered = (out["loss_after_latent"] < out["loss_before"]).float().mean()
    return float(accuracy), float(lowered)


def test_meta_training_beats_untrained_leo_on_held_out_classes(stream_data):
    stream, data = stream_data
    config = leo.LeoConfig(meta_steps=META_STEPS)
    episodes = _held_out_episodes(stream, data, config)
    assert episodes[0].shape[:3] == (EPISODES, 5, 1)
    # the untrained model: the initial meta-parameters (no meta-step taken)
    untrained_learner, untrained_states, untrained_usage, _ = _train(
        stream, data, dataclasses.replace(config, meta_steps=0), 1)
    untrained = untrained_learner.net_from_state(untrained_states[-1])
    learner, states, usages, flops = _train(stream, data, config, META_TASKS)
    trained = learner.net_from_state(states[-1])
    untrained_acc, untrained_lowered = _evaluate(untrained, config, episodes)
    trained_acc, trained_lowered = _evaluate(trained, config, episodes)
    print(f"held-out 5-way 1-shot accuracy: untrained {untrained_acc:.3f}, meta-trained {trained_acc:.3f}; "
          f"latent steps lower the training loss in {trained_lowered:.1%} of episodes (untrained {untrained_lowered:.1%})")
    assert trained_acc >= untrained_acc + 0.10
    assert trained_lowered >= 0.9
    # the meta-parameters moved, the inner learning rates are learned
    assert not torch.equal(trained.latent_lr, untrained.latent_lr)
    assert not torch.equal(trained.finetune_lr, untrained.finetune_lr)
    # meta-updates are train FLOPs: an event with 100 meta-steps costs far more than one with none
    assert all(u.info["meta_steps"] == META_STEPS for u in usages)
    assert usages[0].flops_train > 2 * untrained_usage[0].flops_train
    # stored features grow with the tasks (16 per class); task 0's classifier is never touched again
    assert [u.info["stored_features"] for u in usages] == [160, 320, 480]
    assert torch.equal(states[0]["heads"][stream.entries[0].task.key]["w"],
                       states[-1]["heads"][stream.entries[0].task.key]["w"])
    # the task just trained is predicted with its inner-loop classifier, well above chance (0.1)
    last = stream.entries[META_TASKS - 1].task
    event = PredictEvent(2 * META_TASKS - 1, last)
    batches, usage = learner.predict(event, states[-1], _ctx(data, event, flops))
    scores = np.concatenate([b.scores for b in batches])
    labels = data.split(last.key, "dev_test").labels
    accuracy = float((scores.argmax(1) == labels).mean())
    print(f"dev_test accuracy on the last meta-training task: {accuracy:.3f}")
    assert accuracy >= 0.3 and usage.flops_inference > 0
    trained_classes = states[-1]["heads"][last.key]["trained"]
    assert trained_classes.sum() == 10 and (scores[:, ~trained_classes.numpy()] == 0).all()


def test_relation_network_cost_is_capped_for_many_classes():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(400, 32), dim=1)
    y = torch.arange(80).repeat(5)
    flops = {}
    for cap in (16, 10_000):
        config = leo.LeoConfig(latent=8, relation_partners=cap)
        learner = leo.LeoLearner(config)
        net = leo.LeoNet(32, 8)
        gen = torch.Generator().manual_seed(0)
        w, trained, flops[cap], info = learner._solve(net, x, y, 80, False, gen, _ctx(None, TrainEvent(0, None), FlopCounter()))
        assert w.shape == (80, 32) and bool(trained.all()) and info["solved_classes"] == 80
    # 80 classes x 5 shots = 400 codes: all pairs (160k) vs 16 partners each (6.4k)
    assert flops[16] < flops[10_000] / 4


def test_multi_label_task_is_solved_per_label():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 16), dim=1)
    y = (torch.rand(60, 4) > 0.6).float()
    y[:, 3] = 0.0  # a label never positive: masked out
    learner = leo.LeoLearner(leo.LeoConfig(latent=8))
    w, trained, flops, info = learner._solve(leo.LeoNet(16, 8), x, y, 4, True, torch.Generator().manual_seed(0),
                                             _ctx(None, TrainEvent(0, None), FlopCounter()))
    assert trained.tolist() == [True, True, True, False] and flops > 0
    assert torch.equal(w[3], torch.zeros(16)) and info["inner_loss_after_latent"] < info["inner_loss_before"]
