"""Running a real stream on the data you have: ``skip_missing`` leaves out, prints and records the rest."""

import json

from nevis_bench.cli import main
from nevis_bench.records.reader import read_run
from tests.archives_1992_2011 import write_coil20

BUDGET = ["-o", "max_steps=2", "-o", "min_steps=1", "-o", "batch_size=8", "-o", "eval_batch_size=32"]


def test_a_stream_runs_on_the_data_present_and_records_what_it_skipped(tmp_path, monkeypatch, capsys):
    data_dir, runs = tmp_path / "data", tmp_path / "runs"
    monkeypatch.setenv("NEVIS_BENCH_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    originals = tmp_path / "coil"
    originals.mkdir()
    write_coil20(originals)
    assert main(["data", "prepare", "coil20", "--from", str(originals), "--data-dir", str(data_dir)]) == 0

    common = ["run", "--stream", "nevis-debug", "--data-dir", str(data_dir), "--runs-dir", str(runs), "--quiet", *BUDGET]
    capsys.readouterr()
    assert main(common) == 2  # without the option, the missing Pascal 2007 stops the run before any compute
    assert "pascal_2007" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())

    assert main([*common, "-o", "stream.skip_missing=true"]) == 0
    captured = capsys.readouterr()
    assert "skipping 1 stream entries whose data is missing (skip_missing): 1999 pascal_2007" in captured.err
    assert "skipped entries:     1 (data missing): 1999 pascal_2007" in captured.out
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert config["skipped_entries"] == summary["skipped"] == ["1999 pascal_2007"]
    assert config["stream_options"]["skip_missing"] is True
    run = read_run(run_dir)
    assert [e["task_key"] for e in run.event_list] == ["coil20", "coil20"]
    assert run.stream.startswith("nevis-debug (skipped 1, ") and run.group_key[2] != "nevis-debug"
