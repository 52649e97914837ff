import pytest

from nevis_bench.run import runner
from tests.helpers import run_values


def test_early_stopping_triggers_before_the_step_budget(tmp_path, data_dir):
    budget = {"max_steps": 400, "min_steps": 10, "epochs": 400.0, "patience": 2, "eval_every_epochs": 2.0}
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, learner_config=budget))
    evaluator.run()
    infos = [e["learner_info"] for e in run_dir.read_events() if e["event_type"] == "train"]
    assert any(info["early_stopped"] and info["steps"] < 400 for info in infos), infos


def test_finetune_prev_shares_the_backbone_and_shows_forgetting(tmp_path, data_dir):
    budget = {"max_steps": 30, "min_steps": 30, "patience": 0, "eval_every_epochs": 10.0}
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, learner="finetune_prev",
                                                 learner_config=budget, final_eval=True))
    evaluator.run()
    events = run_dir.read_events()
    first_in_stream = events[1]["error"]
    first_final = [e for e in events if e["final_eval"] and e["task_key"] == "pascal_2007"][0]["error"]
    # the backbone moved on to coil20, so the first task's error changes (usually for the worse)
    assert first_final != first_in_stream
    assert run_dir.read_summary()["final_eval"]["average_forgetting"] == pytest.approx(first_final - first_in_stream)
