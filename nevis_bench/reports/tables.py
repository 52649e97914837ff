"""Tables built from run records: runs, leaderboard, per-task errors, excluded runs.

Every number is recomputed from ``events.jsonl`` (:mod:`nevis_bench.records.reader`); ``summary.json``
only supplies a run's status and error message.

Leaderboard rules:

* A row is a configuration: (learner, config_id, stream, predict_split), over its seeds. Runs that
  share a seed are averaged first, so the seed is the unit of replication.
* ``average_error`` is the mean over seeds of each run's average error; ``average_error_ci95`` is the
  half-width of the 95% confidence interval of that mean, ``t(0.975, n-1) * sd / sqrt(n)`` with the
  sample standard deviation (ddof 1). With one seed it is NaN (shown as n/a): one seed says nothing
  about the spread.
* FLOPs, wall time, forgetting and backward transfer are means over seeds (forgetting and backward
  transfer over the seeds that have a final evaluation); ``peak_parameters`` is the maximum.
* ``pareto`` marks rows no other row of the same stream and split dominates, where a row dominates
  another when its error and headline FLOPs are both lower or equal and one is strictly lower.
* Two families of quality numbers sit side by side and are never merged: our error-based headline
  (``average_error``, ``weighted_error``: 1 - accuracy or 1 - mAP over every task) and the
  reference's metrics (``average_single_label_accuracy``, ``weighted_single_label_accuracy``,
  ``average_multi_label_map``; :mod:`nevis_bench.records.metrics`). Compute likewise: our
  ``headline_flops`` (train + search + selection + validation) and the reference's
  ``reference_flops`` (kept training steps + search trials).
* Rows are sorted by stream, split, then ``sort_by`` (default average error; accuracies and mAP
  sort best first, errors and FLOPs lowest first; ties: headline FLOPs, learner, config_id).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from nevis_bench.records.reader import FLOP_FIELDS, Run, in_stream_predictions, step_flops

GROUP_COLUMNS = ["learner", "config_id", "stream", "predict_split"]
INDEPENDENT = "independent"  # the learner other runs are compared with for transfer

REFERENCE_METRICS = ["average_single_label_accuracy", "weighted_single_label_accuracy", "average_multi_label_map"]
RUN_COLUMNS = [
    "run", "run_id", *GROUP_COLUMNS, "seed", "status", "tasks", "average_error", "weighted_error",
    *REFERENCE_METRICS, "headline_flops", "reference_flops", "inference_flops", "peak_parameters",
    "wall_seconds", "average_forgetting", "backward_transfer", "final_average_error",
]
LEADERBOARD_COLUMNS = [
    *GROUP_COLUMNS, "seeds", "average_error", "average_error_ci95", "weighted_error", *REFERENCE_METRICS,
    "headline_flops", "reference_flops", "inference_flops", "peak_parameters", "wall_seconds",
    "average_forgetting", "backward_transfer", "pareto",
]
# Leaderboard sort keys and their direction (True: higher is better, sorted first).
SORT_KEYS = {
    "average_error": False, "weighted_error": False, **{name: True for name in REFERENCE_METRICS},
    "headline_flops": False, "reference_flops": False, "inference_flops": False, "wall_seconds": False,
    "average_forgetting": False, "backward_transfer": True,
}
PER_TASK_COLUMNS = [
    "run", "learner", "config_id", "stream", "predict_split", "seed", "step", "task_key", "task_name", "year",
    "domain", "task_kind", "num_examples", "error", "independent_error", "relative_error", *FLOP_FIELDS,
]
EXCLUDED_COLUMNS = ["run", "run_id", *GROUP_COLUMNS, "seed", "status", "events", "error_message"]
FINAL_EVAL_COLUMNS = [
    "run", *GROUP_COLUMNS, "seed", "average_forgetting", "backward_transfer", "final_average_error",
]


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def runs_table(runs: Sequence[Run], names: dict) -> pd.DataFrame:
    """One row per run; ``names`` maps a run's path to the name shown in the ``run`` column."""
    rows = []
    for run in runs:
        m = run.metrics
        final = m["final_eval"] or {}
        rows.append({
            "run": names[run.path], "run_id": run.run_id, "learner": run.learner, "config_id": run.config_id,
            "stream": run.stream, "predict_split": run.predict_split, "seed": run.seed, "status": run.status,
            "tasks": m["num_predict_events"],
            "average_error": _number(m["average_error"]), "weighted_error": _number(m["weighted_error"]),
            **{name: _number(m[name]) for name in REFERENCE_METRICS},
            "headline_flops": float(m["cumulative_flops"]), "reference_flops": float(m["flops_reference"]),
            "inference_flops": float(m["flops_inference"]),
            "peak_parameters": int(m["peak_parameter_count"]), "wall_seconds": float(m["wall_seconds"]),
            "average_forgetting": _number(final.get("average_forgetting")),
            "backward_transfer": _number(final.get("backward_transfer")),
            "final_average_error": _number(final.get("final_average_error")),
        })
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def ci95_half_width(values: Sequence[float]) -> float:
    """Half-width of the t-distribution 95% confidence interval of the mean; NaN for fewer than 2 values."""
    from scipy import stats  # a scikit-learn dependency

    values = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def pareto_front(errors: Sequence[float], flops: Sequence[float]) -> list[bool]:
    """Whether each point is undominated (lower is better on both axes); NaN points are never on it."""
    points = list(zip(map(float, errors), map(float, flops)))
    front = []
    for i, (error, cost) in enumerate(points):
        if math.isnan(error) or math.isnan(cost):
            front.append(False)
            continue
        dominated = any(
            e <= error and c <= cost and (e < error or c < cost)
            for j, (e, c) in enumerate(points) if j != i and not (math.isnan(e) or math.isnan(c))
        )
        front.append(not dominated)
    return front


