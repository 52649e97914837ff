"""``knn`` and ``ncm`` scoring on hand-built features, the kit's kNN at scale, and the per-task
standardiser of the frozen-feature learners (issue 14)."""

import math
import subprocess
import sys
import textwrap

import torch

from nevis_bench.learner_kit.knn import knn_scores
from nevis_bench.learner_kit.models import parameter_usage
from nevis_bench.learner_kit.tasks import TaskKind
from nevis_bench.learners import _per_task_features
from nevis_bench.learners.knn import KnnConfig, KnnLearner
from nevis_bench.learners.ncm import NcmConfig, NcmLearner
from nevis_bench.protocol import SINGLE_LABEL, PredictEvent, TaskInfo, TrainEvent
from nevis_bench.run.context import LearnerContext
from nevis_bench.learner_kit.flops import FlopCounter

SINGLE = TaskKind(multi_label=False, num_classes=4)
MULTI = TaskKind(multi_label=True, num_classes=3)


def _brute_force(references, labels, queries, k, num_classes, multi_label):
    """Every distance in float64, neighbours ordered by (distance, index)."""
    out = torch.zeros(len(queries), num_classes, dtype=torch.float64)
    for i, q in enumerate(queries.double()):
        d = ((references.double() - q) ** 2).sum(1)
        order = sorted(range(len(references)), key=lambda j: (float(d[j]), j))[:k]
        votes = labels[order].double() if multi_label else torch.nn.functional.one_hot(labels[order], num_classes).double()
        out[i] = votes.mean(0)
    return out


def test_knn_votes_ties_and_multi_label_means_on_hand_built_features():
    learner = KnnLearner(KnnConfig(k=3))
    refs = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    model, flops, info = learner.fit(refs, torch.tensor([0, 0, 1, 2]), SINGLE, None)
    assert flops == 0 and info == {"references": 4}
    scores, flops = learner.score(model, torch.tensor([[0.4], [9.0]]), SINGLE)
    # query 0.4: neighbours 0, 1, 2 (two votes for class 0, one for 1); query 9: 10, 2, 1
    torch.testing.assert_close(scores, torch.tensor([[2 / 3, 1 / 3, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0]]))
    assert flops == 2 * 2 * 4 * 1
    # distance ties go to the lower reference index: three references at distance 1 from the query
    tie_refs, tie_labels = torch.tensor([[1.0], [-1.0], [1.0], [5.0]]), torch.tensor([3, 1, 2, 0])
    one, _ = knn_scores(tie_refs, tie_labels, torch.zeros(1, 1), 1, 4, False)
    two, _ = knn_scores(tie_refs, tie_labels, torch.zeros(1, 1), 2, 4, False)
    assert one.tolist() == [[0, 0, 0, 1]] and two.tolist() == [[0, 0.5, 0, 0.5]]
    # multi-label: the mean of the neighbours' multi-hot labels, a probability per class
    multi = KnnLearner(KnnConfig(k=2))
    y = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    model, _, _ = multi.fit(torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]]), y, MULTI, None)
    scores, _ = multi.score(model, torch.tensor([[0.0, 0.2]]), MULTI)
    torch.testing.assert_close(scores, torch.tensor([[1.0, 0.5, 0.5]]))
    # k above the number of references: every reference votes
    scores, _ = KnnLearner(KnnConfig(k=50)).score({"x": refs, "y": torch.tensor([0, 0, 1, 2])},
                                                   torch.tensor([[0.0]]), SINGLE)
    torch.testing.assert_close(scores, torch.tensor([[0.5, 0.25, 0.25, 0.0]]))


def test_kit_knn_agrees_with_brute_force_with_many_ties_and_any_chunk_size():
    g = torch.Generator().manual_seed(0)
    refs = torch.randint(0, 3, (60, 2), generator=g).float()  # integer grid: many equal distances
    labels = torch.randint(0, 5, (60,), generator=g)
    queries = torch.randint(0, 3, (17, 2), generator=g).float()
    expected = _brute_force(refs, labels, queries, 7, 5, False)
    for chunk in (1, 4, 1024):
        scores, flops = knn_scores(refs, labels, queries, 7, 5, False, chunk=chunk)
        torch.testing.assert_close(scores.double(), expected)
        assert flops == 2 * 17 * 60 * 2
    multi = (torch.rand(60, 4, generator=g) > 0.5).float()
    scores, _ = knn_scores(refs, multi, queries, 5, 4, True, chunk=3)
    torch.testing.assert_close(scores.double(), _brute_force(refs, multi, queries, 5, 4, True))


SCALE_SCRIPT = textwrap.dedent("""
    import resource, sys, time, torch
    from nevis_bench.learner_kit.knn import knn_scores
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    refs, labels = torch.randn(100_000, 32, generator=g), torch.randint(0, 100, (100_000,), generator=g)
    queries = torch.randn(2_000, 32, generator=g)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    scores, flops = knn_scores(refs, labels, queries, 5, 100, False, chunk=256)
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # MiB (Linux: KiB)
    # brute force in float64 for a few queries whose k-th and (k+1)-th distances are well apart
    checked = 0
    for i in range(40):
        d = ((refs.double() - queries[i].double()) ** 2).sum(1)
        values, order = torch.sort(d, stable=True)
        if values[5] - values[4] < 1e-3:
            continue
        expected = torch.bincount(labels[order[:5]], minlength=100).double() / 5
        assert torch.allclose(scores[i].double(), expected, atol=1e-6), i
        checked += 1
    print(seconds, grown, checked, flops, tuple(scores.shape), float(scores.sum(1).min()), float(scores.sum(1).max()))
""")


