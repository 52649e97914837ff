"""``nevis-bench report`` and ``nevis-bench leaderboard``: tables, figures and HTML from run records."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# The leaderboard's sort keys (nevis_bench.reports.tables.SORT_KEYS, kept here so --help imports no pandas).
SORT_KEYS = ("average_error", "weighted_error", "average_single_label_accuracy", "weighted_single_label_accuracy",
             "average_multi_label_map", "headline_flops", "reference_flops", "inference_flops", "wall_seconds",
             "average_forgetting", "backward_transfer")
SORT_HELP = ("leaderboard column to rank by within a stream and split (default average_error, our headline; "
             "average_single_label_accuracy etc. are the reference's metrics; accuracies best first)")
SKIP_BAD_RUNS = ("leave out a run whose records are damaged (listed as unreadable in excluded_runs) instead of "
                 "stopping at the first damaged line")


def _usage(message: str):
    from nevis_bench.cli import UsageError

    return UsageError(message)


def cmd_report(args: argparse.Namespace) -> int:
    from nevis_bench.records.reader import is_run_dir

    for run_dir in args.run_dirs:
        if not is_run_dir(run_dir):
            raise _usage(f"{run_dir} is not a run directory (it needs config.json and events.jsonl)")
    # Run names are paths relative to the runs' common parent, so the output does not depend on the cwd.
    root = os.path.commonpath([str(Path(d).resolve().parent) for d in args.run_dirs])
    return _build(args, args.run_dirs, root, "nevis-bench report", per_run=True,
                  include_unfinished=args.include_unfinished, skip_bad_runs=args.skip_bad_runs, sort_by=args.sort_by)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from nevis_bench.records.reader import find_runs
    from nevis_bench.reports.build import update_readme_table

    if not Path(args.runs_dir).is_dir():
        raise _usage(f"--runs-dir {args.runs_dir} is not a directory")
    run_dirs = find_runs(args.runs_dir)
    if not run_dirs:
        raise _usage(f"no run directories (config.json + events.jsonl) under {args.runs_dir}")
    status = _build(args, run_dirs, args.runs_dir, "nevis-bench leaderboard", per_run=False,
                    skip_bad_runs=args.skip_bad_runs, sort_by=args.sort_by)
    if args.readme:
        update_readme_table(Path(args.output) / "leaderboard.md", args.readme)
        print(f"updated the leaderboard table in {args.readme}")
    return status


def _build(args, run_dirs, root, title, **options) -> int:
    from nevis_bench.reports.build import build

    written = build(run_dirs, args.output, root=root, title=title, **options)
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
    report.add_argument("--output", required=True, metavar="OUT_DIR", help="directory to write into")
    report.add_argument("--include-unfinished", action="store_true",
                        help="also plot running, interrupted and summary-less runs (never failed ones); "
                             "the leaderboard table keeps complete runs only")
    report.add_argument("--skip-bad-runs", action="store_true", help=SKIP_BAD_RUNS)
    report.add_argument("--sort-by", default="average_error", choices=SORT_KEYS, help=SORT_HELP)
    report.set_defaults(func=cmd_report)

    leaderboard = subparsers.add_parser(
        "leaderboard", help="leaderboard of every run under a directory, grouped over seeds",
        description="Find every run directory under --runs-dir, group complete runs by (learner, config_id, "
                    "stream, predict_split) over seeds, and write leaderboard.{csv,md,tex}, the other tables, "
                    "figures/*.png and report.html to --output. Unfinished and failed runs are listed apart.",
    )
    leaderboard.add_argument("--runs-dir", default="runs", help="directory searched recursively for runs (default ./runs)")
    leaderboard.add_argument("--output", required=True, metavar="OUT_DIR", help="directory to write into")
    leaderboard.add_argument("--readme", metavar="README.md",
                             help="also replace the table between <!-- leaderboard --> markers in this file")
    leaderboard.add_argument("--skip-bad-runs", action="store_true", help=SKIP_BAD_RUNS)
    leaderboard.add_argument("--sort-by", default="average_error", choices=SORT_KEYS, help=SORT_HELP)
    leaderboard.set_defaults(func=cmd_leaderboard)
