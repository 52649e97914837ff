"""Run-record readers, reports and leaderboards, on run directories these tests write themselves."""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nevis_bench import cli
from nevis_bench.cli import reports as reports_cli
from nevis_bench.records.reader import (
    RecordError, SchemaVersionError, find_runs, read_events, read_run, summarize_events,
)
from nevis_bench.reports.tables import pareto_front

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (task key, domain, kind, year); "mnist" comes back, as a repeated dataset does in NEVIS'22.
TASKS = [
    ("mnist", "ocr", "single_label", 1998),
    ("voc", "object", "multi_label", 2007),
    ("dtd", "texture", "single_label", 2013),
    ("mnist", "ocr", "single_label", 2014),
    ("faces", "face", "single_label", 2016),
]
# learner -> (base error, train FLOPs per task, search FLOPs per task)
LEARNERS = {
    "independent": (0.30, 1.0e9, 2.0e8),
    "finetune_prev": (0.40, 4.0e8, 0.0),
    "replay": (0.35, 7.0e8, 1.0e8),
    "slow_bad": (0.50, 3.0e9, 0.0),  # worse and dearer than independent: dominated
}

CONFIG_IDS = {"independent": "a1b2c3d4", "finetune_prev": "0f0f0f0f", "replay": "12345678", "slow_bad": "deadbeef"}


def make_events(run_id: str, learner: str, seed: int, final_eval: bool) -> list[dict]:
    base, train_flops, search_flops = LEARNERS[learner]
    rng = np.random.default_rng([seed, sorted(LEARNERS).index(learner)])
    events: list[dict] = []
    cumulative = cumulative_inference = 0.0

    def add(event_type: str, task, metric: float | None, flops: dict, final: bool = False) -> None:
        nonlocal cumulative, cumulative_inference
        key, domain, kind, year = task
        cumulative += flops.get("train", 0.0) + flops.get("search", 0.0) + flops.get("selection", 0.0)
        cumulative_inference += flops.get("inference", 0.0)
        predict = event_type == "predict"
        events.append({
            "schema": 1, "run_id": run_id, "event_index": len(events), "event_type": event_type,
            "task_name": key.upper(), "task_key": key, "year": year, "split": "dev_test" if predict else "train",
            "task_kind": kind, "domain": domain, "num_examples": 40 + 10 * TASKS.index(task),
            "top1_accuracy": metric if predict and kind == "single_label" else None,
            "mean_average_precision": metric if predict and kind == "multi_label" else None,
            "error": 1.0 - metric if predict else None,
            "flops_train": flops.get("train", 0.0), "flops_search": flops.get("search", 0.0),
            "flops_selection": flops.get("selection", 0.0), "flops_inference": flops.get("inference", 0.0),
            "cumulative_flops": cumulative, "cumulative_flops_inference": cumulative_inference,
            "peak_parameter_count": 1000 * (1 + len(events)), "peak_parameter_bytes": 4000 * (1 + len(events)),
            "wall_seconds": 0.5, "final_eval": final, "learner_info": {"steps": 3},
        })

    metric_after: dict[str, float] = {}
    for position, task in enumerate(TASKS):
        add("train", task, None, {"train": train_flops * (1 + position), "search": search_flops, "selection": 1e6})
        metric = round(1.0 - base - 0.02 * position + float(rng.uniform(-0.05, 0.05)), 6)
        metric_after[task[0]] = metric
        add("predict", task, metric, {"inference": 1e7})
    if final_eval:
        seen = list(dict.fromkeys(t[0] for t in TASKS))
        for key in seen:
            task = next(t for t in TASKS if t[0] == key)
            add("predict", task, round(metric_after[key] - 0.1 * (key != TASKS[-1][0]), 6), {"inference": 1e7},
                final=True)
    return events


