"""Faults in a run directory: nothing damaged is used silently, nothing recorded is lost (issue 13)."""

import builtins
import json
import os
import shutil

import pytest

from nevis_bench.cli import main
from nevis_bench.conformance import comparable
from nevis_bench.run import checkpoint, runner
from nevis_bench.run.evaluator import StopControl
from nevis_bench.run.run_dir import RunDirectory
from tests.helpers import run_values

BUDGET = {"max_steps": 6, "min_steps": 6, "eval_every_epochs": 100.0}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    """An uninterrupted run with a final evaluation (6 events), and a copy-maker for its directory."""
    folder = tmp_path_factory.mktemp("reference")
    run_dir, evaluator = runner.start(run_values(folder, data_dir, run_name="reference", final_eval=True,
                                                 learner_config=dict(BUDGET)))
    assert evaluator.run() == "complete"

    def copy(destination):
        shutil.copytree(run_dir.path, destination)
        return RunDirectory(destination)

    return run_dir, copy


def _stopped_after(tmp_path, data_dir, events, name="stopped"):
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, run_name=name, final_eval=True,
                                                 learner_config=dict(BUDGET)), StopControl(stop_after_events=events))
    assert evaluator.run() == "interrupted"
    return run_dir


def _resume(run_dir, *extra):
    return main(["resume", str(run_dir.path), "--quiet", *extra])


def test_a_damaged_checkpoint_is_refused_with_its_real_cause(tmp_path, data_dir, capsys):
    run_dir = _stopped_after(tmp_path, data_dir, 3)
    data = bytearray(run_dir.checkpoint_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the payload
    run_dir.checkpoint_path.write_bytes(bytes(data))
    capsys.readouterr()
    assert _resume(run_dir) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: checkpoint") and "is damaged: its content does not match" in err
    run_dir.checkpoint_path.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    assert _resume(run_dir) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and "plain data" not in err
    assert len(run_dir.read_events()) == 3  # every record kept


def test_records_without_their_checkpoint_are_kept_and_restart_moves_them_aside(tmp_path, data_dir, reference, capsys):
    run_dir = _stopped_after(tmp_path, data_dir, 4)
    recorded = run_dir.events_path.read_text()
    run_dir.checkpoint_path.unlink()
    capsys.readouterr()
    assert _resume(run_dir) == 2
    err = capsys.readouterr().err
    assert "holds 4 records but no checkpoint" in err and "--restart" in err
    assert run_dir.events_path.read_text() == recorded  # nothing cut
    assert _resume(run_dir, "--restart") == 0
    assert (run_dir.path / "previous-1" / "events.jsonl").read_text() == recorded
    assert comparable(run_dir.read_events()) == comparable(reference[0].read_events())


def test_one_writer_per_run_directory(tmp_path, data_dir, reference, capsys):
    run_dir = reference[1](tmp_path / "copy")
    with run_dir.lock():
        capsys.readouterr()
        assert _resume(run_dir) == 2
        err = capsys.readouterr().err
        assert f"is being written by process {os.getpid()}" in err
        assert err.splitlines()[-1].startswith("error: run directory")
        # the same run started again under its name reaches the same lock
        values = ["run", "--stream", "synthetic-debug", "--final-eval", "--runs-dir", str(tmp_path),
                  "--run-name", "copy", "--data-dir", str(data_dir), "--quiet"] + [
                      item for key, value in BUDGET.items() for item in ("-o", f"{key}={value}")]
        assert main(values) == 2
        assert "is being written by process" in capsys.readouterr().err
    with pytest.raises(Exception, match="just created by another process"):
        RunDirectory(run_dir.path).create({})


def test_a_full_disk_fails_cleanly_and_the_run_resumes_to_the_same_records(tmp_path, data_dir, reference, monkeypatch,
                                                                           capsys):
    real_open, saves = builtins.open, []

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and ".latest.pt.tmp" in str(path):
            saves.append(path)
            if len(saves) == 3:
                return FullDisk(handle)
        return handle

    monkeypatch.setattr(checkpoint, "open", open_on_a_full_disk, raising=False)
    run_dir, evaluator = runner.start(run_values(tmp_path, data_dir, run_name="full", final_eval=True,
                                                 learner_config=dict(BUDGET)))
    with pytest.raises(OSError, match="No space left on device"):
        evaluator.run()
    monkeypatch.undo()
    summary = run_dir.read_summary()
    assert summary["status"] == "failed"
    assert "No space left on device" in summary["error_message"] and "latest.pt" in summary["error_message"]
    assert not list(run_dir.path.rglob(".*.tmp*"))  # the failed write removed its temporary file
    assert len(run_dir.read_events()) == 3  # earlier records readable
    # a writer killed during a write leaves temporaries behind; the next start of the run removes them
    (run_dir.path / "checkpoints" / ".latest.pt.tmp-99999").write_bytes(b"partial")
    (run_dir.path / ".summary.json.tmp-99999").write_text("{")
    assert _resume(run_dir) == 0
    assert not list(run_dir.path.rglob(".*.tmp*"))
    assert comparable(run_dir.read_events()) == comparable(reference[0].read_events())
    superseded = (run_dir.path / "events.superseded.jsonl").read_text().splitlines()
    assert len(superseded) == 1  # the event recorded before the failed checkpoint, redone and kept


def test_readers_are_strict_and_skip_bad_runs_lists_them(tmp_path, reference, capsys):
    torn = reference[1](tmp_path / "runs" / "torn")
    lines = torn.events_path.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]
    torn.events_path.write_text("\n".join(lines) + "\n")
    empty = reference[1](tmp_path / "runs" / "empty")
    empty.events_path.write_text("")
    capsys.readouterr()
    assert main(["summary", str(torn.path)]) == 2
    assert f"{torn.events_path}:3: malformed line" in capsys.readouterr().err
    assert main(["summary", str(empty.path)]) == 2
    assert "says the run is complete with 6 events, but events.jsonl holds 0" in capsys.readouterr().err
    assert main(["report", str(empty.path), "--output", str(tmp_path / "out")]) == 2
    good = reference[1](tmp_path / "runs" / "good")
    assert good.path.exists()
    out = tmp_path / "board"
    assert main(["leaderboard", "--runs-dir", str(tmp_path / "runs"), "--output", str(out)]) == 2
    assert main(["leaderboard", "--runs-dir", str(tmp_path / "runs"), "--output", str(out), "--skip-bad-runs"]) == 0
    excluded = (out / "excluded_runs.csv").read_text()
    assert "torn" in excluded and "empty" in excluded and excluded.count("unreadable") == 2
    board = (out / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 2 and json.dumps("independent")[1:-1] in board[1]  # the good run only
