"""Report figures, rendered to PNG bytes that are identical for identical inputs.

Figures are drawn on a plain Agg canvas (never pyplot, so no global figure state and no display),
inside a style context that starts from Matplotlib's built-in defaults (a user's matplotlibrc does
not leak in) and saved without the "Software" text chunk; Agg PNGs carry no timestamp.
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterator, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nevis_bench.records.reader import FLOP_FIELDS

_STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "path.simplify": False,
}
# Domains of the NEVIS'22 stream in a fixed order, so a domain keeps its colour across figures.
KNOWN_DOMAINS = ("object", "scene", "texture", "ocr", "face", "shape", "counting", "quality", "satellite",
                 "xray", "medical")
PHASE_COLOURS = {"flops_train": "#1f77b4", "flops_search": "#ff7f0e", "flops_selection": "#2ca02c", "flops_validation": "#9467bd",
                 "flops_inference": "#7f7f7f"}


@contextlib.contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        yield


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def series_colours(labels: Sequence[str]) -> dict[str, tuple]:
    """A colour per label, from tab10 (then tab20b) in the given order."""
    palette = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20b"].colors)
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def domain_colours(domains: Sequence[str]) -> dict[str, tuple]:
    """A colour per domain: fixed for the NEVIS'22 domains, then tab20b for others (sorted)."""
    tab20 = matplotlib.colormaps["tab20"].colors
    colours = {domain: tab20[(2 * i) % 20 + (i >= 10)] for i, domain in enumerate(KNOWN_DOMAINS)}
    others = sorted(set(domains) - set(KNOWN_DOMAINS))
    tab20b = matplotlib.colormaps["tab20b"].colors
    colours.update({domain: tab20b[i % len(tab20b)] for i, domain in enumerate(others)})
    return {domain: colours[domain] for domain in sorted(set(domains))}


def error_vs_flops(curves: pd.DataFrame, endpoints: pd.DataFrame, title: str) -> bytes:
    """Average error so far against cumulative headline FLOPs (log x), one curve per run.

    ``curves``: run, series, cumulative_flops, average_error (one row per task, stream order).
    ``endpoints``: run, series, headline_flops, average_error, pareto (one row per run).
    Runs of one series share a colour; end points on the Pareto front over runs get a black ring
    and are joined by a dashed staircase.
    """
    with _style():
        figure = _new_figure(7.0, 4.5)
        ax = figure.add_subplot()
        colours = series_colours(list(dict.fromkeys(endpoints["series"])))
        for run, curve in curves.groupby("run", sort=True):
            colour = colours[curve["series"].iloc[0]]
            ax.plot(curve["cumulative_flops"], curve["average_error"], color=colour, alpha=0.55, linewidth=1.0,
                    marker=".", markersize=3)
        for series, points in endpoints.groupby("series", sort=False):
            ax.scatter(points["headline_flops"], points["average_error"], color=colours[series], s=36, zorder=3,
                       label=series)
        front = endpoints[endpoints["pareto"]].sort_values(["headline_flops", "average_error"])
        if len(front):
            ax.scatter(front["headline_flops"], front["average_error"], facecolors="none", edgecolors="black",
                       s=110, linewidths=1.2, zorder=4, label="Pareto front (runs)")
            ax.step(front["headline_flops"], front["average_error"], where="post", color="black",
                    linestyle="--", linewidth=0.8, zorder=2)
        positive = pd.concat([curves["cumulative_flops"], endpoints["headline_flops"]])
        if (positive > 0).any():
            ax.set_xscale("log", nonpositive="mask")
        ax.set_xlabel("cumulative headline FLOPs (train + search + selection)")
        ax.set_ylabel("average error of the predictions so far")
        ax.set_title(title)
        ax.legend(loc="best")
        return _png(figure)


def _task_positions(panels: list[tuple[str, pd.DataFrame]]) -> dict[tuple, int]:
    """Bar position of each (step, task_key) over all panels, in step order."""
    steps = sorted({(s, k) for _, frame in panels for s, k in zip(frame["step"], frame["task_key"])})
    return {step: i for i, step in enumerate(steps)}


def _task_axis(ax, positions: dict[tuple, int]) -> None:
    ax.set_xticks(range(len(positions)))
    ax.set_xticklabels([f"{s}. {k}" for s, k in positions], rotation=90, fontsize=6 if len(positions) <= 40 else 4)
    ax.set_xlim(-0.6, len(positions) - 0.4)


