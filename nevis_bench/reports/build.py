"""Building a report or leaderboard directory from run directories.

Output layout (``OUT_DIR``)::

    report.html                       self-contained: tables inline, figures as data URIs
    leaderboard.{csv,md,tex}          configurations over seeds (complete runs only)
    runs.{csv,md,tex}                 one row per run shown
    per_task.{csv,md,tex}             one row per in-stream prediction, with transfer vs independent
    final_eval.{csv,md,tex}           forgetting and backward transfer of runs with a final evaluation
    excluded_runs.{csv,md,tex}        unfinished (running, interrupted, no summary) and failed runs
    figures/*.png                     every figure of report.html

Nothing in the outputs depends on the time, the machine or the working directory: run names are
paths relative to ``root``, so rebuilding from the same records gives byte-identical files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from nevis_bench.records.reader import FAILED, FLOP_FIELDS, RecordError, Run, error_curve, read_run, step_flops
from nevis_bench.reports import figures
from nevis_bench.reports.formatting import write_table
from nevis_bench.reports.html import Section, render
from nevis_bench.reports.tables import (
    INDEPENDENT, excluded_table, final_eval_table, leaderboard_table, pareto_front, per_task_table, runs_table,
)

FIGURES_DIR = "figures"
FIGURE_KINDS = ("error_vs_flops", "transfer", "compute_per_task", "accuracy_matrix")


@dataclass
class Unit:
    """What one panel of a figure shows: one run (report) or one configuration's seeds (leaderboard)."""

    label: str
    slug: str
    runs: list[Run]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")


def _series(run: Run) -> str:
    return f"{run.learner} [{run.config_id}]"


def _sort_key(run: Run, names: dict) -> tuple:
    return (run.stream, run.predict_split, run.learner, run.config_id, str(run.seed), names[run.path])


def _run_units(runs: list[Run], names: dict) -> list[Unit]:
    labels = [f"{_series(r)} seed {r.seed}" for r in runs]
    units = []
    for run, label in zip(runs, labels):
        if labels.count(label) > 1:
            label = f"{label} ({names[run.path]})"
        units.append(Unit(label, slug(label), [run]))
    return units


def _group_units(runs: list[Run]) -> list[Unit]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group_key, []).append(run)
    units = []
    for (learner, config_id, _, _), members in groups.items():
        seeds = len({r.seed for r in members})
        label = f"{learner} [{config_id}], {seeds} seed{'s' if seeds != 1 else ''}"
        units.append(Unit(label, slug(f"{learner}-{config_id}"), members))
    return units


def _error_vs_flops(runs: list[Run], run_rows: pd.DataFrame, names: dict, title: str) -> bytes:
    curves = pd.concat(
        [error_curve(r.events).assign(run=names[r.path], series=_series(r)) for r in runs], ignore_index=True
    )
    rows = run_rows.set_index("run").loc[[names[r.path] for r in runs]]
    endpoints = pd.DataFrame({
        "run": rows.index, "series": [_series(r) for r in runs],
        "headline_flops": rows["headline_flops"].to_numpy(), "average_error": rows["average_error"].to_numpy(),
    })
    endpoints["pareto"] = pareto_front(endpoints["average_error"], endpoints["headline_flops"])
    return figures.error_vs_flops(curves, endpoints, title)


def _unit_steps(unit: Unit, per_task: pd.DataFrame, names: dict) -> pd.DataFrame:
    """Per-task rows of a unit, averaged over its runs."""
    rows = per_task[per_task["run"].isin([names[r.path] for r in unit.runs])]
    return (rows.groupby(["step", "task_key", "domain"], sort=True)[["error", "relative_error"]].mean()
            .reset_index())


def _unit_flops(unit: Unit) -> pd.DataFrame:
    frames = pd.concat([step_flops(r.events) for r in unit.runs], ignore_index=True)
    return frames.groupby(["step", "task_key"], sort=True)[list(FLOP_FIELDS)].mean().reset_index()


def _unit_matrix(unit: Unit) -> tuple[pd.DataFrame, float, float] | None:
    """Mean accuracy matrix over the unit's runs with a final evaluation, forgetting and BWT."""
    frames, forgetting, transfer = [], [], []
    for run in unit.runs:
        final = run.metrics["final_eval"]
        if not final:
            continue
        labels = [f"{i}. {row['label']}" if row["label"] != "final" else "final"
                  for i, row in enumerate(final["rows"], start=1)]
        frames.append(pd.DataFrame([row["values"] for row in final["rows"]], index=labels,
                                   columns=final["tasks"], dtype=float))
        forgetting.append(final["average_forgetting"])
        transfer.append(final["backward_transfer"])
    if not frames:
        return None
    matrix = pd.concat(frames).groupby(level=0, sort=False).mean()
    mean = lambda values: float(pd.Series(values, dtype=float).mean())  # noqa: E731 (None -> NaN, skipped)
    return matrix, mean(forgetting), mean(transfer)


