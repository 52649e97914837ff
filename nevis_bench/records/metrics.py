"""Metrics of predict events and the stream summary.

* Single-label tasks: top-1 accuracy; error = 1 - accuracy.
* Multi-label tasks: mean average precision, scikit-learn's ``average_precision_score`` macro-averaged
  over every class, as the reference computes it: a class without a positive example in the split
  scores 0 (scikit-learn >= 1.1 sets recall to 1 and precision to 0 there and warns; the warning is
  silenced here). Earlier versions of this module left such classes out, which raised mAP on small
  splits. Error = 1 - mAP.
* Summary (``summarize``), two families of numbers kept apart:

  - **our headline** (error-based, one number over every task): ``average_error`` (mean of 1 - metric
    over the in-stream predict events; repeats count again, as in the reference) and
    ``weighted_error`` (the same, weighted by each event's number of examples, multi-label ones
    included);
  - **the reference's metrics** (``experiments_jax/metrics/nevis_metrics.py``, never merged across
    task kinds): ``average_single_label_accuracy`` (mean top-1 accuracy over single-label events),
    ``weighted_single_label_accuracy`` (correct / examples summed over single-label events) and
    ``average_multi_label_map`` (mean mAP over multi-label events).

  Also FLOPs per phase (``flops_reference``: the reference's convention, kept training steps plus
  search trials), peak parameters, wall time; with a final evaluation, the accuracy matrix, average
  forgetting and backward transfer.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from nevis_bench.protocol import MULTI_LABEL
from nevis_bench.records.schema import reference_flops


def top1_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Macro average precision over every class; a class with no positive example scores 0 (the reference's
    rule, scikit-learn >= 1.1). NaN only for an empty split."""
    if len(targets) == 0:
        return float("nan")
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning  # imported on first use: listing commands stay light
    from sklearn.metrics import average_precision_score

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive class found in y_true", category=UserWarning)
        warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
        return float(average_precision_score(targets, scores, average="macro"))


def task_metric(kind: str, scores: np.ndarray, targets: np.ndarray) -> tuple[str, float]:
    """(metric name, value) for a task kind."""
    if kind == MULTI_LABEL:
        return "mean_average_precision", mean_average_precision(scores, targets)
    return "top1_accuracy", top1_accuracy(scores, targets)


def _metric(event: dict) -> float | None:
    value = event.get("top1_accuracy")
    if value is None:
        value = event.get("mean_average_precision")
    return value


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else None


def accuracy_matrix(events: list[dict]) -> dict[str, Any] | None:
    """Rows: one per in-stream predict event (one cell) and one for the final evaluation (every task).

    Columns: task keys in order of first training. Cells are the task metric (accuracy or mAP).
    """
    final = [e for e in events if e["event_type"] == "predict" and e.get("final_eval")]
    if not final:
        return None
    tasks: list[str] = []
    for e in events:
        if e["event_type"] == "train" and e["task_key"] not in tasks:
            tasks.append(e["task_key"])
    rows = []
    for e in events:
        if e["event_type"] == "predict" and not e.get("final_eval"):
            values: list[float | None] = [None] * len(tasks)
            values[tasks.index(e["task_key"])] = _metric(e)
            rows.append({"label": f"after {e['task_key']}", "event_index": e["event_index"], "values": values})
    final_values: list[float | None] = [None] * len(tasks)
    for e in final:
        final_values[tasks.index(e["task_key"])] = _metric(e)
    rows.append({"label": "final", "event_index": final[-1]["event_index"], "values": final_values})

    last_trained = next(e["task_key"] for e in reversed(events) if e["event_type"] == "train")
    forgetting, transfer = [], []
    for column, key in enumerate(tasks):
        if key == last_trained:
            continue
        in_stream = [r["values"][column] for r in rows[:-1] if r["values"][column] is not None]
        final_value = final_values[column]
        if not in_stream or final_value is None:
            continue
        forgetting.append(max(in_stream) - final_value)
        transfer.append(final_value - in_stream[-1])
    final_errors = [e["error"] for e in final]
    return {
        "tasks": tasks,
        "rows": rows,
        "average_forgetting": _mean(forgetting),
        "backward_transfer": _mean(transfer),
        "final_average_error": _mean(final_errors),
    }


def summarize(events: Iterable[dict]) -> dict[str, Any]:
    """Stream summary computed from event records (the ``events.jsonl`` rows)."""
    events = list(events)
    predicts = [e for e in events if e["event_type"] == "predict" and not e.get("final_eval")]
    trains = [e for e in events if e["event_type"] == "train"]
    errors = [e["error"] for e in predicts]
    defined = [e for e in predicts if e["error"] is not None]  # mAP is undefined without positives
    weights = [e["num_examples"] for e in defined]
    weighted = (
        float(np.average([e["error"] for e in defined], weights=weights)) if defined and sum(weights) > 0 else None
    )
    singles = [e for e in predicts if e.get("top1_accuracy") is not None]
    multis = [e for e in predicts if e.get("mean_average_precision") is not None]
    single_examples = sum(e["num_examples"] for e in singles)
    last = events[-1] if events else {}
    return {
        "num_train_events": len(trains),
        "num_predict_events": len(predicts),
        "average_error": _mean(errors),
        "weighted_error": weighted,
        "average_top1_accuracy": _mean([e["top1_accuracy"] for e in predicts if e.get("top1_accuracy") is not None]),
        "mean_average_precision": _mean(
            [e["mean_average_precision"] for e in predicts if e.get("mean_average_precision") is not None]
        ),
        "average_single_label_accuracy": _mean([e["top1_accuracy"] for e in singles]),
        "weighted_single_label_accuracy": (
            float(sum(e["top1_accuracy"] * e["num_examples"] for e in singles) / single_examples)
            if single_examples > 0 else None
        ),
        "average_multi_label_map": _mean([e["mean_average_precision"] for e in multis]),
        "flops_train": float(sum(e["flops_train"] for e in events)),
        "flops_search": float(sum(e["flops_search"] for e in events)),
        "flops_selection": float(sum(e["flops_selection"] for e in events)),
        "flops_inference": float(sum(e["flops_inference"] for e in events)),
        "flops_validation": float(sum(e.get("flops_validation", 0.0) for e in events)),
        "flops_reference": float(sum(reference_flops(e) for e in events)),
        "cumulative_flops": float(last.get("cumulative_flops", 0.0)),
        "peak_parameter_count": int(max((e["peak_parameter_count"] for e in events), default=0)),
        "peak_state_bytes": int(max((e.get("state_bytes", 0) for e in events), default=0)),
        "wall_seconds": float(sum(e["wall_seconds"] for e in events)),
        "final_eval": accuracy_matrix(events),
    }