def write_run(root: Path, learner: str, seed: int, *, final_eval: bool = False, status: str | None = "complete",
              stop_after: int | None = None, partial_line: bool = False, name: str | None = None) -> tuple[Path, list]:
    """A run directory in the evaluator's format; returns (path, the events written as complete lines)."""
    config_id = CONFIG_IDS[learner]
    run_id = name or f"{learner}-s{seed}"
    path = root / "synthetic-short" / learner / run_id
    path.mkdir(parents=True)
    events = make_events(run_id, learner, seed, final_eval)[:stop_after]
    config = {
        "run_id": run_id, "stream": "synthetic-short", "learner": learner, "learner_config": {"lr": 0.1},
        "config_id": config_id, "seed": seed, "device": "cpu", "final": False, "final_eval": final_eval,
        "predict_split": "dev_test", "stop_year": 2020, "image_size": 32, "versions": {"nevis_bench": "0.1.0"},
        "created": f"2025-01-0{seed + 1}T00:00:00",
    }
    (path / "config.json").write_text(json.dumps(config, indent=1))
    text = "".join(json.dumps(e) + "\n" for e in events)
    if partial_line:
        text += json.dumps(make_events(run_id, learner, seed, final_eval)[len(events)])[:37]
    (path / "events.jsonl").write_text(text)
    if status is not None:
        summary = {"schema": 1, "run_id": run_id, "stream": "synthetic-short", "learner": learner,
                   "config_id": config_id, "seed": seed, "status": status,
                   "error_message": "RuntimeError: out of memory" if status == "failed" else None,
                   "predict_split": "dev_test", "stop_year": 2020, "average_error": 0.123456}  # stale on purpose
        (path / "summary.json").write_text(json.dumps(summary))
    return path, events


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> tuple[Path, dict]:
    """Complete runs of four learners (3 or 2 seeds; replay with a final evaluation) and three others."""
    root = tmp_path_factory.mktemp("runs")
    events = {}
    for learner, seeds in [("independent", [0, 1, 2]), ("finetune_prev", [0, 1, 2]), ("replay", [0, 1]),
                           ("slow_bad", [0])]:
        for seed in seeds:
            path, evs = write_run(root, learner, seed, final_eval=learner == "replay")
            events[path.name] = evs
    write_run(root, "finetune_prev", 7, status=None, stop_after=5, partial_line=True, name="being-written")
    write_run(root, "finetune_prev", 8, status="interrupted", stop_after=4, name="interrupted")
    write_run(root, "replay", 9, status="failed", stop_after=3, name="crashed")
    return root, events


