"""The conformance kit: every learner passes every named check; cheaters and under-reporters are caught."""

import textwrap

import pytest

from nevis_bench.conformance import CHECKS, ConformanceError, check_learner, run_check
from nevis_bench.conformance.cheaters import LEAKS, CheatingLearner, UnderReportingLearner
from nevis_bench.protocol import ProtocolViolation
from nevis_bench.registry import LEARNERS
from nevis_bench.run import runner
from nevis_bench.run.audit import audit_events
from tests.helpers import run_values


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", LEARNERS.names())
def test_every_registered_learner_passes_every_check(name, check, tmp_path, data_dir):
    run_check(name, check, tmp_path, overrides=LEARNERS.get(name).test_overrides, data_dir=data_dir)


def _cheater_run(tmp_path, data_dir, learner, name):
    return runner.start(run_values(tmp_path, data_dir, learner="cheater", learner_config={}, run_name=name),
                        learner=learner)


def test_an_honest_run_of_the_cheater_completes(tmp_path, data_dir):
    run_dir, evaluator = _cheater_run(tmp_path, data_dir, CheatingLearner(None), "honest")
    assert evaluator.run() == "complete"
    assert len(run_dir.read_events()) == 4


@pytest.mark.parametrize("leak", LEAKS)
def test_every_leak_is_refused_and_the_run_fails_with_what_was_refused(leak, tmp_path, data_dir):
    run_dir, evaluator = _cheater_run(tmp_path, data_dir, CheatingLearner(leak, other_task="coil20"), leak)
    with pytest.raises(ProtocolViolation) as error:
        evaluator.run()
    summary = run_dir.read_summary()
    assert summary["status"] == "failed" and "ProtocolViolation" in summary["error_message"]
    expected = {"predict_labels": "labels of pascal_2007/dev_test", "predict_ids": "example ids",
                "test_labels": "split 'test'", "dev_test_labels": "split 'dev_test'",
                "other_task": "cannot read task 'coil20'"}[leak]
    assert expected in str(error.value)


def test_the_flop_audit_catches_an_under_reporting_learner_and_passes_an_honest_one(tmp_path, data_dir):
    _, evaluator = _cheater_run(tmp_path, data_dir, UnderReportingLearner(None), "under")
    train, _ = audit_events(evaluator, [0, 1])
    assert not train.passed and train.reported < 0.05 * train.measured, train.describe()
    _, evaluator = _cheater_run(tmp_path, data_dir, CheatingLearner(None), "honest-audit")
    assert all(result.passed and result.measured > 0 for result in audit_events(evaluator, [0, 1]))


def test_check_learner_reports_every_failing_check_not_just_the_first(tmp_path, data_dir):
    module = tmp_path / "sloppy.py"
    module.write_text(textwrap.dedent('''
        import numpy as np
        from nevis_bench.protocol import Predictions, ResourceUsage
        from nevis_bench.registry import LEARNERS

        class Sloppy:
            def init(self):
                return {"calls": 0}
            def train(self, event, state, ctx):
                return state, ResourceUsage()  # no FLOPs
            def predict(self, event, state, ctx):
                n, k = len(ctx.data.split(event.task.key, event.split)), event.task.num_classes
                return [Predictions(np.arange(n), np.full((n, k), 1.0 / k))], ResourceUsage(flops_inference=1.0)

        @LEARNERS.register("sloppy_for_kit_test")
        def sloppy():
            """Reports no training FLOPs and never checkpoints without saying so."""
            return Sloppy()
    '''))
    with pytest.raises(ConformanceError) as error:
        check_learner("sloppy_for_kit_test", tmp_path, learner_module=str(module), data_dir=data_dir)
    message = str(error.value)
    assert "failed 2 check(s)" in message
    assert "reports_flops:" in message and "resume_mid_event:" in message and "checkpoints_within_event" in message


def test_audit_command_measures_a_recorded_run_without_touching_it(tmp_path, data_dir, capsys):
    from nevis_bench.cli import main

    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, run_name="audited", checkpoint_every_steps=3))
    assert evaluator.run() == "complete"
    before = {p.name: p.read_bytes() for p in (run_dir.path / "events.jsonl", run_dir.checkpoint_path)}
    capsys.readouterr()
    assert main(["audit", str(run_dir.path), "--event", "0", "--event", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("event 0 (train): reported") and "ok" in out[0]
    assert out[1].startswith("event 3 (inference): reported") and "recorded in events.jsonl" in out[1]
    assert {p.name: p.read_bytes() for p in (run_dir.path / "events.jsonl", run_dir.checkpoint_path)} == before
    assert main(["audit", str(run_dir.path), "--event", "99"]) == 2


def test_the_audit_measures_encoder_work_even_when_the_features_are_cached(tmp_path, data_dir):
    subject = run_check("knn", "flop_audit", tmp_path, overrides=LEARNERS.get("knn").test_overrides, data_dir=data_dir)
    train, predict = subject.notes["flop_audit"]
    # the warm-up run fills the feature cache; the measured run gets an empty one, so the encoder runs
    assert train.measured > 0.9 * train.reported > 0 and predict.measured > 0.9 * predict.reported > 0


def test_the_host_sync_counter_counts_a_learners_syncs_per_optimiser_step_and_nothing_else():
    import torch

    from nevis_bench.conformance.host_syncs import SyncCounter

    model = torch.nn.Linear(4, 2)
    with SyncCounter() as counter:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(4):
            loss = model(torch.ones(3, 4)).square().mean()
            for _ in range(step % 3):  # 0, 1, 2, 0 syncs from this code
                loss.item()
            with torch.no_grad():
                float(loss)  # validation-like reads under no_grad are not training syncs
            loss.backward()
            optimizer.step()
        torch.optim.Adam(model.parameters())  # a new optimiser: what follows is setup until its first step
        loss.item()
    # the interval before the first step is setup; then the steps made 1, 2 and 0 syncs
    assert counter.steps == [1, 2, 0]
    assert torch.Tensor.item.__name__ == "item" and not hasattr(torch.Tensor.item, "__wrapped__")