def _figures(runs: list[Run], run_rows, per_task, names, per_run: bool) -> list[tuple[str, str, str, bytes]]:
    """(section, file name, caption, PNG) of every figure, per stream and split in sorted order."""
    out = []
    streams = sorted({(r.stream, r.predict_split) for r in runs})
    for stream, split in streams:
        part = [r for r in runs if (r.stream, r.predict_split) == (stream, split)]
        units = _run_units(part, names) if per_run else _group_units(part)
        where = f"{stream}, {split}"
        suffix = f"{slug(stream)}--{slug(split)}"
        if any(len(r.events) for r in part):
            out.append(("error_vs_flops", f"error_vs_flops--{suffix}.png",
                        f"Average error vs cumulative headline FLOPs, {where}: one curve per run, end points per "
                        "run, Pareto front over runs ringed.",
                        _error_vs_flops(part, run_rows, names, f"Error vs compute: {where}")))

        has_baseline = per_task.loc[per_task["stream"].eq(stream) & per_task["predict_split"].eq(split),
                                    "independent_error"].notna().any()
        value = "relative_error" if has_baseline else "error"
        panels = [(u.label, _unit_steps(u, per_task, names).rename(columns={value: "value"})) for u in units
                  if not (has_baseline and u.runs[0].learner == INDEPENDENT)]
        panels = [(label, frame) for label, frame in panels if len(frame)]
        if panels:
            what = "error minus the independent learner's error (below 0: positive transfer)" if has_baseline \
                else "error (no independent run on this stream to compare with)"
            out.append(("transfer", f"transfer--{suffix}.png",
                        f"Per-task {what}, {where}; tasks in stream order, coloured by domain.",
                        figures.per_task_errors(panels, has_baseline, f"Per-task transfer: {where}")))

        panels = [(u.label, _unit_flops(u)) for u in units]
        panels = [(label, frame) for label, frame in panels if len(frame)]
        if panels:
            out.append(("compute_per_task", f"compute_per_task--{suffix}.png",
                        f"FLOPs per task by phase, {where} (the last bar is the final evaluation where there is one).",
                        figures.compute_per_task(panels, f"Compute per task: {where}")))

        for unit in units:
            result = _unit_matrix(unit)
            if result is None:
                continue
            matrix, forgetting, transfer = result
            title = f"{unit.label}: forgetting {forgetting:.3f}, BWT {transfer:.3f}"
            out.append(("accuracy_matrix", f"accuracy_matrix--{suffix}--{unit.slug}.png",
                        f"Accuracy (or mAP) right after training each task and at the final evaluation, {where}: "
                        f"{unit.label}.", figures.accuracy_matrix(matrix, title)))
    return out


_INTRO = [
    "Every number is recomputed from the runs' events.jsonl; summary.json only gives each run's status.",
    "Our headline: average_error is the mean of 1 - metric (top-1 accuracy, or mAP for multi-label tasks) over the "
    "predict events right after each training (the final evaluation is not included); weighted_error weights each "
    "event by its number of examples. Headline FLOPs: train + search + selection + validation, cumulative over the "
    "stream; inference FLOPs are reported beside them.",
    "The reference's metrics (NEVIS'22, never merged across task kinds): average_single_label_accuracy (mean top-1 "
    "accuracy over single-label tasks), weighted_single_label_accuracy (correct / examples over single-label tasks), "
    "average_multi_label_map (mean mAP over multi-label tasks; a label with no positive example scores 0, as "
    "scikit-learn >= 1.1 scores it). reference_flops: the reference's FLOP convention, kept training steps plus "
    "search trials (no validation, no selection).",
    "Leaderboard: one row per (learner, config_id, stream, predict_split) over seeds; average_error_ci95 is the "
    "half-width of the 95% t-interval of the mean over seeds (n/a with one seed). pareto: no other row of the same "
    "stream and split has both lower-or-equal error and lower-or-equal headline FLOPs with one strictly lower.",
]