@pytest.fixture(scope="module")
def leaderboard_dir(runs_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("leaderboard")
    args = _parse(["leaderboard", "--runs-dir", str(runs_root[0]), "--output", str(out)])
    assert args.func(args) == 0
    return out


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    reports_cli.add_subcommands(parser.add_subparsers())
    return parser.parse_args(argv)


# --- independent recomputation from the events the helper wrote -----------------------------------

def in_stream(events):
    return [e for e in events if e["event_type"] == "predict" and not e["final_eval"]]


def expected_average_error(events) -> float:
    return sum(e["error"] for e in in_stream(events)) / len(in_stream(events))


def expected_weighted_error(events) -> float:
    preds = in_stream(events)
    return sum(e["error"] * e["num_examples"] for e in preds) / sum(e["num_examples"] for e in preds)


def expected_headline(events) -> float:
    return sum(e["flops_train"] + e["flops_search"] + e["flops_selection"] for e in events)


def expected_forgetting_bwt(events) -> tuple[float, float]:
    metric = lambda e: e["top1_accuracy"] if e["task_kind"] == "single_label" else e["mean_average_precision"]  # noqa
    last_trained = [e for e in events if e["event_type"] == "train"][-1]["task_key"]
    final = {e["task_key"]: metric(e) for e in events if e["final_eval"]}
    forgetting, bwt = [], []
    for key, value in final.items():
        if key == last_trained:
            continue
        history = [metric(e) for e in in_stream(events) if e["task_key"] == key]
        forgetting.append(max(history) - value)
        bwt.append(value - history[-1])
    return float(np.mean(forgetting)), float(np.mean(bwt))


def t975(dof: int) -> float:
    return {1: 12.7062047361747, 2: 4.30265272974946}[dof]


# --- readers -----------------------------------------------------------------------------------------

def test_read_run_and_summary_metrics(runs_root):
    root, events = runs_root
    run = read_run(root / "synthetic-short" / "replay" / "replay-s0")
    assert run.finished and run.learner == "replay" and run.seed == 0
    assert list(run.events["event_index"]) == list(range(len(events["replay-s0"])))
    m = summarize_events(run.event_list)
    assert m["average_error"] == pytest.approx(expected_average_error(events["replay-s0"]))
    assert m["weighted_error"] == pytest.approx(expected_weighted_error(events["replay-s0"]))
    assert m["cumulative_flops"] == pytest.approx(expected_headline(events["replay-s0"]))
    forgetting, bwt = expected_forgetting_bwt(events["replay-s0"])
    assert m["final_eval"]["average_forgetting"] == pytest.approx(forgetting)
    assert m["final_eval"]["backward_transfer"] == pytest.approx(bwt)
    assert m["mean_average_precision"] == pytest.approx(
        [e["mean_average_precision"] for e in in_stream(events["replay-s0"]) if e["task_kind"] == "multi_label"][0])


def test_find_runs_is_recursive_and_sorted(runs_root, tmp_path):
    root, _ = runs_root
    found = find_runs(root)
    assert len(found) == 12 and found == sorted(found)
    assert all((p / "config.json").is_file() for p in found)
    assert find_runs(tmp_path) == []


def test_partial_last_line_is_tolerated_only_at_the_end(runs_root):
    root, _ = runs_root
    run_dir = root / "synthetic-short" / "finetune_prev" / "being-written"
    assert len(read_events(run_dir)) == 5
    with pytest.raises(RecordError, match=r"events\.jsonl:6: truncated last line"):
        read_events(run_dir, allow_partial_last_line=False)
    run = read_run(run_dir)
    assert run.status == "unfinished" and run.summary is None and len(run.events) == 5


def _copy_run(tmp_path: Path, lines: list[str], complete: bool = True, trailing_newline: bool = True) -> Path:
    run_dir, _ = write_run(tmp_path, "independent", 0)
    (run_dir / "events.jsonl").write_text("\n".join(lines) + ("\n" if trailing_newline else ""))
    if not complete:
        (run_dir / "summary.json").unlink()
    return run_dir


def test_malformed_line_names_file_and_line(tmp_path):
    events = make_events("independent-s0", "independent", 0, False)
    lines = [json.dumps(e) for e in events]
    lines[2] = lines[2][:25]  # truncated in the middle of the file: never tolerated
    run_dir = _copy_run(tmp_path, lines)
    with pytest.raises(RecordError) as info:
        read_events(run_dir)
    assert info.value.line == 3 and str(info.value).startswith(f"{run_dir / 'events.jsonl'}:3: malformed line")


def test_complete_run_with_truncated_last_line_is_an_error(tmp_path):
    lines = [json.dumps(e) for e in make_events("independent-s0", "independent", 0, False)]
    lines[-1] = lines[-1][:40]
    run_dir = _copy_run(tmp_path, lines, trailing_newline=False)
    assert len(read_events(run_dir)) == len(lines) - 1
    with pytest.raises(RecordError, match=r"events\.jsonl:10: truncated last line"):
        read_run(run_dir)


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(schema=2), "unknown schema version 2"),
    (lambda e: e.pop("task_key"), "missing field"),
    (lambda e: e.update(error=0.9), "is not 1 - mean_average_precision"),
    (lambda e: e.update(mean_average_precision=None), "needs a finite number in 'mean_average_precision'"),
    (lambda e: e.update(top1_accuracy=0.5), "must have 'top1_accuracy' null"),
    (lambda e: e.update(event_type="eval"), "event_type must be one of"),
    (lambda e: e.update(year=2001.5), "'year' must be a non-negative integer"),
    (lambda e: e.update(flops_train=-1.0), "'flops_train' must be a finite non-negative number"),
    (lambda e: e.update(cumulative_flops=1.0), "cumulative_flops"),
    (lambda e: e.update(event_index=0), "event_index 0 does not follow"),
])
def test_invalid_event_is_reported_with_its_line(tmp_path, change, message):
    events = make_events("independent-s0", "independent", 0, False)
    change(events[3])
    run_dir = _copy_run(tmp_path, [json.dumps(e) for e in events])
    with pytest.raises(RecordError, match=re.escape(message)) as info:
        read_events(run_dir)
    assert info.value.line == 4 and ":4: " in str(info.value)
    if "schema" in message:
        assert isinstance(info.value, SchemaVersionError)


