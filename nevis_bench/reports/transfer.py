"""The pairwise transfer matrix (the reference's study behind its transfer oracle and Fig. 'transfer').

For datasets ``d_1 .. d_n`` the matrix has one row per source and one column per target:

* off the diagonal, cell (s, t) is the target's error on its prediction split after training on the
  source and then fine-tuning on the target (a two-task single-dataset stream ``s`` then ``t``, by
  default with ``finetune_prev``, the reference's Previous);
* on the diagonal, cell (t, t) is the target's error trained alone (a one-task stream): no transfer.

``transfer`` = cell - diagonal of its column: below 0, training on the source first helped the target.
Errors are read from the runs' records (the last in-stream predict event of the target), so the
matrix can be rebuilt from the run directories at any time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nevis_bench.records.reader import in_stream_predictions, read_run


def target_error(run_dir: str | Path) -> float:
    """The error of the last in-stream prediction of a run (the target's)."""
    predictions = in_stream_predictions(read_run(run_dir).events)
    return float(predictions["error"].iloc[-1]) if len(predictions) else float("nan")


def matrix_from_runs(datasets: Sequence[str], run_dirs: dict[tuple[str, str], str | Path]) -> pd.DataFrame:
    """Rows: sources, columns: targets, cells: the target's error; ``run_dirs[(source, target)]`` (source ==
    target: the target trained alone)."""
    frame = pd.DataFrame(np.nan, index=list(datasets), columns=list(datasets), dtype=float)
    for (source, target), run_dir in run_dirs.items():
        frame.loc[source, target] = target_error(run_dir)
    frame.index.name, frame.columns.name = "source", "target"
    return frame


def transfer_from_errors(errors: pd.DataFrame) -> pd.DataFrame:
    """Each cell minus the diagonal of its column (the target alone); the diagonal becomes 0."""
    alone = pd.Series(np.diag(errors.to_numpy()), index=errors.columns)
    return errors.sub(alone, axis="columns")


def long_table(errors: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, target): error, error alone, transfer (what transfer_matrix.csv holds)."""
    transfer = transfer_from_errors(errors)
    rows = []
    for source in errors.index:
        for target in errors.columns:
            rows.append({"source": source, "target": target, "error": errors.loc[source, target],
                         "error_alone": errors.loc[target, target], "transfer": transfer.loc[source, target]})
    return pd.DataFrame(rows, columns=["source", "target", "error", "error_alone", "transfer"])


def heatmap(errors: pd.DataFrame, title: str) -> bytes:
    """Two panels: the target's error (rows: source, columns: target; the diagonal is the target alone), and
    the transfer (error minus the target alone; blue below 0 = the source helped). Every cell is annotated."""
    from matplotlib.colors import TwoSlopeNorm

    from nevis_bench.reports.figures import _new_figure, _png, _style

    transfer = transfer_from_errors(errors)
    n = len(errors)
    with _style():
        side = max(3.2, 0.55 * n + 2.2)
        figure = _new_figure(2 * side + 1.0, side + 0.8)
        axes = figure.subplots(1, 2)
        limit = max(1e-6, float(np.nanmax(np.abs(transfer.to_numpy()))) if n else 1.0)
        panels = [(axes[0], errors, "error of the target", "viridis_r", dict(vmin=0.0, vmax=1.0)),
                  (axes[1], transfer, "error - target alone", "RdBu_r", dict(norm=TwoSlopeNorm(0.0, -limit, limit)))]
        for ax, values, label, cmap, scale in panels:
            image = ax.imshow(np.ma.masked_invalid(values.to_numpy(dtype=float)), cmap=cmap, aspect="equal",
                              interpolation="nearest", **scale)
            ax.set_xticks(range(n))
            ax.set_xticklabels(values.columns, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(n))
            ax.set_yticklabels(values.index, fontsize=8)
            ax.set_xlabel("target (fine-tuned last)")
            ax.set_ylabel("source (trained first)")
            ax.grid(False)
            for (i, j), value in np.ndenumerate(values.to_numpy(dtype=float)):
                if not np.isnan(value):
                    dark = value > 0.55 if values is errors else abs(value) > 0.6 * limit
                    ax.text(j, i, f"{value:+.2f}" if values is transfer else f"{value:.2f}", ha="center",
                            va="center", fontsize=7, color="white" if dark else "black")
            figure.colorbar(image, ax=ax, label=label, shrink=0.8)
        axes[0].set_title("target error (diagonal: trained alone)")
        axes[1].set_title("transfer (below 0: the source helped)")
        figure.suptitle(title)
        return _png(figure)
