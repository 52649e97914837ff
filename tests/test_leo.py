"""Acceptance tests of the ``leo`` learner (Latent Embedding Optimization on frozen features)."""

import dataclasses

import numpy as np
import pytest
import torch
from nevis_bench.learners import leo

from nevis_bench.learner_kit.features import fit_standardiser
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.protocol import SINGLE_LABEL, PredictEvent, TaskInfo, TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run.context import LearnerContext, event_context
from nevis_bench.stream import StreamData

META_TASKS = 3  # tasks 0-2 (30 classes) meta-train; tasks 3-4 (20 classes) are held out
META_STEPS = 60  # per train event
EPISODES = 200
SEEDS = (0, 1, 2)


# one intra-op thread (tests/conftest.py): these loops are many tiny ops, which several threads only slow
# down on a shared machine (measured: a 125-step curl fit took 106 s with 2 threads among other jobs, 16 s
# with one)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stream_data(tmp_path_factory):
    stream = STREAMS.get("synthetic-class-incremental").factory(tasks=5, classes_per_task=10, train_per_class=20)
    data = StreamData(stream, 2020, tmp_path_factory.mktemp("leo-data"), 32)
    data.prepare(progress=False)
    return stream, data


def _ctx(data, event, flops, seed=0):
    return event_context(data, event, flops=flops, seed=seed) if data is not None else LearnerContext(
        data=None, device=torch.device("cpu"), seed=seed, event_index=event.index, flops=flops)


def _train(stream, data, config, tasks, seed=0):
    learner, flops = leo.LeoLearner(config), FlopCounter()
    state, usages, states = learner.init(), [], []
    for i, entry in enumerate(stream.entries[:tasks]):
        event = TrainEvent(2 * i, entry.task)
        state, usage = learner.train(event, state, _ctx(data, event, flops, seed))
        usages.append(usage)
        states.append(state)
    return learner, states, usages, flops


def _held_out_episodes(stream, data, config, seed):
    """5-way 1-shot episodes (15 queries per class) from the training features of the held-out tasks."""
    xs, ys = [], []
    for entry in stream.entries[META_TASKS:]:
        x, y, _, _ = leo.task_features(config, _ctx(data, TrainEvent(0, entry.task), FlopCounter(), seed),
                                       entry.task.key, "train")
        xs.append(x)
        ys.append(y)
    cfg = dataclasses.replace(config, meta_batch=EPISODES, n_way=5, k_shot=1, val_per_class=15)
    pool = leo.EpisodePool([(torch.cat(xs), torch.cat(ys))], cfg)
    return leo.sample_episodes(pool, cfg, np.random.default_rng(123))


def _evaluate(net, config, episodes):
    support, query, query_y = episodes
    e, n, k, d = support.shape
    train_y = torch.arange(n).repeat_interleave(k).expand(e, -1)
    out = leo.inner_loop(net.eval(), support, support.reshape(e, n * k, d), train_y, config, record=True)
    accuracy = (torch.einsum("evd,end->evn", query, out["w"]).argmax(-1) == query_y).float().mean()
    drop = 1.0 - (out["loss_after_latent"] / out["loss_before"]).mean()  # mean relative drop of the latent steps
    return float(accuracy), float(drop)


