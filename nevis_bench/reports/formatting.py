"""Writing tables as CSV, Markdown, LaTeX and HTML, with one number format per column.

CSV keeps full precision (pandas writes the shortest repr that round-trips); the other formats show
rounded numbers. Markdown and LaTeX are formatted here rather than with ``DataFrame.to_markdown``
(which needs the optional ``tabulate`` package, not a dependency of this project) or
``DataFrame.to_latex`` (which goes through the Styler and jinja2), so that the output depends on
nothing but this module.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Callable

import pandas as pd


def _fixed(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}"


def _scientific(value: float) -> str:
    return f"{value:.3e}"


def _integer(value: float) -> str:
    return str(int(value))


def _yes_no(value) -> str:
    return "yes" if bool(value) else "no"


_FOUR = _fixed(4)
COLUMN_FORMATS: dict[str, Callable] = {
    **{name: _FOUR for name in (
        "average_error", "average_error_ci95", "weighted_error", "average_top1_accuracy", "mean_average_precision",
        "error", "independent_error", "relative_error", "metric", "average_forgetting", "backward_transfer",
        "final_average_error", "average_single_label_accuracy", "weighted_single_label_accuracy",
        "average_multi_label_map", "error_alone", "transfer",
    )},
    **{name: _scientific for name in (
        "headline_flops", "inference_flops", "flops_train", "flops_search", "flops_selection", "flops_inference",
        "flops_validation", "flops_reference", "reference_flops",
    )},
    "peak_parameters": _integer,
    "wall_seconds": _fixed(1),
    "pareto": _yes_no,
}
MISSING = "n/a"


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def format_cell(column: str, value) -> str:
    if _is_missing(value):
        return MISSING
    formatter = COLUMN_FORMATS.get(column)
    return formatter(value) if formatter else str(value)


def formatted(table: pd.DataFrame) -> list[list[str]]:
    """The table's rows as display strings, column by column formatted."""
    return [[format_cell(column, value) for column, value in zip(table.columns, row)]
            for row in table.itertuples(index=False, name=None)]


def _numeric(table: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) for c in table.columns]


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---:" if numeric else "---" for numeric in _numeric(table)]
    lines = [row(list(table.columns)), "| " + " | ".join(align) + " |"]
    lines += [row(cells) for cells in formatted(table)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if numeric else "l" for numeric in _numeric(table))
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(str(c)) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(cell) for cell in cells) + r" \\" for cells in formatted(table)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame, sortable: bool = False) -> str:
    """An HTML ``<table>`` of the display strings (``class="sortable"``: the report's script sorts it)."""
    numeric = _numeric(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for cells in formatted(table):
        tds = "".join(
            f'<td class="num">{html.escape(cell)}</td>' if is_number else f"<td>{html.escape(cell)}</td>"
            for cell, is_number in zip(cells, numeric)
        )
        body.append(f"<tr>{tds}</tr>")
    opening = '<table class="sortable">' if sortable else "<table>"
    return f"{opening}\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def write_table(table: pd.DataFrame, directory: Path, name: str) -> list[Path]:
    """``name.csv``, ``name.md`` and ``name.tex`` in ``directory``; returns the paths."""
    paths = [directory / f"{name}.csv", directory / f"{name}.md", directory / f"{name}.tex"]
    paths[0].write_text(table.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    paths[1].write_text(to_markdown(table), encoding="utf-8")
    paths[2].write_text(to_latex(table), encoding="utf-8")
    return paths
