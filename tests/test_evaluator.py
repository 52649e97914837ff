import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nevis_bench.conformance import comparable
from nevis_bench.run import runner
from nevis_bench.run.config import ConfigError
from nevis_bench.run.evaluator import StopControl
from nevis_bench.run.run_dir import RunDirectory
from tests.helpers import REPO, TINY_BUDGET, run_values

SCHEMA_FIELDS = {
    "schema", "run_id", "event_index", "event_type", "task_name", "task_key", "year", "split", "task_kind",
    "num_examples", "top1_accuracy", "mean_average_precision", "error", "flops_train", "flops_search",
    "flops_selection", "flops_inference", "cumulative_flops", "peak_parameter_count", "wall_seconds", "final_eval",
}


def _run(tmp_path, data_dir, **extra):
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, **extra))
    status = evaluator.run()
    return run_dir, status


def test_records_follow_the_schema_and_the_protocol(tmp_path, data_dir):
    run_dir, status = _run(tmp_path, data_dir, final_eval=True)
    assert status == "complete"
    events = run_dir.read_events()
    assert [e["event_type"] for e in events] == ["train", "predict", "train", "predict", "predict", "predict"]
    assert [e["task_key"] for e in events] == ["pascal_2007", "pascal_2007", "coil20", "coil20", "pascal_2007", "coil20"]
    for e in events:
        assert SCHEMA_FIELDS <= set(e), SCHEMA_FIELDS - set(e)
        assert e["schema"] == 1
    pascal, coil = events[1], events[3]
    assert pascal["task_kind"] == "multi_label" and pascal["mean_average_precision"] is not None
    assert pascal["top1_accuracy"] is None and pascal["error"] == pytest.approx(1 - pascal["mean_average_precision"])
    assert coil["top1_accuracy"] is not None and coil["split"] == "dev_test"
    cumulative = [e["cumulative_flops"] for e in events]
    assert cumulative == sorted(cumulative)
    assert cumulative[0] == events[0]["flops_train"] + events[0]["flops_validation"] > events[0]["flops_train"] > 0
    assert all(e["state_bytes"] > 0 for e in events)  # measured from the learner's state
    assert events[-1]["final_eval"] and not events[1]["final_eval"]
    predictions = np.load(run_dir.path / "predictions" / "event_0003.npz")
    assert predictions["scores"].shape == (coil["num_examples"], 20)
    summary = run_dir.read_summary()
    assert summary["status"] == "complete"
    assert summary["average_error"] == pytest.approx(np.mean([pascal["error"], coil["error"]]))
    assert summary["cumulative_flops"] == events[-1]["cumulative_flops"]
    final = summary["final_eval"]
    assert final["tasks"] == ["pascal_2007", "coil20"] and len(final["rows"]) == 3
    # independent keeps a model per task: the final evaluation repeats the in-stream numbers
    assert final["average_forgetting"] == pytest.approx(0.0)
    assert list((run_dir.path / "tensorboard").iterdir())


def test_final_protocol_predicts_on_test(tmp_path, data_dir):
    run_dir, _ = _run(tmp_path, data_dir, final=True)
    events = run_dir.read_events()
    assert {e["split"] for e in events if e["event_type"] == "predict"} == {"test"}
    assert json.loads((run_dir.path / "config.json").read_text())["stop_year"] == 2022


def test_resume_after_mid_event_stop_gives_identical_records(tmp_path, data_dir):
    reference, _ = _run(tmp_path, data_dir, run_name="reference", checkpoint_every_steps=2, learner="finetune_prev")
    stop = StopControl(stop_after_checkpoints=3)
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, run_name="stopped", checkpoint_every_steps=2,
                                                 learner="finetune_prev"), stop)
    assert evaluator.run() == "interrupted"
    assert RunDirectory(run_dir.path).read_summary()["status"] == "interrupted"
    run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
    assert evaluator.run() == "complete"
    assert comparable(run_dir.read_events()) == comparable(reference.read_events())


def test_sigterm_checkpoints_and_resume_completes_identically(tmp_path, data_dir):
    reference, _ = _run(tmp_path, data_dir, run_name="reference", learner_config={"max_steps": 24, "min_steps": 24, "eval_every_epochs": 8.0})
    command = [
        sys.executable, "-m", "nevis_bench.cli", "run", "--stream", "synthetic-debug", "--quiet",
        "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir), "--run-name", "killed",
        "-o", "max_steps=24", "-o", "min_steps=24", "-o", "eval_every_epochs=8.0",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events_file = tmp_path / "runs" / "killed" / "events.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (events_file.exists() and events_file.read_text().count("\n") >= 1):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 75, err
    assert "nevis-bench resume" in err
    summary = RunDirectory(tmp_path / "runs" / "killed").read_summary()
    assert summary["status"] == "interrupted"
    result = subprocess.run(
        [sys.executable, "-m", "nevis_bench.cli", "resume", str(tmp_path / "runs" / "killed"), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    resumed = RunDirectory(tmp_path / "runs" / "killed").read_events()
    assert comparable(resumed) == comparable(reference.read_events())


def test_crash_between_record_and_checkpoint_is_redone_not_duplicated(tmp_path, data_dir):
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, run_name="crash"), StopControl(stop_after_events=2))
    evaluator.run()
    kept = run_dir.read_events()
    # simulate a crash after appending event 2's record but before its checkpoint, plus a torn line
    with open(run_dir.events_path, "a") as handle:
        handle.write(json.dumps({**kept[-1], "event_index": 2, "task_key": "bogus"}) + "\n" + '{"torn": ')
    run_dir, evaluator = runner.reopen(str(run_dir.path), progress=False)
    evaluator.run()
    events = run_dir.read_events()
    assert [e["event_index"] for e in events] == [0, 1, 2, 3]
    assert "bogus" not in {e["task_key"] for e in events}


def test_diverging_loss_fails_clearly_and_keeps_records(tmp_path, data_dir):
    run_dir, evaluator = runner.start(run_values(
        tmp_path, data_dir, learner_config={**TINY_BUDGET, "learning_rate": 1e30}, stream="synthetic-debug"))
    with pytest.raises(Exception, match="lower the learning rate"):
        evaluator.run()
    summary = run_dir.read_summary()
    assert summary["status"] == "failed" and "TrainingDiverged" in summary["error_message"]
    assert (run_dir.path / "config.json").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"stream": "no-such-stream"}, "unknown stream 'no-such-stream'"),
        ({"learner": "no-such-learner"}, "unknown learner 'no-such-learner'"),
        ({"learner_config": {"learning_rat": 0.1}}, "unknown learner 'independent' key"),
        ({"learner_config": {"learning_rate": "fast"}}, "expected a number"),
        ({"seed": "one"}, "expected an integer"),
        ({"device": "tpu"}, "--device must be cpu or cuda"),
    ],
)
def test_invalid_input_fails_before_any_compute(tmp_path, data_dir, extra, message):
    with pytest.raises(ConfigError, match=message):
        runner.start(run_values(tmp_path, data_dir, **extra))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unwritable_runs_dir_is_reported(tmp_path, data_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file, even by root
    with pytest.raises(ConfigError, match="not writable"):
        runner.start(run_values(tmp_path, data_dir, runs_dir=str(blocker / "runs")))