def test_undefined_metric_is_null_in_both_fields(tmp_path):
    events = make_events("independent-s0", "independent", 0, False)
    events[3].update(mean_average_precision=None, error=None)  # mAP of a split without positives
    events[4]["peak_parameter_count"] = 5000.0  # an integral float is an integer
    run_dir = _copy_run(tmp_path, [json.dumps(e) for e in events])
    assert read_events(run_dir)[3]["error"] is None


def test_unknown_summary_schema_raises(tmp_path):
    run_dir, _ = write_run(tmp_path, "independent", 0)
    (run_dir / "summary.json").write_text(json.dumps({"schema": 3, "status": "complete"}))
    with pytest.raises(SchemaVersionError, match="summary.json"):
        read_run(run_dir)


# --- tables ------------------------------------------------------------------------------------------

def test_runs_table_matches_events(leaderboard_dir, runs_root):
    _, events = runs_root
    table = pd.read_csv(leaderboard_dir / "runs.csv")
    assert sorted(table["run_id"]) == sorted(events)  # complete runs only
    for row in table.itertuples():
        evs = events[row.run_id]
        assert row.average_error == pytest.approx(expected_average_error(evs), abs=1e-12)
        assert row.weighted_error == pytest.approx(expected_weighted_error(evs), abs=1e-12)
        assert row.headline_flops == pytest.approx(expected_headline(evs))
        assert row.inference_flops == pytest.approx(sum(e["flops_inference"] for e in evs))
        assert row.peak_parameters == max(e["peak_parameter_count"] for e in evs)
        assert row.average_error != pytest.approx(0.123456)  # summary.json's number is not used


def test_leaderboard_matches_events(leaderboard_dir, runs_root):
    _, events = runs_root
    table = pd.read_csv(leaderboard_dir / "leaderboard.csv")
    assert list(table["average_error"]) == sorted(table["average_error"])
    by_learner: dict[str, list] = {}
    for run_id, evs in events.items():
        by_learner.setdefault(run_id.rsplit("-s", 1)[0], []).append(evs)
    assert sorted(table["learner"]) == sorted(by_learner)
    points = {}
    for row in table.itertuples():
        runs = by_learner[row.learner]
        errors = [expected_average_error(evs) for evs in runs]
        assert row.seeds == len(runs)
        assert row.average_error == pytest.approx(np.mean(errors), abs=1e-12)
        if len(runs) > 1:
            half = t975(len(runs) - 1) * np.std(errors, ddof=1) / math.sqrt(len(runs))
            assert row.average_error_ci95 == pytest.approx(half, rel=1e-9)
        else:
            assert math.isnan(row.average_error_ci95)  # one seed: no interval
        assert row.headline_flops == pytest.approx(np.mean([expected_headline(evs) for evs in runs]))
        points[row.learner] = (row.average_error, row.headline_flops)
    for row in table.itertuples():
        error, flops = points[row.learner]
        dominated = any(e <= error and f <= flops and (e, f) != (error, flops) for e, f in points.values())
        assert row.pareto == (not dominated)
    assert not table.set_index("learner").loc["slow_bad", "pareto"]
    forgetting = table.set_index("learner").loc["replay", "average_forgetting"]
    assert forgetting == pytest.approx(np.mean([expected_forgetting_bwt(e)[0] for e in by_learner["replay"]]))


def test_pareto_front_constructed_example():
    errors = [0.1, 0.1, 0.2, 0.3, 0.2, float("nan"), 0.05]
    flops = [10, 10, 5, 20, 10, 1, 50]
    assert pareto_front(errors, flops) == [True, True, True, False, False, False, True]


