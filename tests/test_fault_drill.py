"""The fault drill (issue 13): SIGKILL at random moments, resume, records identical to a clean run."""

import importlib.util
import json
import sys

from tests.helpers import REPO


def _fault_drill():
    spec = importlib.util.spec_from_file_location("fault_drill", REPO / "scripts" / "fault_drill.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_three_kills_resume_to_the_uninterrupted_run(tmp_path):
    drill = _fault_drill()
    output, result_file = tmp_path / "faults.md", tmp_path / "faults.json"
    status = drill.main([
        "--kills", "3", "--seed", "0", "--stream", "synthetic-debug", "--workdir", str(tmp_path / "work"),
        "--output", str(output), "--json", str(result_file),
        "-o", "max_steps=4", "-o", "min_steps=4", "-o", "checkpoint_every_steps=2", "-o", "eval_every_epochs=8.0",
        "-o", "batch_size=16",
    ])
    result = json.loads(result_file.read_text())
    assert result["failures"] == [] and result["differences"] == [], result
    assert len(result["kills"]) == 3 and result["resumes"] == 3
    assert {kill["phase"] for kill in result["kills"]} <= set(drill.PHASES)
    assert len({kill["phase"] for kill in result["kills"]}) == 3  # three kills, three different phases
    assert status == 0
    text = output.read_text()
    assert "| kills done | **3**" in text and "| resumes (`nevis-bench resume RUN_DIR`) | **3** |" in text
    assert "| differences from the uninterrupted run (records, summary, predictions, task cache) | **0** |" in text


def test_phase_plan_spreads_kills_over_every_phase():
    import random

    drill = _fault_drill()
    plan = drill.phase_plan(20, random.Random(0))
    assert sorted(plan) == sorted(drill.PHASES * 5)
    assert len(set(drill.phase_plan(3, random.Random(1)))) == 3


def _fake_run(folder, error=0.5, scores=(0.1, 0.9)):
    import numpy as np

    (folder / "run" / "predictions").mkdir(parents=True)
    record = {"event_index": 0, "event_type": "predict", "error": error, "wall_seconds": 1.0, "run_id": folder.name}
    (folder / "run" / "events.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "run" / "summary.json").write_text(json.dumps({"average_error": error, "wall_seconds": 2.0, "run_id": "x"}))
    np.savez(folder / "run" / "predictions" / "event_0000.npz", scores=np.array(scores))
    task = folder / "data" / "cache" / "coil20" / "abc"
    task.mkdir(parents=True)
    (task / "COMPLETE").write_text("")
    (task / "manifest.json").write_text(json.dumps({"created": folder.name, "splits": {"train": {"count": 3}}}))
    return folder / "run", folder / "data"


def test_comparison_ignores_wall_times_and_finds_every_difference(tmp_path):
    drill = _fault_drill()
    reference = _fake_run(tmp_path / "a")
    same_run, same_data = _fake_run(tmp_path / "b")
    assert drill.compare(reference[0], same_run, reference[1], same_data) == []
    changed_run, changed_data = _fake_run(tmp_path / "c", error=0.25, scores=(0.2, 0.8))
    problems = drill.compare(reference[0], changed_run, reference[1], changed_data)
    assert len(problems) == 3, problems  # the record, the summary, the predictions
    assert any("record 0" in p for p in problems) and any("summary.json" in p for p in problems)
    assert any("predictions/event_0000.npz" in p for p in problems)
