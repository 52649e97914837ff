"""The reference's metrics beside our headline: mAP rule, summary fields, leaderboard columns and sort order."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from nevis_bench.records import metrics
from nevis_bench.reports.tables import LEADERBOARD_COLUMNS, leaderboard_table


def test_map_scores_a_label_without_positives_as_scikit_learn_does():
    # label 2 has no positive example in this split: the reference (scikit-learn >= 1.1) scores it 0
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.2, 0.3], [0.1, 0.8, 0.5], [0.7, 0.6, 0.1], [0.2, 0.1, 0.9]])
    with pytest.warns(UserWarning):
        expected = average_precision_score(targets, scores, average="macro")
    assert metrics.mean_average_precision(scores, targets) == pytest.approx(expected)
    assert expected == pytest.approx(2 / 3)  # two perfect labels and one scored 0, not 1.0 over the two
    assert np.isnan(metrics.mean_average_precision(scores[:0], targets[:0]))


def _predict(kind, n, value, index):
    event = {"event_type": "predict", "event_index": index, "task_key": f"t{index}", "task_kind": kind,
             "num_examples": n, "error": 1 - value, "final_eval": False, "flops_train": 0.0, "flops_search": 0.0,
             "flops_selection": 0.0, "flops_inference": 1.0, "cumulative_flops": 0.0, "peak_parameter_count": 0,
             "wall_seconds": 0.0, "top1_accuracy": None, "mean_average_precision": None}
    event["top1_accuracy" if kind == "single_label" else "mean_average_precision"] = value
    return event


def test_summary_keeps_the_reference_metrics_apart_from_the_error_headline():
    events = [_predict("single_label", 100, 0.9, 1), _predict("single_label", 300, 0.5, 3),
              _predict("multi_label", 1000, 0.2, 5)]
    summary = metrics.summarize(events)
    assert summary["average_single_label_accuracy"] == pytest.approx(0.7)
    assert summary["weighted_single_label_accuracy"] == pytest.approx((90 + 150) / 400)
    assert summary["average_multi_label_map"] == pytest.approx(0.2)
    # our headline merges the kinds: 1 - accuracy and 1 - mAP, weighted by every event's examples
    assert summary["average_error"] == pytest.approx((0.1 + 0.5 + 0.8) / 3)
    assert summary["weighted_error"] == pytest.approx((10 + 150 + 800) / 1400)


def test_leaderboard_sorts_by_either_family():
    import pandas as pd

    rows = pd.DataFrame([
        {"learner": "a", "config_id": "1", "stream": "s", "predict_split": "dev_test", "seed": 0, "average_error": 0.2,
         "weighted_error": 0.3, "average_single_label_accuracy": 0.6, "weighted_single_label_accuracy": 0.7,
         "average_multi_label_map": 0.5, "headline_flops": 2.0, "reference_flops": 1.0, "inference_flops": 1.0,
         "peak_parameters": 1, "wall_seconds": 1.0, "average_forgetting": float("nan"), "backward_transfer": float("nan")},
        {"learner": "b", "config_id": "2", "stream": "s", "predict_split": "dev_test", "seed": 0, "average_error": 0.3,
         "weighted_error": 0.2, "average_single_label_accuracy": 0.9, "weighted_single_label_accuracy": 0.8,
         "average_multi_label_map": 0.1, "headline_flops": 1.0, "reference_flops": 1.0, "inference_flops": 1.0,
         "peak_parameters": 1, "wall_seconds": 1.0, "average_forgetting": float("nan"), "backward_transfer": float("nan")},
    ])
    assert list(leaderboard_table(rows)["learner"]) == ["a", "b"]
    assert list(leaderboard_table(rows, "average_single_label_accuracy")["learner"]) == ["b", "a"]  # best first
    assert list(leaderboard_table(rows, "average_multi_label_map")["learner"]) == ["a", "b"]
    assert list(leaderboard_table(rows, "weighted_error")["learner"]) == ["b", "a"]
    assert {"average_single_label_accuracy", "weighted_single_label_accuracy", "average_multi_label_map",
            "reference_flops"} <= set(LEADERBOARD_COLUMNS)
    from nevis_bench.errors import InputError

    with pytest.raises(InputError, match="choose one of"):
        leaderboard_table(rows, "nonsense")


def _step_flops(num_classes: int, batch: int, multi_label: bool) -> float:
    """One training step of the small convnet measured here with FlopCounterMode on real tensors."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from nevis_bench.learner_kit.models import Classifier, make_backbone

    backbone = make_backbone("small_convnet")
    model = Classifier(backbone, torch.nn.Linear(backbone.feature_dim, num_classes))
    x = torch.randn(batch, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
        if multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, torch.zeros(batch, num_classes))
        else:
            loss = F.cross_entropy(logits, torch.zeros(batch, dtype=torch.int64))
        loss.backward()
    return float(counter.get_total_flops())


def test_records_rebuild_the_reference_flops_as_kept_steps_times_step_flops(tmp_path, data_dir):
    from nevis_bench.records.reader import read_run
    from nevis_bench.run import runner
    from tests.helpers import run_values

    values = run_values(tmp_path, data_dir, learner="finetune_prev",
                        learner_config={"max_steps": 3, "min_steps": 3, "batch_size": 16})
    run_dir, evaluator = runner.start(values)
    assert evaluator.run() == "complete"
    run = read_run(run_dir.path)
    trains = [e for e in run.event_list if e["event_type"] == "train"]
    for event in trains:
        steps = event["learner_info"]["steps"]
        assert steps == 3
        expected = steps * _step_flops(20, 16, event["task_kind"] == "multi_label")
        assert event["flops_reference"] == pytest.approx(expected, rel=1e-6)  # kept steps x step FLOPs, + 0 trials
        assert event["flops_reference"] == pytest.approx(event["flops_train"] + event["flops_search"])
        assert event["flops_validation"] > 0  # validation: in our headline, not in the reference's count
    summary = run.metrics
    assert summary["flops_reference"] == pytest.approx(sum(e["flops_reference"] for e in trains))
    assert summary["cumulative_flops"] == pytest.approx(
        summary["flops_reference"] + summary["flops_validation"] + summary["flops_selection"])
