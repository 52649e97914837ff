"""``nevis-bench sweep`` on a local Ray cluster (started once for the module, 2 CPUs)."""

import json
import os
import pathlib

import pytest

ray = pytest.importorskip("ray")

from nevis_bench import cli  # noqa: E402
from nevis_bench.conformance import comparable  # noqa: E402
from nevis_bench.run import sweep  # noqa: E402
from nevis_bench.run.run_dir import RunDirectory  # noqa: E402

SWEEP = """
runs_dir = "{root}"
data_dir = "{data}"
learners = {learners}
seeds = {seeds}
streams = ["synthetic-debug"]
num_cpus = 1
max_retries = 2
checkpoint_every_steps = 2
checkpoint_every_seconds = 1e9

[configurations.tiny]
max_steps = 6
min_steps = 3
"""


def write_sweep(folder: pathlib.Path, data_dir, learners, seeds) -> pathlib.Path:
    path = folder / "sweep.toml"
    path.write_text(SWEEP.format(root=folder / "runs", data=data_dir, learners=json.dumps(learners),
                                 seeds=json.dumps(seeds)))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    sweep.init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def grid(ray_cluster, data_dir, tmp_path_factory):
    """2 learners x 2 seeds, run once for the module."""
    folder = tmp_path_factory.mktemp("sweep")
    path = write_sweep(folder, data_dir, ["independent", "finetune_prev"], [0, 1])
    code = cli.main(["sweep", str(path)])
    return folder, path, code


def test_sweep_runs_the_grid_and_builds_the_leaderboard(grid, capsys):
    folder, path, code = grid
    assert code == 0
    runs = sorted(p.name for p in (folder / "runs").iterdir() if (p / "config.json").exists())
    assert len(runs) == 4
    for learner in ("independent", "finetune_prev"):
        for seed in (0, 1):
            assert sum(r.startswith(f"synthetic-debug--{learner}--") and r.endswith(f"--seed{seed}") for r in runs) == 1
    for run in runs:
        run_dir = RunDirectory(folder / "runs" / run)
        assert run_dir.read_summary()["status"] == "complete"
        config = run_dir.read_config()
        assert config["learner_config"]["max_steps"] == 6 and config["learner_config"]["min_steps"] == 3
        steps = [e["learner_info"]["steps"] for e in run_dir.read_events() if e["event_type"] == "train"]
        assert steps and all(3 <= s <= 6 for s in steps), steps
    board = (folder / "runs" / "leaderboard" / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 3  # header + one row per learner (seeds grouped)
    assert any("independent" in line for line in board) and any("finetune_prev" in line for line in board)
    assert (folder / "runs" / "leaderboard" / "report.html").exists()


def test_rerun_skips_complete_runs_and_refuses_runs_with_other_settings(grid, capsys):
    folder, path, _ = grid
    events = sorted((folder / "runs").glob("*/events.jsonl"))
    stamps = [os.stat(p).st_mtime_ns for p in events]
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--no-leaderboard"]) == 0
    out = capsys.readouterr().out
    assert "4 complete, 0 to run" in out
    assert [os.stat(p).st_mtime_ns for p in events] == stamps
    changed = path.with_name("changed.toml")
    changed.write_text(path.read_text().replace("num_cpus = 1", "num_cpus = 1\nfinal_eval = true"))
    assert cli.main(["sweep", str(changed), "--no-leaderboard"]) == 2
    error = capsys.readouterr().err
    assert "differs in final_eval" in error and error.count("\n") == 1
    assert [os.stat(p).st_mtime_ns for p in events] == stamps


def test_killed_worker_resumes_from_checkpoint_with_identical_records(grid, data_dir, tmp_path, monkeypatch):
    reference_folder = grid[0]
    path = write_sweep(tmp_path, data_dir, ["finetune_prev"], [1])
    monkeypatch.setenv(sweep.CRASH_ENV, "1")  # the worker dies after its first within-event checkpoint
    results = sweep.run_sweep(sweep.load_sweep(path), log=lambda *a: None)
    (name, result), = results.items()
    assert result["status"] == "complete" and result["resumed"], result
    run_path = tmp_path / "runs" / name
    assert (run_path / sweep.CRASH_MARKER).exists()  # the first attempt did die
    resumed = RunDirectory(run_path).read_events()
    reference = RunDirectory(reference_folder / "runs" / name).read_events()
    assert len(resumed) == len(reference) > 0
    assert comparable(resumed) == comparable(reference)


def test_sweep_expansion_validates_before_running(tmp_path, data_dir):
    path = write_sweep(tmp_path, data_dir, ["independent", "no_such_learner"], [0])
    with pytest.raises(sweep.ConfigError, match="no_such_learner"):
        sweep.load_sweep(path)
    path = write_sweep(tmp_path, data_dir, ["independent"], [0, 1, 2])
    loaded = sweep.load_sweep(path)
    assert [r.name.rsplit("--", 1)[1] for r in loaded.runs] == ["seed0", "seed1", "seed2"]
    assert loaded.runs[0].name == sweep.load_sweep(path).runs[0].name  # deterministic


def test_a_sweep_file_can_run_every_learner_on_the_reference_preset(tmp_path, data_dir):
    path = write_sweep(tmp_path, data_dir, ["independent"], [0])
    path.write_text(path.read_text().replace("num_cpus = 1", 'num_cpus = 1\npreset = "reference"\nimage_size = 64'))
    run = sweep.load_sweep(path).runs[0]
    assert run.values["preset"] == "reference" and run.values["image_size"] == 64
    from nevis_bench.run import runner

    prepared = runner.validate(dict(run.values))
    assert prepared.config.learner_config["backbone"] == "cifar_resnet34"