def test_meta_training_beats_untrained_leo_on_held_out_classes_on_three_seeds(stream_data):
    """The ablation "leo without meta-learning": the same inner loop from the initial meta-parameters."""
    stream, data = stream_data
    config = leo.LeoConfig(meta_steps=META_STEPS, polish_steps=0)
    gains = []
    for seed in SEEDS:
        episodes = _held_out_episodes(stream, data, config, seed)
        assert episodes[0].shape[:3] == (EPISODES, 5, 1)
        untrained_learner, untrained_states, untrained_usage, _ = _train(
            stream, data, dataclasses.replace(config, meta_steps=0), 1, seed)
        untrained = untrained_learner.net_from_state(untrained_states[-1])
        learner, states, usages, flops = _train(stream, data, config, META_TASKS, seed)
        trained = learner.net_from_state(states[-1])
        untrained_acc, untrained_drop = _evaluate(untrained, config, episodes)
        trained_acc, trained_drop = _evaluate(trained, config, episodes)
        print(f"seed {seed}: held-out 5-way 1-shot accuracy: untrained {untrained_acc:.3f}, meta-trained "
              f"{trained_acc:.3f}; mean relative loss drop of the latent steps {trained_drop:.3f} "
              f"(untrained {untrained_drop:.3f}); meta-loss {usages[-1].info['meta_loss_first']:.3f} -> "
              f"{usages[-1].info['meta_loss_last']:.3f}")
        # measured (1 thread): 0.722 -> 0.801, 0.739 -> 0.773; standardised features already make the
        # untrained codes good prototypes (0.315 before issue 14), so the accuracy gain is modest: each seed
        # must gain, the mean over the seeds by 0.02; the latent steps' loss drop is the large effect
        assert trained_acc >= untrained_acc + 0.01
        gains.append(trained_acc - untrained_acc)
        # the latent steps do real work after meta-training: a large relative drop of the training loss
        assert trained_drop >= 0.5 and trained_drop >= untrained_drop + 0.3
        # the meta-parameters moved, the inner learning rates are learned
        assert not torch.equal(trained.latent_lr, untrained.latent_lr)
        assert not torch.equal(trained.finetune_lr, untrained.finetune_lr)
        if seed != SEEDS[0]:
            continue
        # meta-updates are train FLOPs: an event with meta-steps costs far more than one with none
        assert all(u.info["meta_steps"] == META_STEPS for u in usages)
        assert usages[0].flops_train > 2 * untrained_usage[0].flops_train
        # stored features grow with the tasks (16 per class); task 0's classifier is never touched again
        assert [u.info["stored_features"] for u in usages] == [160, 320, 480]
        first = stream.entries[0].task.key
        assert torch.equal(states[0]["heads"][first]["w"], states[-1]["heads"][first]["w"])
        # the standardisation statistics of every task are in the state, from its train features
        assert set(states[-1]["standardiser"]) == {e.task.key for e in stream.entries[:META_TASKS]}
        # the task just trained is predicted with its inner-loop classifier, well above chance (0.1)
        last = stream.entries[META_TASKS - 1].task
        event = PredictEvent(2 * META_TASKS - 1, last)
        batches, usage = learner.predict(event, states[-1], _ctx(data, event, flops, seed))
        scores = np.concatenate([b.scores for b in batches])
        labels = data.split(last.key, "dev_test").labels
        accuracy = float((scores.argmax(1) == labels).mean())
        print(f"dev_test accuracy on the last meta-training task: {accuracy:.3f}")
        assert accuracy >= 0.3 and usage.flops_inference > 0
        trained_classes = states[-1]["heads"][last.key]["trained"]
        assert trained_classes.sum() == 10 and (scores[:, ~trained_classes.numpy()] == 0).all()
    print(f"held-out accuracy gains {[round(g, 3) for g in gains]}")
    assert sum(gains) / len(gains) >= 0.02


def test_relation_network_cost_is_capped_for_many_classes():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(400, 32), dim=1)
    y = torch.arange(80).repeat(5)
    flops = {}
    for cap in (16, 10_000):
        config = leo.LeoConfig(latent=8, relation_partners=cap, polish_steps=0)
        learner = leo.LeoLearner(config)
        net = leo.LeoNet(32, 8)
        gen = torch.Generator().manual_seed(0)
        w, trained, flops[cap], _ = learner._solve(net, x, y, 80, False, gen, _ctx(None, TrainEvent(0, None), FlopCounter()))
        assert w.shape == (80, 32) and bool(trained.all())
    # 80 classes x 5 shots = 400 codes: all pairs (160k) vs 16 partners each (6.4k)
    assert flops[16] < flops[10_000] / 4


def test_multi_label_task_is_solved_per_label_and_polished():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 16), dim=1)
    y = (torch.rand(60, 4) > 0.6).float()
    y[:, 3] = 0.0  # a label never positive: masked out
    learner = leo.LeoLearner(leo.LeoConfig(latent=8))
    w, trained, flops, diag = learner._solve(leo.LeoNet(16, 8), x, y, 4, True, torch.Generator().manual_seed(0),
                                             _ctx(None, TrainEvent(0, None), FlopCounter()))
    assert trained.tolist() == [True, True, True, False] and flops > 0
    assert torch.equal(w[3], torch.zeros(16))
    # the default polish steps fit the per-label BCE far below the inner loop's (an untrained net: ~ln 2)
    before, polished = float(diag["inner_loss_after_inner_loop"]), float(diag["polish_loss_last"])
    print(f"per-label BCE after the inner loop {before:.3f}, after polishing {polished:.3f}")
    assert polished <= 0.85 * before


