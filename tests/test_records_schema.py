"""The typed record schema: one definition for writer and reader, and old run directories still read."""

import dataclasses
import json
import shutil

import pytest

from nevis_bench.cli import main
from nevis_bench.protocol import PredictEvent, ResourceUsage, TaskInfo, TrainEvent
from nevis_bench.records.reader import read_run
from nevis_bench.records.schema import EVENT_COLUMNS, REQUIRED_FIELDS, EventRecord, RunSummary
from tests.helpers import REPO

# Written by the harness before EventRecord/RunSummary existed (independent on synthetic-tiny):
# config.json, events.jsonl and summary.json as they were, schema version 1.
SCHEMA_1_RUN = REPO / "tests" / "data" / "schema1_run" / "independent"


def test_a_schema_1_run_directory_from_before_the_typed_schema_reads_unchanged(tmp_path, capsys):
    saved = json.loads((SCHEMA_1_RUN / "summary.json").read_text())
    run = read_run(SCHEMA_1_RUN)
    assert len(run.event_list) == 12 and run.finished
    for key in ("average_error", "weighted_error", "cumulative_flops", "flops_inference", "mean_average_precision"):
        assert run.metrics[key] == pytest.approx(saved[key], rel=1e-12), key
    # fields added after schema 1 read as their defaults; every saved field round-trips unchanged
    added = {"flops_validation": 0.0, "peak_state_bytes": 0, "flops_reference": 0.0, "average_single_label_accuracy": None,
             "weighted_single_label_accuracy": None, "average_multi_label_map": None}
    assert RunSummary.from_dict(saved).to_dict() == {**saved, **added}
    for line in (SCHEMA_1_RUN / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert EventRecord.from_dict(record).to_dict() == {**record, "flops_validation": 0.0, "state_bytes": 0,
                                                           "flops_reference": None}
    # the reference-convention FLOPs of records older than the field: train + search of the train events
    assert run.metrics["flops_reference"] == pytest.approx(
        sum(e["flops_train"] + e["flops_search"] for e in run.event_list if e["event_type"] == "train"))
    assert run.metrics["average_single_label_accuracy"] == pytest.approx(run.metrics["average_top1_accuracy"])

    assert main(["summary", str(SCHEMA_1_RUN)]) == 0
    assert f"average error:       {saved['average_error']:.4f}" in capsys.readouterr().out
    assert main(["report", str(SCHEMA_1_RUN), "--output", str(tmp_path / "report")]) == 0
    runs = tmp_path / "runs"
    shutil.copytree(SCHEMA_1_RUN, runs / "independent")
    assert main(["leaderboard", "--runs-dir", str(runs), "--output", str(tmp_path / "board")]) == 0
    board = (tmp_path / "board" / "leaderboard.csv").read_text()
    assert f"{saved['average_error']:.4f}"[:5] in board and "independent" in board


def _usage():
    return ResourceUsage(flops_train=10.0, flops_search=2.0, flops_selection=1.0, flops_inference=4.0,
                         peak_parameter_count=7, peak_parameter_bytes=28, info={"steps": 3})


class _Totals:
    cumulative_flops = 13.0
    cumulative_flops_inference = 4.0


def test_records_of_train_and_predict_events_follow_the_schema():
    task = TaskInfo("coil20", "COIL 20", 2000, "single_label", 20, "object", 1)
    train = EventRecord.for_event("r", TrainEvent(0, task), 100, _usage(), _Totals(), 1.5)
    assert train.event_type == "train" and train.split == "train" and train.error is None
    assert train.top1_accuracy is None and train.final_eval is False
    predict = EventRecord.for_event("r", PredictEvent(1, task, "dev_test", final_eval=True), 50, _usage(), _Totals(),
                                    0.5, metric=0.75)
    assert predict.event_type == "predict" and predict.top1_accuracy == 0.75 and predict.error == 0.25
    assert predict.mean_average_precision is None and predict.final_eval is True
    multi = EventRecord.for_event("r", PredictEvent(1, dataclasses.replace(task, kind="multi_label")), 50, _usage(),
                                  _Totals(), 0.5, metric=0.5)
    assert multi.mean_average_precision == 0.5 and multi.top1_accuracy is None
    line = predict.to_dict()
    assert set(REQUIRED_FIELDS) <= set(line) and set(EVENT_COLUMNS) <= set(line)
    assert line["cumulative_flops"] == 13.0 and line["learner_info"] == {"steps": 3}
