"""Rewrite the "## Leaderboard" section of every docs/learners/<name>.md from the committed leaderboard.

    python scripts/learner_docs_leaderboard.py [--leaderboard results/leaderboard.csv] [--docs docs/learners]

Each page's section (from its "## Leaderboard" heading to the next "## " heading or the end) is
replaced by the learner's rows of ``leaderboard.csv`` (one per stream), so the pages never quote a
table that has since been regenerated. A learner without rows gets a line saying so, unless its page
already explains its absence (a section that does not quote the table, e.g. ``pruned_finetune``'s).
"""

from __future__ import annotations

import argparse
import pathlib
import re

import pandas as pd

HEADING = "## Leaderboard"


def section(name: str, rows: pd.DataFrame) -> str:
    lines = [HEADING, ""]
    if rows.empty:
        lines.append(f"`{name}` has no row in the committed leaderboard (`results/leaderboard.md`); the README "
                     "says which runs are missing. `nevis-bench sweep sweeps/leaderboard.toml` adds them.")
        return "\n".join(lines) + "\n"
    lines.append(f"The `{name}` rows of the committed leaderboard (`results/leaderboard.md`: `dev_test` splits, "
                 "CPU, default settings, the grid of `sweeps/leaderboard.toml`):")
    lines.append("")
    for row in rows.itertuples():
        forgetting = "" if pd.isna(row.average_forgetting) else f", average forgetting {row.average_forgetting:.4f}"
        lines.append(
            f"- `{row.stream}`, {row.seeds} seeds: average error {row.average_error:.4f} "
            f"(95% CI +- {row.average_error_ci95:.4f}), weighted error {row.weighted_error:.4f}, headline FLOPs "
            f"{row.headline_flops:.3e}, reference-convention FLOPs {row.reference_flops:.3e}, peak parameters "
            f"{int(row.peak_parameters)}{forgetting}, Pareto front: {'yes' if row.pareto else 'no'}."
        )
    return "\n".join(lines) + "\n"


def rewrite(page: pathlib.Path, text: str) -> None:
    old = page.read_text()
    current = re.search(rf"^{re.escape(HEADING)}\n(.*?)(?=^## |\Z)", old, re.S | re.M)
    if current and "committed leaderboard" in current.group(1) and "is not in the committed" in current.group(1):
        return  # the page says why the learner is not on the leaderboard
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old, count=1).rstrip() + "\n"
    else:
        new = old.rstrip() + "\n\n" + text
    page.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaderboard", default="results/leaderboard.csv")
    parser.add_argument("--docs", default="docs/learners")
    args = parser.parse_args()
    table = pd.read_csv(args.leaderboard)
    for page in sorted(pathlib.Path(args.docs).glob("*.md")):
        name = page.stem
        rewrite(page, section(name, table[table["learner"] == name].sort_values("stream")))
        print(f"updated {page}")


if __name__ == "__main__":
    main()
