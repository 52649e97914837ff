"""Acceptance tests of the ``curl`` learner (supervised CURL on frozen features; unsupervised mode with
dynamic expansion)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nevis_bench.run import runner
from nevis_bench.run.checkpoint import load as load_checkpoint
from nevis_bench.run.checkpoint import round_trip
from nevis_bench.run.context import EventData, LearnerContext
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.learners._curl_core import CurlConfig, CurlNet, expand
from nevis_bench.learners.curl import CurlLearner
from nevis_bench.protocol import PredictEvent, TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.stream import StreamData
from nevis_bench.conformance import check_learner, states_equal

# A CPU-sized budget that still lets the generative model become class-specific: at 150 steps a task
# the replayed samples were classified as their component at near chance (0.40 on 4 classes after the
# first task) and replay did not help; at 300 steps they are (0.96), see docs/learners/curl.md.
# (The stream names its shared label space, so the components of all tasks share one space.)
# task-agnostic scores over the shared space: the paper's setting, where generative replay is what keeps
# the earlier classes (task-aware scores, the default, would hide most of the forgetting)
CONFIG = {"scores": "space", "steps": 300, "hidden": 64, "latent": 16, "batch_size": 32, "learning_rate": 0.005}
TASKS = 4
SEEDS = (0, 1, 2)


def _final(tmp_path, data_dir, replay: bool, seed: int = 0):
    values = {
        "stream": "synthetic-class-incremental", "learner": "curl", "runs_dir": str(tmp_path / "runs"),
        "data_dir": str(data_dir), "progress": False, "final_eval": True, "run_name": f"replay-{replay}-{seed}",
        "stream_options": {"tasks": TASKS},  # 4 tasks x 4 classes, one shared label space of 16
        "learner_config": {**CONFIG, "replay": replay}, "seed": seed,
    }
    run_dir, evaluator = runner.start(values)
    assert evaluator.run() == "complete"
    summary = run_dir.read_summary()["final_eval"]
    state = load_checkpoint(run_dir.checkpoint_path)["learner_state"]
    return 1.0 - summary["final_average_error"], summary, run_dir.read_events(), state


def test_curl_generative_replay_forgets_less_on_a_class_incremental_split_on_three_seeds(tmp_path, data_dir):
    """The ablation of the paper: the same supervised CURL without mixture generative replay."""
    for seed in SEEDS:
        with_replay, summary, events, state = _final(tmp_path, data_dir, replay=True, seed=seed)
        without_replay, summary_off, _, _ = _final(tmp_path, data_dir, replay=False, seed=seed)
        print(f"seed {seed}: final average accuracy: replay {with_replay:.3f} {summary['rows'][-1]['values']}, "
              f"no replay {without_replay:.3f} {summary_off['rows'][-1]['values']}")
        # the acceptance criterion: at least 10 points more final average accuracy (task-agnostic)
        assert with_replay >= without_replay + 0.10
        # the method learns each task (4 classes among the ones seen so far) ...
        just_after = [v for row in summary["rows"][:-1] for v in row["values"] if v is not None]
        assert len(just_after) == TASKS and min(just_after) >= 0.5
        # ... and replay holds the earlier tasks (without it they fall towards zero: class-incremental)
        final = summary["rows"][-1]["values"]
        assert sum(final[:-1]) / (TASKS - 1) >= 0.2  # measured 0.275 (seed 0); without replay 0.05
        assert sum(summary_off["rows"][-1]["values"][:-1]) / (TASKS - 1) <= 0.15
    # (the last seed's run) one component per class seen, shared across the tasks of the one label space
    assert len(state["components"]) == 4 * TASKS
    assert list(state["standardiser"]) == [state["components"][0][0]]  # the space's first task's statistics
    assert all(torch.isfinite(v).all() for v in state["params"].values())
    infos = [e["learner_info"] for e in events if e["event_type"] == "train"]
    assert infos[0]["generated_steps"] == 0 and all(i["generated_steps"] == CONFIG["steps"] // 2 for i in infos[1:])
    assert all(e["flops_train"] > 0 for e in events if e["event_type"] == "train")


def test_prior_matching_sets_each_prior_to_the_moments_of_its_aggregate_posterior():
    torch.manual_seed(0)
    net = CurlNet(dim=6, hidden=8, latent=3, components=3)
    x, y = torch.randn(40, 6), torch.tensor([0, 2] * 20)
    before = net.prior_mu[1].detach().clone()
    net.match_priors(x, y, torch.tensor([0, 1, 2]))  # component 1 has no example: left alone
    assert torch.equal(net.prior_mu[1].detach(), before)
    with torch.no_grad():
        mu, sig = net.posterior(net.encoder(x), y)
        pmu, psig = net.prior(torch.tensor([0, 2]))
        for row, k in enumerate((0, 2)):
            m = mu[y == k].mean(0)
            var = (sig[y == k] ** 2).mean(0) + mu[y == k].var(0, unbiased=False)
            assert torch.allclose(pmu[row], m, atol=1e-5)
            assert torch.allclose(psig[row], var.sqrt(), atol=1e-4)
            # it is the Gaussian prior with the smallest average KL(q || p) over the component's examples
            def avg_kl(pm, ps, m=mu[y == k], s=sig[y == k]):
                return (torch.log(ps / s) + (s ** 2 + (m - pm) ** 2) / (2 * ps ** 2) - 0.5).sum(-1).mean()
            best = avg_kl(pmu[row], psig[row])
            assert best < avg_kl(pmu[row] + 0.1, psig[row]) and best < avg_kl(pmu[row], psig[row] * 1.2)


# ---------------------------------------------------------------------------------------------------
# Unsupervised mode with dynamic expansion (mode="unsupervised")
# ---------------------------------------------------------------------------------------------------

UNSUP = {"mode": "unsupervised", "shared_label_space": True, "steps": 300, "hidden": 64, "latent": 16,
         "batch_size": 32}
ORDER = [0, 1, 2, 1]  # three tasks of 4 new classes each, then a repeat of the second


@pytest.fixture(scope="module")
def split_data(tmp_path_factory):
    stream = STREAMS.get("synthetic-class-incremental").factory(tasks=3)  # 3 x 4 classes, labels 0..11
    data = StreamData(stream, 2020, tmp_path_factory.mktemp("curl-unsup-data"), 32)
    data.prepare(progress=False)
    return stream, data


def _unsupervised_run(stream, data, order, **overrides):
    learner, flops = CurlLearner(CurlConfig(**{**UNSUP, **overrides})), FlopCounter()
    state, usages, active = learner.init(), [], []
    for i, t in enumerate(order):
        event = TrainEvent(2 * i, stream.entries[t].task)
        ctx = LearnerContext(data=EventData(data, event), device=torch.device("cpu"), seed=0, event_index=2 * i, flops=flops)
        state, usage = learner.train(event, state, ctx)
        usages.append(usage)
        active.append(state["n_active"])
    correct = total = 0
    for t in sorted(set(order)):  # task-agnostic over the 12 classes: chance is 1/12
        task = stream.entries[t].task
        event = PredictEvent(99, task, "dev_test")
        ctx = LearnerContext(data=EventData(data, event), device=torch.device("cpu"), seed=0, event_index=99, flops=flops)
        batches, _ = learner.predict(event, state, ctx)
        scores = torch.cat([torch.as_tensor(b.scores) for b in batches])
        labels = torch.as_tensor(data.split(task.key, "dev_test").labels)
        correct, total = correct + int((scores.argmax(1) == labels).sum()), total + len(labels)
    return state, usages, active, correct / total


# one intra-op thread (tests/conftest.py): unsupervised CURL's 300-step run was not bit-reproducible with
# 2 intra-op threads (readout accuracy 0.150-0.217 over repeated runs on one machine before issue 14); with
# one thread it is
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_unsupervised_curl_expands_on_new_classes_and_reads_out_labels(split_data):
    stream, data = split_data
    state, usages, active, accuracy = _unsupervised_run(stream, data, ORDER)
    print(f"active components after each event: {active}; accuracy over 12 classes {accuracy:.3f} (chance 0.083)")
    # a component is added when new classes arrive, none on a repeat of data seen before
    assert active[0] >= 1 and active[1] > active[0] and active[2] > active[1]
    assert active[3] == active[2] and usages[3].info["expansions"] == 0
    # the label readout of the components: well above chance (one component for everything, as without
    # expansion, reads out a single label: exactly chance, 1/12, on these balanced splits)
    assert accuracy >= 2.0 / 12
    # every FLOP is charged as train FLOPs, expansions included
    cfg = CurlConfig(**UNSUP)
    for usage in usages:
        info = usage.info
        parts = ("encode", "steps", "replay", "expansion", "readout", "priors")
        assert usage.flops_train == pytest.approx(sum(info[f"flops_{p}"] for p in parts))
        assert info["flops_expansion"] == sum(e["flops"] for e in info["expansion_log"])
        for e in info["expansion_log"]:  # measured independently: the copy, 10 passes, the prior update
            net = CurlNet(state["feature_dim"], cfg.hidden, cfg.latent, cfg.max_components)
            buffer = torch.randn(e["buffer"], state["feature_dim"])
            with FlopCounterMode(display=False) as counter:
                expand(net, buffer, 1, cfg, 1.0, torch.Generator().manual_seed(0))
            assert e["flops"] == counter.get_total_flops() > 0
    assert sum(u.info["expansions"] for u in usages) == state["expansions"] == active[-1] - 1
    # the state (expanded components, readout, running ELBO statistics) is plain data and round-trips
    assert states_equal(state, round_trip(state))
    assert all(torch.isfinite(v).all() for v in state["params"].values())


def test_unsupervised_curl_passes_the_conformance_kit(tmp_path, data_dir):
    # a budget small enough for the kit, with expansion reachable in it (burn-in, wait and buffer shrunk)
    overrides = {"mode": "unsupervised", "steps": 40, "batch_size": 16, "hidden": 32, "latent": 8,
                 "exp_burn_in": 5, "exp_wait_steps": 5, "exp_buffer_size": 8, "exp_passes": 2,
                 "exp_thresh_sd": 1.0}
    check_learner("curl", tmp_path, overrides=overrides, data_dir=data_dir)