def test_per_task_transfer_against_independent(leaderboard_dir, runs_root):
    _, events = runs_root
    table = pd.read_csv(leaderboard_dir / "per_task.csv")
    independent = [events[f"independent-s{s}"] for s in range(3)]
    row = table[table["run"].str.endswith("replay-s1") & (table["step"] == 2)].iloc[0]
    baseline = np.mean([in_stream(evs)[1]["error"] for evs in independent])
    assert row["task_key"] == "voc" and row["task_kind"] == "multi_label" and row["domain"] == "object"
    assert row["independent_error"] == pytest.approx(baseline)
    assert row["relative_error"] == pytest.approx(in_stream(events["replay-s1"])[1]["error"] - baseline)
    train = events["replay-s1"][2]
    assert row["flops_train"] == train["flops_train"] and row["flops_inference"] == 1e7
    assert len(table) == len(events) * len(TASKS)


def test_unfinished_and_failed_runs_are_listed_apart(leaderboard_dir):
    excluded = pd.read_csv(leaderboard_dir / "excluded_runs.csv")
    assert dict(zip(excluded["run_id"], excluded["status"])) == {
        "being-written": "unfinished", "interrupted": "interrupted", "crashed": "failed"}
    assert excluded.set_index("run_id").loc["crashed", "error_message"] == "RuntimeError: out of memory"
    runs = pd.read_csv(leaderboard_dir / "runs.csv")
    assert set(runs["status"]) == {"complete"}
    assert not set(excluded["run_id"]) & set(runs["run_id"])
    page = (leaderboard_dir / "report.html").read_text()
    section = page.split("<h2>Unfinished and failed runs</h2>")[1]
    assert all(name in section for name in ("being-written", "interrupted", "crashed"))
    assert "being-written" not in page.split("<h2>Unfinished and failed runs</h2>")[0]


def test_markdown_and_latex_tables(leaderboard_dir):
    csv = pd.read_csv(leaderboard_dir / "leaderboard.csv")
    markdown = (leaderboard_dir / "leaderboard.md").read_text().splitlines()
    assert markdown[0].startswith("| learner | config_id |") and len(markdown) == len(csv) + 2
    first = csv.iloc[0]
    assert f"| {first['average_error']:.4f} |" in markdown[2]
    latex = (leaderboard_dir / "leaderboard.tex").read_text()
    assert latex.startswith("\\begin{tabular}") and "finetune\\_prev" in latex and latex.count("\\\\") == len(csv) + 1


# --- figures, HTML, determinism -------------------------------------------------------------------------

def test_figures_are_png_and_embedded(leaderboard_dir):
    pngs = sorted((leaderboard_dir / "figures").glob("*.png"))
    kinds = {p.name.split("--")[0] for p in pngs}
    assert kinds == {"error_vs_flops", "transfer", "compute_per_task", "accuracy_matrix"}
    page = (leaderboard_dir / "report.html").read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(pngs)
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        assert base64.b64encode(data).decode() in uris
    assert "http" not in page.replace("http-equiv", "")  # opens from disk, nothing fetched


def test_rebuild_is_byte_identical(runs_root, leaderboard_dir, tmp_path):
    args = _parse(["leaderboard", "--runs-dir", str(runs_root[0]), "--output", str(tmp_path / "again")])
    assert args.func(args) == 0
    first = {p.relative_to(leaderboard_dir): p.read_bytes() for p in leaderboard_dir.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_report_command_on_run_dirs(runs_root, tmp_path):
    root, events = runs_root
    dirs = [str(p) for p in find_runs(root) if p.name in ("independent-s0", "replay-s0", "crashed")]
    args = _parse(["report", *dirs, "--output", str(tmp_path / "out")])
    assert args.func(args) == 0
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(runs["run_id"]) == ["independent-s0", "replay-s0"]
    assert list(pd.read_csv(tmp_path / "out" / "excluded_runs.csv")["run_id"]) == ["crashed"]
    names = {p.name for p in (tmp_path / "out" / "figures").glob("*.png")}
    assert "accuracy_matrix--synthetic-short--dev_test--replay-12345678-seed-0.png" in names
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(board["seeds"]) == [1, 1]


def test_report_reports_bad_record_with_exit_code(tmp_path, capsys):
    run_dir, events = write_run(tmp_path, "independent", 0)
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    lines[1] = "{not json"
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")
    assert cli.main(["report", str(run_dir), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run_dir / 'events.jsonl'}:2: malformed line") and err.count("\n") == 1


def test_subcommands_are_registered():
    assert "nevis_bench.cli.reports" in cli.SUBCOMMAND_MODULES
