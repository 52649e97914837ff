"""``nevis-bench report`` and ``nevis-bench leaderboard``: tables, figures and HTML from run records."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nevis_bench.records.reader import RecordError, find_runs, is_run_dir
from nevis_bench.reports.build import build


def _report(args: argparse.Namespace) -> int:
    for run_dir in args.run_dirs:
        if not is_run_dir(run_dir):
            print(f"error: {run_dir} is not a run directory (needs config.json and events.jsonl)", file=sys.stderr)
            return 2
    # Run names are paths relative to the runs' common parent, so the output does not depend on the cwd.
    root = os.path.commonpath([str(Path(d).resolve().parent) for d in args.run_dirs])
    return _build(args, args.run_dirs, root, "nevis-bench report", per_run=True,
                  include_unfinished=args.include_unfinished)


def _leaderboard(args: argparse.Namespace) -> int:
    if not Path(args.runs_root).is_dir():
        print(f"error: {args.runs_root} is not a directory", file=sys.stderr)
        return 2
    run_dirs = find_runs(args.runs_root)
    if not run_dirs:
        print(f"error: no run directories (config.json + events.jsonl) under {args.runs_root}", file=sys.stderr)
        return 2
    return _build(args, run_dirs, args.runs_root, "nevis-bench leaderboard", per_run=False)


def _build(args, run_dirs, root, title, **options) -> int:
    try:
        written = build(run_dirs, args.output, root=root, title=title, **options)
    except RecordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {args.output} (open {Path(args.output) / 'report.html'})")
    return 0


def add_subcommands(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="tables, figures and a self-contained report.html from run directories",
        description="Build tables (CSV, Markdown, LaTeX), PNG figures and a self-contained report.html from "
                    "run directories. Numbers are recomputed from each run's events.jsonl. Unfinished and "
                    "failed runs are listed apart.",
    )
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (config.json + events.jsonl)")
    report.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory to write into")
    report.add_argument("--include-unfinished", action="store_true",
                        help="also plot running, interrupted and summary-less runs (never failed ones); "
                             "the leaderboard table keeps complete runs only")
    report.set_defaults(func=_report)

    leaderboard = subparsers.add_parser(
        "leaderboard", help="leaderboard of every run under a directory, grouped over seeds",
        description="Find every run directory under RUNS_ROOT, group complete runs by (learner, config_id, "
                    "stream, predict_split) over seeds, and write leaderboard.{csv,md,tex}, the other tables, "
                    "figures/*.png and report.html to OUT_DIR. Unfinished and failed runs are listed apart.",
    )
    leaderboard.add_argument("runs_root", metavar="RUNS_ROOT", help="directory searched recursively for runs")
    leaderboard.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory to write into")
    leaderboard.set_defaults(func=_leaderboard)