def test_kit_knn_scores_100k_references_in_bounded_memory_and_time():
    out = subprocess.run([sys.executable, "-c", SCALE_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    seconds, grown, checked, flops, shape, low, high = out.stdout.split(" ", 6)
    print(f"100k references x 2000 queries (D 32, chunk 256): {float(seconds):.1f} s, peak memory +{float(grown):.0f} MiB")
    # all distances at once would be 2000 x 100k float32 = 763 MiB (float64 cdist: 1526 MiB); chunks of
    # 256 queries need about 100 MiB of distances plus the top-k
    assert float(grown) < 400
    assert float(seconds) < 60  # about 2 s on an idle 2-core machine
    assert int(checked) >= 30 and int(flops) == 2 * 2000 * 100_000 * 32


def test_ncm_softmax_over_class_means_and_absent_classes_score_zero():
    learner = NcmLearner(NcmConfig())
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0], [4.0, 3.0]])
    model, flops, _ = learner.fit(x, torch.tensor([0, 0, 2, 2]), SINGLE, None)
    torch.testing.assert_close(model["means"], torch.tensor([[1.0, 0.0], [0.0, 0.0], [4.0, 2.0], [0.0, 0.0]]))
    assert model["present"].tolist() == [True, False, True, False] and flops == 2 * 4 * 4 * 2
    scores, flops = learner.score(model, torch.tensor([[1.0, 0.0], [3.0, 1.0]]), SINGLE)
    # squared distances to the means of classes 0 and 2: (0, 13) and (5, 2)
    p = [1 / (1 + math.exp(-13)), 1 / (1 + math.exp(3))]
    expected = torch.tensor([[p[0], 0, 1 - p[0], 0], [p[1], 0, 1 - p[1], 0]])
    torch.testing.assert_close(scores.double(), expected.double(), rtol=1e-5, atol=1e-6)
    assert scores[:, [1, 3]].abs().sum() == 0 and flops == 2 * 2 * 4 * 2


def test_ncm_multi_label_positive_and_negative_means():
    learner = NcmLearner(NcmConfig())
    x = torch.tensor([[0.0], [2.0], [4.0]])
    y = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 1]], dtype=torch.float32)  # class 1 never present
    model, _, _ = learner.fit(x, y, MULTI, None)
    torch.testing.assert_close(model["positive"], torch.tensor([[1.0], [0.0], [2.0]]))  # class 1: empty -> 0
    torch.testing.assert_close(model["negative"], torch.tensor([[4.0], [2.0], [2.0]]))
    scores, _ = learner.score(model, torch.tensor([[1.0]]), MULTI)
    # sigmoid(d_negative^2 - d_positive^2): class 0 (9 - 0), class 1 (1 - 1), class 2 (1 - 1)
    torch.testing.assert_close(scores, torch.sigmoid(torch.tensor([[9.0, 0.0, 0.0]])))


class _FakeFeatures:
    """``split_features`` of hand-built splits: {(task_key, split): (features, labels)}."""

    def __init__(self, splits):
        self.splits, self.calls = splits, []

    def __call__(self, config, ctx, task_key, split):
        self.calls.append((task_key, split))
        x, y = self.splits[(task_key, split)]
        return x.clone(), y, 100.0 * len(x)


def test_train_statistics_are_kept_per_task_key_and_standardise_the_predicted_split(monkeypatch):
    train = torch.tensor([[10.0, 0.0], [12.0, 0.0], [10.0, 4.0], [12.0, 4.0]])
    fake = _FakeFeatures({("a", "train"): (train, torch.tensor([0, 0, 1, 1])),
                          ("a", "test"): (torch.tensor([[11.0, 3.5], [11.0, 0.5]]), None),
                          ("b", "train"): (train * 100, torch.tensor([1, 1, 0, 0]))})
    monkeypatch.setattr(_per_task_features, "split_features", fake)
    # a stand-in frozen encoder of 7 parameters, so no encoder is loaded
    monkeypatch.setattr(_per_task_features, "held_parameters",
                        lambda config, seed, *held: parameter_usage(torch.zeros(7), *held))
    learner = NcmLearner(NcmConfig())
    state = learner.init()
    for key in ("a", "b"):
        task = TaskInfo(key=key, name=key, year=2000, kind=SINGLE_LABEL, num_classes=2, domain="objects", channels=3)
        ctx = LearnerContext(data=None, device=torch.device("cpu"), seed=0, event_index=0, flops=FlopCounter())
        state, usage = learner.train(TrainEvent(0, task), state, ctx)
    stats = state["standardisers"]
    torch.testing.assert_close(stats["a"]["mean"], torch.tensor([11.0, 2.0]))
    torch.testing.assert_close(stats["a"]["std"], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(stats["b"]["mean"], torch.tensor([1100.0, 200.0]))
    # parameters: the encoder and every task's class means (2 tasks x 2 classes x 2 dims) and flags
    assert usage.peak_parameter_count == 7 + 2 * (4 + 2) and usage.flops_train == 400 + 2 * 4 * 2 * 2
    # the predicted split is standardised with task a's train statistics (a per-example standardisation
    # would map both queries to the same point)
    task = TaskInfo(key="a", name="a", year=2000, kind=SINGLE_LABEL, num_classes=2, domain="objects", channels=3)
    ctx = LearnerContext(data=None, device=torch.device("cpu"), seed=0, event_index=1, flops=FlopCounter())
    predictions, usage = learner.predict(PredictEvent(1, task, "test"), state, ctx)
    scores = torch.cat([torch.as_tensor(p.scores) for p in predictions])
    assert scores.argmax(1).tolist() == [1, 0] and usage.flops_inference == 200 + 2 * 2 * 2 * 2