def leaderboard_table(run_rows: pd.DataFrame, sort_by: str = "average_error") -> pd.DataFrame:
    """Configurations over seeds, from rows of :func:`runs_table` (complete runs only), sorted within each
    stream and split by ``sort_by`` (a key of :data:`SORT_KEYS`)."""
    if sort_by not in SORT_KEYS:
        from nevis_bench.errors import InputError

        raise InputError(f"cannot sort the leaderboard by {sort_by!r}; choose one of {', '.join(SORT_KEYS)}")
    if run_rows.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    means = ["average_error", "weighted_error", *REFERENCE_METRICS, "headline_flops", "reference_flops",
             "inference_flops", "wall_seconds", "average_forgetting", "backward_transfer"]
    per_seed = run_rows.groupby(GROUP_COLUMNS + ["seed"], sort=True).agg(
        {**{c: "mean" for c in means}, "peak_parameters": "max"}
    ).reset_index()
    grouped = per_seed.groupby(GROUP_COLUMNS, sort=True)
    table = grouped.agg({**{c: "mean" for c in means}, "peak_parameters": "max", "seed": "count"})
    table = table.rename(columns={"seed": "seeds"})
    table["average_error_ci95"] = grouped["average_error"].agg(ci95_half_width)
    table = table.reset_index()
    table["pareto"] = False
    for _, index in table.groupby(["stream", "predict_split"], sort=True).groups.items():
        part = table.loc[index]
        table.loc[index, "pareto"] = pareto_front(part["average_error"], part["headline_flops"])
    order = ["stream", "predict_split", sort_by] + [c for c in ("average_error", "headline_flops") if c != sort_by]
    table = table.sort_values(
        order + ["learner", "config_id"], ascending=[True, True, not SORT_KEYS[sort_by]] + [True] * (len(order) - 1),
        na_position="last", kind="mergesort",
    )
    return table[LEADERBOARD_COLUMNS].reset_index(drop=True)


def per_task_table(runs: Sequence[Run], names: dict) -> pd.DataFrame:
    """One row per in-stream prediction of every run, with the error of the ``independent`` learner.

    ``independent_error`` is the mean error of the ``independent`` runs among ``runs`` on the same
    stream, split, step and task; ``relative_error`` = error - independent_error (negative: the run
    does better than learning the task alone, i.e. positive transfer). NaN where there is none.
    FLOP columns are the step's train event plus its predict event.
    """
    parts = []
    for run in runs:
        predictions = in_stream_predictions(run.events)
        flops = step_flops(run.events).drop(columns="task_key")
        part = predictions.merge(flops, on="step", how="left", suffixes=("_event", ""))
        part = part.assign(run=names[run.path], learner=run.learner, config_id=run.config_id, stream=run.stream,
                           predict_split=run.predict_split, seed=run.seed)
        parts.append(part)
    columns = [c for c in PER_TASK_COLUMNS if c not in ("independent_error", "relative_error")]
    table = pd.concat([p[columns] for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=columns)
    table = table.astype({"step": int, "year": int, "num_examples": int, "error": float, **{f: float for f in FLOP_FIELDS}})
    keys = ["stream", "predict_split", "step", "task_key"]
    baseline = (table[table["learner"] == INDEPENDENT].groupby(keys, sort=True)["error"].mean()
                .rename("independent_error").reset_index())
    table = table.merge(baseline, on=keys, how="left")
    table["independent_error"] = table["independent_error"].astype(float)
    table["relative_error"] = table["error"] - table["independent_error"]
    return table[PER_TASK_COLUMNS]


def excluded_table(runs: Sequence[Run], names: dict, unreadable: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """Runs left out of the leaderboard: unfinished (running, interrupted, no summary), failed, or
    unreadable (``(run, error)`` pairs of runs whose records are damaged)."""
    rows = [{
        "run": names[run.path], "run_id": run.run_id, "learner": run.learner, "config_id": run.config_id,
        "stream": run.stream, "predict_split": run.predict_split, "seed": run.seed, "status": run.status,
        "events": len(run.event_list),
        "error_message": (run.summary or {}).get("error_message") or "",
    } for run in runs]
    rows += [{"run": name, "status": "unreadable", "error_message": error} for name, error in unreadable]
    return pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)


def final_eval_table(run_rows: pd.DataFrame) -> pd.DataFrame:
    """Forgetting and backward transfer of the runs that have a final evaluation."""
    has_final = run_rows["final_average_error"].notna()
    return run_rows.loc[has_final, FINAL_EVAL_COLUMNS].reset_index(drop=True)
