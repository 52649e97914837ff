"""``dynamic_knn``: kNN transfer selection (fresh start selectable), hyperparameter search, FLOPs."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from nevis_bench.learners.dynamic_knn import FRESH, DynamicKnnConfig, DynamicKnnLearner, knn_score, search_space
from nevis_bench.streams.synthetic.streams import SyntheticSource

from nevis_bench.data import catalog
from nevis_bench.data.sources import Availability
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.learner_kit.models import make_backbone
from nevis_bench.protocol import MULTI_LABEL, SINGLE_LABEL, TaskInfo, TrainEvent
from nevis_bench.run.checkpoint import round_trip
from nevis_bench.run.context import EventData, LearnerContext, RunInterrupted
from nevis_bench.stream import Stream, StreamData, StreamEntry


@dataclass(frozen=True)
class NoisyCopy:
    """The same images as ``base`` with Gaussian pixel noise (a near-copy task under another key)."""

    base: SyntheticSource
    sigma: float = 8.0

    def fingerprint(self, image_size: int) -> str:
        return f"{self.base.fingerprint(image_size)}:noise={self.sigma}"

    def availability(self) -> Availability:
        return Availability(True)

    def describe(self) -> str:
        return f"noisy copy of {self.base.describe()}"

    def build(self, image_size: int) -> dict:
        rng = np.random.default_rng(1)
        out = {}
        for split, (images, labels, *_) in self.base.build(image_size).items():
            noisy = np.clip(images + rng.normal(0.0, self.sigma, images.shape), 0, 255).astype(np.uint8)
            out[split] = (noisy, labels)
        return out


def _entry(dataset: str, year: int, key: str | None = None, noisy: bool = False) -> StreamEntry:
    facts = catalog.DATASETS[dataset]
    classes = min(facts.num_classes, 10)
    sizes = (("train", 16 * classes), ("dev", 6 * classes), ("dev_test", 6 * classes), ("test", 6 * classes))
    source = SyntheticSource(facts, classes, sizes)
    task = TaskInfo(key=key or dataset, name=key or dataset, year=year, kind=SINGLE_LABEL, num_classes=classes,
                    domain=facts.domain, channels=facts.channels)
    return StreamEntry(year, task, NoisyCopy(source) if noisy else source)


CONFIG = DynamicKnnConfig(max_steps=40, min_steps=40, batch_size=32, num_trials=2)


@pytest.fixture(scope="module")
def constructed_run(tmp_path_factory):
    """Task A (notMNIST-like letters), unrelated task B (scenes), then a noisy near-copy of A."""
    stream = Stream("dknn-constructed", [
        _entry("notmnist", 2000), _entry("scenes8", 2001), _entry("notmnist", 2002, key="a_copy", noisy=True),
    ])
    data = StreamData(stream, 2020, tmp_path_factory.mktemp("dknn-data"), 32)
    data.prepare(progress=False)
    learner, flops = DynamicKnnLearner(CONFIG), FlopCounter()
    state, usages = learner.init(), []
    for event in stream.events(2020):
        ctx = LearnerContext(data=EventData(data, event), device=torch.device("cpu"), seed=0, event_index=event.index,
                             flops=flops, progress=False)
        if isinstance(event, TrainEvent):
            state, usage = learner.train(event, state, ctx)
            usages.append(usage)
        else:
            _, usage = learner.predict(event, state, ctx)
            assert usage.flops_inference > 0
    return data, state, usages


def test_near_copy_selects_the_copied_tasks_model_and_an_unrelated_task_a_fresh_start(constructed_run):
    _, state, (first, unrelated, copy) = constructed_run
    for usage in (first, unrelated, copy):
        scores = {k: round(v, 3) for k, v in usage.info["knn_scores"].items()}
        print("chosen", usage.info["chosen"], "kNN scores", scores)
    # the first task has only the fresh candidate
    assert first.info["chosen"] == FRESH and list(first.info["knn_scores"]) == [FRESH]
    # an unrelated task: random features beat the letters model, and the fresh start is taken (the
    # reference could never choose it once a previous task existed)
    scores = unrelated.info["knn_scores"]
    assert list(scores) == ["notmnist", FRESH]
    assert unrelated.info["chosen"] == FRESH and unrelated.info["chosen_fresh"]
    assert scores[FRESH] > scores["notmnist"]
    # the near-copy: A's model scores clearly best, above the fresh start and the unrelated task's model
    scores = copy.info["knn_scores"]
    assert list(scores) == ["notmnist", "scenes8", FRESH]
    assert copy.info["chosen"] == "notmnist" and not copy.info["chosen_fresh"]
    assert scores["notmnist"] >= max(scores["scenes8"], scores[FRESH]) + 0.05
    assert list(state["models"]) == ["notmnist", "scenes8", "a_copy"]


def test_search_keeps_the_trial_with_the_best_kept_state_and_flops_are_split_by_phase(constructed_run):
    data, state, usages = constructed_run
    for usage in usages:
        trials = usage.info["trials"]
        assert len(trials) == CONFIG.num_trials
        errors = [t["best_dev_error"] for t in trials]
        kept = usage.info["kept_trial"]
        assert errors[kept] == min(errors) and usage.info["best_dev_error"] == min(errors)
        for t in trials:
            assert CONFIG.lr_min <= t["learning_rate"] <= CONFIG.lr_max
            assert 0 <= t["label_smoothing"] <= CONFIG.label_smoothing_max
        assert len({t["learning_rate"] for t in trials}) == len(trials)  # distinct draws
        # train = the kept trial; search = every discarded trial; all positive
        assert usage.flops_train == trials[kept]["flops"] > 0
        # every trial's validations are validation FLOPs; search is the discarded trials' steps
        assert usage.flops_validation == sum(t["flops_validation"] for t in trials) > trials[kept]["flops_validation"]
        assert usage.flops_search == sum(t["flops"] for i, t in enumerate(trials) if i != kept) > 0
    # selection FLOPs = every candidate's forward passes over the scored examples + the distances
    counter, backbone = FlopCounter(), make_backbone("small_convnet")
    example = (3, CONFIG.input_size, CONFIG.input_size)
    for usage in usages:
        n_train, n_dev = usage.info["knn_examples"]["train"], usage.info["knn_examples"]["dev"]
        per_candidate = (counter.forward_examples(backbone, example, n_train, CONFIG.knn_batch_size)
                         + counter.forward_examples(backbone, example, n_dev, CONFIG.knn_batch_size)
                         + 2 * n_dev * n_train * backbone.feature_dim)
        assert usage.flops_selection == len(usage.info["knn_scores"]) * per_candidate > 0
    # the kept model is stored: its dev error is the kept trial's
    from nevis_bench.learners._finetuning import build_classifier

    from nevis_bench.learner_kit.training import evaluate_error

    task = TaskInfo(key="a_copy", name="a_copy", year=2002, kind=SINGLE_LABEL, num_classes=10,
                    domain=catalog.DATASETS["notmnist"].domain, channels=1)
    ctx = LearnerContext(data=EventData(data, TrainEvent(4, task)), device=torch.device("cpu"), seed=0, event_index=4,
                         flops=FlopCounter(), progress=False)
    saved = state["models"]["a_copy"]
    model = build_classifier(CONFIG, task, ctx, saved["backbone"], saved["head"])
    error = evaluate_error(model, task, data.split("a_copy", "dev"), CONFIG, "cpu")
    assert math.isclose(error, usages[2].info["best_dev_error"])
    assert error < 0.5  # the copy of A is learned (chance: 0.9)


def test_search_space_is_seeded_log_uniform_and_knn_score_handles_multi_label():
    cfg = DynamicKnnConfig(num_trials=200, lr_min=1e-4, lr_max=1e-1, label_smoothing_max=0.3)
    space = search_space(cfg, seed=3)
    assert space == search_space(cfg, seed=3) and space != search_space(cfg, seed=4)
    logs = np.log10([s["learning_rate"] for s in space])
    assert logs.min() >= -4 and logs.max() <= -1 and abs(np.median(logs) + 2.5) < 0.3  # uniform in log space
    smoothing = np.array([s["label_smoothing"] for s in space])
    assert smoothing.min() >= 0 and smoothing.max() <= 0.3 and abs(smoothing.mean() - 0.15) < 0.03
    # kNN: separable clusters score 1, shuffled labels score near chance
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 10
    y = np.repeat(np.arange(4), 20)
    x = centres[y] + rng.normal(size=(80, 8))
    assert knn_score(x[::2], y[::2], x[1::2], y[1::2], SINGLE_LABEL, 5) == 1.0
    assert knn_score(x[::2], rng.permutation(y)[::2], x[1::2], y[1::2], SINGLE_LABEL, 5) < 0.6
    multi = np.eye(4, dtype=np.float32)[y]
    multi[:, 3] = 1.0  # a label present everywhere
    assert knn_score(x[::2], multi[::2], x[1::2], multi[1::2], MULTI_LABEL, 5) == pytest.approx(1.0)


def test_a_stop_inside_the_second_trial_resumes_to_the_same_model_and_usage(constructed_run):
    data, state, _ = constructed_run
    config = DynamicKnnConfig(max_steps=6, min_steps=6, batch_size=16, num_trials=2)
    learner = DynamicKnnLearner(config)
    previous = {"models": {"scenes8": state["models"]["scenes8"]}}
    event = TrainEvent(index=4, task=data.stream.entries[2].task)

    def context(resume=None, saved=None):
        stop = saved is not None  # stop at the first checkpoint inside trial 1
        saved = [] if saved is None else saved
        return LearnerContext(
            data=EventData(data, event), device=torch.device("cpu"), seed=0, event_index=4, flops=FlopCounter(),
            progress=False, resume_state=resume, checkpoint_every_steps=3, checkpoint_every_seconds=1e9,
            write_checkpoint=lambda s: saved.append(round_trip(s)),
            stop_requested=lambda: stop and bool(saved) and saved[-1]["trial"] == 1,
        )

    reference_state, reference_usage = learner.train(event, previous, context())
    saved = []
    with pytest.raises(RunInterrupted):
        learner.train(event, previous, context(saved=saved))
    assert saved[-1]["trial"] == 1 and len(saved[-1]["outer"]["trials"]) == 1  # stopped inside trial 1
    resumed_state, resumed_usage = learner.train(event, previous, context(resume=saved[-1]))
    assert resumed_usage == reference_usage
    for part in ("backbone", "head"):
        for name, tensor in reference_state["models"]["a_copy"][part].items():
            assert torch.equal(tensor, resumed_state["models"]["a_copy"][part][name]), name


def test_every_trial_gets_independents_per_trial_budget_and_selection_uses_the_kit_knn():
    from nevis_bench.learner_kit.training import RecipeConfig
    from nevis_bench.registry import LEARNERS

    independent = LEARNERS.get("independent").config_class()
    ours = DynamicKnnConfig()
    for name in ("epochs", "min_steps", "max_steps", "batch_size", "backbone", "patience"):
        assert getattr(ours, name) == getattr(independent, name) == getattr(RecipeConfig(), name), name
    # the kit's kNN: distance ties to the lower reference index, vote ties to the lower class
    train_x = torch.tensor([[1.0], [-1.0], [1.0], [3.0]])
    assert knn_score(train_x, np.array([2, 1, 0, 0]), torch.zeros(1, 1), np.array([2]), SINGLE_LABEL, 1) == 1.0
    assert knn_score(train_x, np.array([2, 1, 0, 0]), torch.zeros(1, 1), np.array([1]), SINGLE_LABEL, 2) == 1.0