def build(run_dirs: Sequence[os.PathLike | str], out_dir: os.PathLike | str, *, root: os.PathLike | str,
          title: str, per_run: bool, include_unfinished: bool = False, skip_bad_runs: bool = False,
          sort_by: str = "average_error") -> list[Path]:
    """Read ``run_dirs``, write tables, figures and ``report.html`` under ``out_dir``; return the files.

    ``per_run``: figure panels per run (report) or per configuration over seeds (leaderboard).
    ``include_unfinished``: also show running, interrupted and summary-less runs in the figures and the
    runs table; the leaderboard table keeps complete runs only. Failed runs are always left out.
    A damaged record stops the build with its ``path:line`` (:class:`RecordError`); with
    ``skip_bad_runs`` that run is left out instead and listed as unreadable in the excluded runs.
    ``sort_by``: the leaderboard column rows are ranked by within a stream and split
    (:data:`nevis_bench.reports.tables.SORT_KEYS`).
    """
    def name_of(path: os.PathLike | str) -> str:
        return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()

    all_runs, unreadable = [], []
    for run_dir in run_dirs:
        try:
            all_runs.append(read_run(run_dir))
        except RecordError as error:
            if not skip_bad_runs:
                raise
            unreadable.append((name_of(run_dir), str(error)))
    names = {r.path: name_of(r.path) for r in all_runs}
    all_runs.sort(key=lambda r: _sort_key(r, names))
    is_shown = [r.finished or (include_unfinished and r.status != FAILED) for r in all_runs]
    shown = [r for r, keep in zip(all_runs, is_shown) if keep]
    left_out = [r for r, keep in zip(all_runs, is_shown) if not keep]

    run_rows = runs_table(shown, names)
    tables = {
        "leaderboard": leaderboard_table(run_rows[run_rows["status"] == "complete"], sort_by),
        "runs": run_rows,
        "per_task": per_task_table(shown, names),
        "final_eval": final_eval_table(run_rows),
        "excluded_runs": excluded_table(left_out, names, unreadable),
    }
    drawn = _figures(shown, run_rows, tables["per_task"], names, per_run) if shown else []

    out_dir = Path(out_dir)
    figure_dir = out_dir / FIGURES_DIR
    figure_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, table in tables.items():
        written += write_table(table, out_dir, name)
    for _, file_name, _, png in drawn:
        (figure_dir / file_name).write_bytes(png)
        written.append(figure_dir / file_name)
    for stale in sorted(figure_dir.glob("*.png")):  # figures of an earlier build that this one did not draw
        if stale not in written and stale.name.split("--")[0] in FIGURE_KINDS:
            stale.unlink()

    def section_figures(*kinds: str) -> list[tuple[str, str, bytes]]:
        return [(f"{FIGURES_DIR}/{name}", caption, png) for kind, name, caption, png in drawn if kind in kinds]

    counts = (f"{len(all_runs)} run(s) read: {len(shown)} shown, {len(left_out)} unfinished or failed listed apart"
              + (f", {len(unreadable)} unreadable left out." if unreadable else "."))
    sections = [
        Section("Leaderboard", tables=[("", tables["leaderboard"])], figures=section_figures("error_vs_flops")),
        Section("Runs", tables=[("", tables["runs"])],
                notes=["Per-task errors, with the independent learner's error beside them: per_task.csv."]),
        Section("Transfer", figures=section_figures("transfer")),
        Section("Forgetting and backward transfer",
                notes=["Forgetting: per task except the last one trained, best in-stream metric minus final metric; "
                       "backward transfer: final metric minus the metric right after the task's last training; "
                       "both averaged over tasks. Only runs with a final evaluation have them."],
                tables=[("", tables["final_eval"])], figures=section_figures("accuracy_matrix")),
        Section("Compute per task", figures=section_figures("compute_per_task")),
        Section("Unfinished and failed runs",
                notes=["Not in the tables or figures above: status running or interrupted, no summary.json "
                       "(unfinished), or failed."] if not include_unfinished else
                ["Failed runs; running, interrupted and summary-less runs are shown above (--include-unfinished)."],
                tables=[("", tables["excluded_runs"])]),
    ]
    report = out_dir / "report.html"
    report.write_text(render(title, [counts, *_INTRO], sections), encoding="utf-8")
    written.append(report)
    return written


def update_readme_table(table_file: str | Path, readme: str | Path) -> None:
    """Replace the text between ``<!-- leaderboard -->`` and ``<!-- /leaderboard -->`` in ``readme``
    with the Markdown table in ``table_file``."""
    readme = Path(readme)
    text = readme.read_text()
    pattern = re.compile(r"(<!-- leaderboard -->\n).*?(<!-- /leaderboard -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no <!-- leaderboard --> ... <!-- /leaderboard --> markers")
    table = Path(table_file).read_text().strip()
    readme.write_text(pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text))
