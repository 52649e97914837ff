"""``nevis-bench sweep SWEEP.toml``: a grid of runs with Ray, then the leaderboard of its runs folder."""

from __future__ import annotations

import argparse
import pathlib
import time


def cmd_sweep(args: argparse.Namespace) -> int:
    from nevis_bench.records.reader import find_runs
    from nevis_bench.reports.build import build, update_readme_table
    from nevis_bench.run.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep_file, args.runs_dir)
    if args.max_retries is not None:
        sweep.max_retries = args.max_retries
    if args.dry_run:
        for run in sweep.runs:
            print(sweep.runs_dir / run.name)
        return 0
    started = time.monotonic()
    results = run_sweep(sweep, address=args.address)
    failed = sorted(name for name, r in results.items() if r["status"] != "complete")
    print(f"sweep: {len(results) - len(failed)}/{len(results)} runs complete in {time.monotonic() - started:.0f} s")
    if failed:
        print(f"sweep: not complete: {', '.join(failed)} (run the sweep again to continue them)")
    run_dirs = find_runs(sweep.runs_dir)
    output = pathlib.Path(args.output) if args.output else sweep.runs_dir / "leaderboard"
    if run_dirs and not args.no_leaderboard:
        written = build(run_dirs, output, root=sweep.runs_dir, title="nevis-bench sweep", per_run=False)
        print(f"wrote {len(written)} files to {output} (open {output / 'report.html'})")
        if args.readme:
            update_readme_table(output / "leaderboard.md", args.readme)
            print(f"updated the leaderboard table in {args.readme}")
    return 1 if failed else 0


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a grid of learners x configurations x seeds x streams with Ray",
        description="Expand SWEEP.toml (learners x [configurations.*] x seeds x streams) into runs and execute "
                    "them with Ray, locally (all CPUs) or on a cluster (--address). Runs are named as "
                    "`nevis-bench run` names them; running a sweep again skips its complete runs and resumes the "
                    "others, and refuses a runs folder holding the same names with other settings. Builds the "
                    "leaderboard of the runs folder at the end. See docs/sweeps.md.",
    )
    parser.add_argument("sweep_file", metavar="SWEEP.toml")
    parser.add_argument("--address", help="Ray cluster to use (e.g. ray://head:10001 or auto); default: a local one")
    parser.add_argument("--runs-dir", help="override the sweep file's runs_dir")
    parser.add_argument("--max-retries", type=int, help="override the sweep file's max_retries")
    parser.add_argument("--output", help="leaderboard directory (default RUNS_DIR/leaderboard)")
    parser.add_argument("--readme", metavar="README.md",
                        help="also replace the table between <!-- leaderboard --> markers in this file")
    parser.add_argument("--no-leaderboard", action="store_true", help="do not build the leaderboard at the end")
    parser.add_argument("--dry-run", action="store_true", help="list the run directories and exit")
    parser.set_defaults(func=cmd_sweep)