def _label_room(positions: dict[tuple, int]) -> float:
    """Inches the rotated task labels under the last panel take (about 0.06 inch a character at 6 pt)."""
    longest = max((len(f"{s}. {k}") for s, k in positions), default=10)
    return 0.06 * longest * (1.0 if len(positions) <= 40 else 4 / 6)


def _panel_axes(figure: Figure, count: int) -> list:
    return list(figure.subplots(count, 1, squeeze=False, sharex=True)[:, 0])


def _bar_x(positions: dict[tuple, int], frame: pd.DataFrame) -> list[int]:
    return [positions[(s, k)] for s, k in zip(frame["step"], frame["task_key"])]


def per_task_errors(panels: list[tuple[str, pd.DataFrame]], relative: bool, title: str) -> bytes:
    """Bars of each task's error (relative to ``independent`` when ``relative``), coloured by domain.

    ``panels``: (label, frame with step, task_key, domain, value) per subplot, tasks in stream order.
    """
    with _style():
        positions = _task_positions(panels)
        figure = _new_figure(max(6.0, 0.14 * len(positions) + 2.0), 1.9 * len(panels) + 1.4 + _label_room(positions))
        all_domains = sorted(set().union(*(set(frame["domain"]) for _, frame in panels)))
        colours = domain_colours(all_domains)
        axes = _panel_axes(figure, len(panels))
        for ax, (label, frame) in zip(axes, panels):
            ax.bar(_bar_x(positions, frame), frame["value"], color=[colours[d] for d in frame["domain"]], width=0.8)
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.set_title(label, loc="left")
            ax.set_ylabel("error - independent" if relative else "error")
        _task_axis(axes[-1], positions)
        handles = [Patch(color=colours[d], label=d) for d in all_domains]
        figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8))
        figure.suptitle(title)
        return _png(figure)


def compute_per_task(panels: list[tuple[str, pd.DataFrame]], title: str) -> bytes:
    """Stacked bars of FLOPs per task by phase; ``panels``: (label, frame of :func:`step_flops` columns)."""
    with _style():
        positions = _task_positions(panels)
        figure = _new_figure(max(6.0, 0.14 * len(positions) + 2.0), 1.9 * len(panels) + 1.4 + _label_room(positions))
        axes = _panel_axes(figure, len(panels))
        for ax, (label, frame) in zip(axes, panels):
            bottom = np.zeros(len(frame))
            for phase in FLOP_FIELDS:
                values = frame[phase].to_numpy(dtype=float)
                ax.bar(_bar_x(positions, frame), values, bottom=bottom, color=PHASE_COLOURS[phase], width=0.8,
                       label=phase.removeprefix("flops_"))
                bottom += values
            ax.set_title(label, loc="left")
            ax.set_ylabel("FLOPs")
        _task_axis(axes[-1], positions)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncol=4)
        figure.suptitle(title)
        return _png(figure)


def accuracy_matrix(matrix: pd.DataFrame, title: str) -> bytes:
    """Heatmap of the task metric (rows: evaluation points, columns: tasks); empty cells not measured."""
    with _style():
        rows, columns = matrix.shape
        # cells of about 0.45 x 0.34 inches (50 x 37 px at the report's 110 dpi): task names in 8 pt and
        # two-decimal values fit; the report shows the figure at this size in a scrolling container
        label_room = 0.075 * max((len(str(label)) for label in matrix.index), default=8)
        figure = _new_figure(max(5.0, 0.45 * columns + label_room + 2.0),
                             max(3.5, 0.34 * rows + 0.075 * max((len(str(c)) for c in matrix.columns), default=8) + 1.5))
        ax = figure.add_subplot()
        values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(columns))
        ax.set_xticklabels(matrix.columns, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_yticks(range(rows))
        ax.set_yticklabels(matrix.index, fontsize=8)
        ax.set_xlabel("task (in order of first training)")
        ax.grid(False)
        if rows * columns <= 2500:
            for (i, j), value in np.ndenumerate(values.filled(np.nan)):
                if not np.isnan(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5,
                            color="white" if value < 0.6 else "black")
        figure.colorbar(image, ax=ax, label="accuracy / mAP")
        ax.set_title(title)
        return _png(figure)
