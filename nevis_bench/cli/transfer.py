"""``nevis-bench transfer-matrix``: train on each source, fine-tune on each target, write the matrix.

For ``--datasets a,b,c`` it runs, through the ordinary run machinery (run directories, resume, records),
one single-dataset stream per target (the target alone: the diagonal) and one two-task stream per
ordered pair (source then target), on the ``--stream-family``'s data (``synthetic``: the stand-ins,
``nevis``: real data), then writes ``transfer_matrix.{csv,md,tex}`` (long form), ``errors.csv`` and
``transfer.csv`` (square) and ``transfer_matrix.png`` (heatmaps) to ``--output``. Runs already complete
are only read again, so an interrupted matrix continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FAMILIES = {"synthetic": "synthetic-dataset", "nevis": "nevis-dataset"}


def _run_name(family: str, source: str, target: str, learner: str, config_id: str, seed: int) -> str:
    pair = target if source == target else f"{source}--to--{target}"
    return f"transfer--{family}--{pair}--{learner}--{config_id}--seed{seed}"


def cmd_transfer_matrix(args: argparse.Namespace) -> int:
    from nevis_bench.reports.formatting import write_table
    from nevis_bench.reports.transfer import heatmap, long_table, matrix_from_runs, transfer_from_errors
    from nevis_bench.run import runner
    from nevis_bench.run.config import ConfigError, apply_overrides, config_id

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if len(datasets) < 2 or len(set(datasets)) != len(datasets):
        raise ConfigError(f"--datasets needs at least two different catalogue keys, got {args.datasets!r}")
    stream = FAMILIES[args.stream_family]
    fields = runner.learner_fields(args.learner)
    base = apply_overrides({"learner": args.learner, "stream": stream, "seed": args.seed, "runs_dir": args.runs_dir,
                            "progress": False, **({"data_dir": args.data_dir} if args.data_dir else {}),
                            **({"preset": args.preset} if args.preset else {})}, args.override, fields)
    run_dirs = {}
    for target in datasets:
        for source in datasets:
            options = {**base["stream_options"], "dataset": target} if source == target else \
                {**base["stream_options"], "dataset": source, "then": target}
            values = {**base, "stream_options": options}
            prepared = runner.validate(dict(values))
            name = _run_name(args.stream_family, source, target, args.learner,
                             config_id(args.learner, prepared.config.learner_config), args.seed)
            run_dir, evaluator = runner.start({**values, "run_name": name})
            print(f"transfer-matrix: {source} -> {target}: {run_dir.path}", file=sys.stderr)
            if evaluator.run() != "complete":
                print(f"interrupted; run the same command again to continue ({run_dir.path})", file=sys.stderr)
                return 75
            run_dirs[(source, target)] = run_dir.path
    errors = matrix_from_runs(datasets, run_dirs)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    written = write_table(long_table(errors), out, "transfer_matrix")
    errors.to_csv(out / "errors.csv", lineterminator="\n")
    transfer_from_errors(errors).to_csv(out / "transfer.csv", lineterminator="\n")
    title = f"Transfer matrix, {args.stream_family} data, {args.learner} (seed {args.seed})"
    (out / "transfer_matrix.png").write_bytes(heatmap(errors, title))
    written += [out / "errors.csv", out / "transfer.csv", out / "transfer_matrix.png"]
    print(errors.round(4).to_string())
    print(f"wrote {len(written)} files to {out}")
    return 0


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "transfer-matrix", help="train on each source, fine-tune on each target: the pairwise transfer matrix",
        description="For every ordered pair of --datasets, train on the source then fine-tune on the target "
                    "(a two-task single-dataset stream), and train each target alone (the diagonal); write the "
                    "target errors and the transfer (error minus the target alone) as tables and a heatmap.",
    )
    parser.add_argument("--datasets", required=True, help="comma-separated catalogue keys, e.g. mnist,coil100,dtd")
    parser.add_argument("--stream-family", choices=sorted(FAMILIES), default="synthetic",
                        help="synthetic (the stand-ins, offline; default) or nevis (real data)")
    parser.add_argument("--learner", default="finetune_prev",
                        help="the learner of every run (default finetune_prev, the reference's Previous)")
    parser.add_argument("--preset", help="a preset for every run (e.g. reference)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a run setting or learner hyperparameter for every run (e.g. -o max_steps=50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default="runs", help="where the runs go (default ./runs)")
    parser.add_argument("--data-dir", help="task cache and datasets")
    parser.add_argument("--output", required=True, metavar="OUT_DIR", help="where the matrix is written")
    parser.set_defaults(func=cmd_transfer_matrix)