# ------------------------------------------------------------------------------------------------------
# Fixes of issue 14: standardised features, polish steps on by default (fail on the code before it)
# ------------------------------------------------------------------------------------------------------

def collinear_task(seed: int, classes: int = 20, train_per_class: int = 10, test_per_class: int = 10, dim: int = 64):
    """Features like a random convnet's: every example at cosine >= 0.98 with a large shared mean; the
    classes differ only in a small offset. Returns (task, {split: (features, labels)})."""
    g = torch.Generator().manual_seed(seed)
    shared = 10.0 + torch.rand(dim, generator=g)
    centres = torch.randn(classes, dim, generator=g) * 0.6
    splits = {}
    for split, per in (("train", train_per_class), ("dev_test", test_per_class)):
        y = torch.arange(classes).repeat_interleave(per)
        x = shared + centres[y] + 0.3 * torch.randn(len(y), dim, generator=g)
        splits[split] = (x, y)
    task = TaskInfo(key=f"collinear-{seed}", name="collinear", year=2020, kind=SINGLE_LABEL, num_classes=classes,
                    domain="object", channels=3)
    return task, splits


def patch_features(monkeypatch, module, splits):
    def fake(config, ctx, task_key, split):
        x, y = splits[split]
        return x.clone(), (y.clone() if split == "train" else None), 0.0
    monkeypatch.setattr(module, "split_features", fake)


def fit_and_score(learner, task, splits, seed):
    """Train ``learner`` on ``task`` (features patched in) and return (dev_test accuracy, state, usage)."""
    flops = FlopCounter()
    ctx = LearnerContext(data=None, device=torch.device("cpu"), seed=seed, event_index=0, flops=flops)
    state, usage = learner.train(TrainEvent(0, task), learner.init(), ctx)
    ctx = LearnerContext(data=None, device=torch.device("cpu"), seed=seed, event_index=1, flops=flops)
    batches, _ = learner.predict(PredictEvent(1, task, "dev_test"), state, ctx)
    scores = np.concatenate([b.scores for b in batches])
    return float((scores.argmax(1) == splits["dev_test"][1].numpy()).mean()), state, usage


def test_default_leo_standardises_near_collinear_features_and_polishes(monkeypatch):
    """Before issue 14 LEO fed L2-normalised but uncentred features (meta-loss stuck at ln 5, MNIST
    error 0.89) and solved tasks with the inner loop only; here defaults must learn a 20-class task."""
    config = leo.LeoConfig(meta_steps=5)  # a few meta-steps: the standardisation and polish are under test
    assert leo.LeoConfig().polish_steps >= 100 and leo.LeoConfig().standardise
    for seed in SEEDS:
        task, splits = collinear_task(seed)
        cos = torch.nn.functional.cosine_similarity(splits["train"][0], splits["train"][0].mean(0, keepdim=True))
        assert float(cos.min()) >= 0.98
        patch_features(monkeypatch, leo, splits)
        accuracy, state, usage = fit_and_score(leo.LeoLearner(config), task, splits, seed)
        print(f"seed {seed}: dev accuracy {accuracy:.3f}; info {usage.info}")
        assert accuracy >= 0.8
        if seed == SEEDS[0]:  # the code before issue 14: uncentred features, no polish (measured 0.12-0.26)
            plain = leo.LeoLearner(dataclasses.replace(config, standardise=False, polish_steps=0))
            raw, _, _ = fit_and_score(plain, task, splits, seed)
            print(f"uncentred, no polish: {raw:.3f}")
            assert raw <= accuracy - 0.3
        stats = state["standardiser"][task.key]
        expected = fit_standardiser(splits["train"][0])
        assert torch.allclose(stats["mean"], expected["mean"]) and torch.allclose(stats["std"], expected["std"])
        assert usage.info["polish_loss_last"] <= 0.5 * usage.info["inner_loss_after_inner_loop"]
        # every parameter held: meta-parameters, the task's classifier and the frozen encoder
        assert usage.peak_parameter_count > sum(v.numel() for v in state["meta"].values()) + 20 * 64
