"""``nevis-bench run | resume | summary``."""

from __future__ import annotations

import argparse
import sys

from nevis_bench.errors import InputError
from nevis_bench.run.config import ConfigError, apply_overrides, load_toml

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped cleanly, resumable


def add_subcommands(subparsers) -> None:
    run = subparsers.add_parser("run", help="run a learner on a stream (default: the synthetic stream, offline)")
    run.add_argument("--stream", help="stream name (default synthetic-short; see `streams list`) or a stream file "
                                      "path/to/stream.toml (README, 'Your own streams')")
    run.add_argument("--preset", help="a named bundle of settings filling in what you do not set: cpu (the defaults) or "
                                      "reference (the NEVIS'22 reference's recipe); `nevis-bench presets describe NAME`")
    run.add_argument("--learner", help="learner name (default independent; see `learners list`)")
    run.add_argument("--learner-module", help="a Python file that registers a learner (see README)")
    run.add_argument("--config", help="a TOML file of run settings with a [learner_config] table")
    run.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="set a run setting, learner hyperparameter (learner.KEY) or stream option (stream.KEY)")
    run.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE",
                     help="an option of the stream's factory (same as -o stream.KEY=VALUE)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", help="cpu (default) or cuda")
    run.add_argument("--final-eval", action="store_true", default=None,
                     help="after the last task, evaluate every seen task again (forgetting, backward transfer)")
    run.add_argument("--final", action="store_true", default=None,
                     help="final protocol: predict on `test`, stop year 2022 (default: dev_test, 2020)")
    run.add_argument("--stop-year", type=int)
    run.add_argument("--runs-dir", help="where run directories go (default ./runs)")
    run.add_argument("--data-dir", help="task cache and datasets (default $NEVIS_BENCH_DATA_DIR or ~/.cache/nevis-bench)")
    run.add_argument("--tfds-data-dir", help="TensorFlow Datasets folder (default $TFDS_DATA_DIR or <data-dir>/tensorflow_datasets)")
    run.add_argument("--run-name", help="name of the run directory (default <stream>--<learner>--<config id>--seed<seed>; "
                                        "an existing run of the same configuration is continued)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    resume = subparsers.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--quiet", action="store_true")
    resume.add_argument("--restart", action="store_true",
                        help="start again from the first event; the existing records, predictions and checkpoint "
                             "are moved to RUN_DIR/previous-<n>/ (nothing is deleted)")
    resume.set_defaults(func=cmd_resume)

    summary = subparsers.add_parser("summary", help="print the summary table of a run directory")
    summary.add_argument("run_dir")
    summary.set_defaults(func=cmd_summary)


def run_values(args: argparse.Namespace) -> dict:
    """Run settings from --config, then flags, then -o overrides (later wins)."""
    from nevis_bench.run.runner import learner_fields

    values = load_toml(args.config) if args.config else {}
    flags = {
        "stream": args.stream, "learner": args.learner, "learner_module": args.learner_module,
        "seed": args.seed, "device": args.device, "final_eval": args.final_eval, "final": args.final,
        "stop_year": args.stop_year, "runs_dir": args.runs_dir, "data_dir": args.data_dir,
        "run_name": args.run_name, "preset": args.preset, "tfds_data_dir": args.tfds_data_dir,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.quiet:
        values["progress"] = False
    learner = values.get("learner", "independent")
    try:
        fields = learner_fields(learner, values.get("learner_module"))
    except (FileNotFoundError, ImportError) as error:
        raise ConfigError(str(error)) from error
    stream_overrides = [f"stream.{item}" for item in args.stream_option]
    return apply_overrides(values, stream_overrides + args.override, fields)


def _execute(run_dir, evaluator, restart: bool = False) -> int:
    print(f"run directory: {run_dir.path}", file=sys.stderr)
    skipped = evaluator.stream.skipped
    if skipped:
        print(f"warning: skipping {len(skipped)} stream entries whose data is missing (skip_missing): "
              f"{', '.join(skipped)}", file=sys.stderr)
    status = evaluator.run(restart=restart)
    print(summary_table(run_dir.path))
    if status == "interrupted":
        print(f"\ninterrupted; continue with: nevis-bench resume {run_dir.path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from nevis_bench.run import runner

    run_dir, evaluator = runner.start(run_values(args))
    return _run_reporting_failure(run_dir, evaluator)


def cmd_resume(args: argparse.Namespace) -> int:
    from nevis_bench.run import runner

    run_dir, evaluator = runner.reopen(args.run_dir, progress=False if args.quiet else None)
    return _run_reporting_failure(run_dir, evaluator, restart=args.restart)


def _run_reporting_failure(run_dir, evaluator, restart: bool = False) -> int:
    try:
        return _execute(run_dir, evaluator, restart)
    except InputError:
        raise  # reported as an input error; the summary says "failed" and the records stay
    except Exception as error:  # the summary already says "failed"; the records stay
        print(
            f"error: {type(error).__name__}: {error}\nRecords up to the last completed event are kept in "
            f"{run_dir.path}; after fixing the cause, continue with: nevis-bench resume {run_dir.path}",
            file=sys.stderr,
        )
        return 1


def _format_flops(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_table(run_dir) -> str:
    """A readable per-task table and the stream summary of a run directory."""
    from nevis_bench.records.reader import read_run
    from nevis_bench.records.schema import accounted_flops

    run = read_run(run_dir)  # strict: a damaged line is an error naming it, never a silent stop
    # numbers recomputed from the records, so a run written before a metric existed shows it too
    events, summary = run.event_list, {**(run.summary or {}), **run.metrics}
    lines = [f"{'#':>4}  {'year':>4}  {'task':<44} {'kind':<6} {'n':>6} {'error':>7} {'train FLOPs':>11}"]
    train_flops: dict[str, float] = {}
    for e in events:
        if e["event_type"] == "train":
            train_flops[e["task_key"]] = accounted_flops(e)
            continue
        tag = "final " if e.get("final_eval") else ""
        kind = "multi" if e["task_kind"] == "multi_label" else "single"
        lines.append(
            f"{e['event_index']:>4}  {e['year']:>4}  {(tag + e['task_key'])[:44]:<44} {kind:<6} {e['num_examples']:>6} "
            f"{e['error']:>7.3f} {_format_flops(train_flops.get(e['task_key'])) if not tag else '':>11}"
        )
    def fmt(key, digits=4):
        value = summary.get(key)
        return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))
    lines += [
        "",
        f"run:                 {run.path}",
        f"status:              {summary.get('status', 'unknown')}",
        f"stream / learner:    {summary.get('stream')} / {summary.get('learner')} (config {summary.get('config_id')}, seed {summary.get('seed')})",
        f"average error:       {fmt('average_error')}  (weighted {fmt('weighted_error')}, {summary.get('num_predict_events', 0)} predict events on {summary.get('predict_split')}; our headline)",
        f"reference metrics:   single-label accuracy {fmt('average_single_label_accuracy')} (weighted {fmt('weighted_single_label_accuracy')}), "
        f"multi-label mAP {fmt('average_multi_label_map')}",
        f"headline FLOPs:      {_format_flops(summary.get('cumulative_flops'))}  (train {_format_flops(summary.get('flops_train'))}, search {_format_flops(summary.get('flops_search'))}, selection {_format_flops(summary.get('flops_selection'))}, validation {_format_flops(summary.get('flops_validation'))})",
        f"reference FLOPs:     {_format_flops(summary.get('flops_reference'))}  (kept training steps + search trials, the reference's convention)",
        f"inference FLOPs:     {_format_flops(summary.get('flops_inference'))}",
        f"peak parameters:     {summary.get('peak_parameter_count')}",
        f"wall time:           {fmt('wall_seconds', 1)} s",
    ]
    final = summary.get("final_eval")
    if final:
        lines.append(
            f"final evaluation:    average error {final['final_average_error']:.4f}, "
            f"forgetting {final['average_forgetting'] if final['average_forgetting'] is None else round(final['average_forgetting'], 4)}, "
            f"backward transfer {final['backward_transfer'] if final['backward_transfer'] is None else round(final['backward_transfer'], 4)}"
        )
    if summary.get("skipped"):
        lines.append(f"skipped entries:     {len(summary['skipped'])} (data missing): {', '.join(summary['skipped'])}")
    if summary.get("error_message"):
        lines.append(f"error:               {summary['error_message']}")
    return "\n".join(lines)


def cmd_summary(args: argparse.Namespace) -> int:
    import pathlib

    if not (pathlib.Path(args.run_dir) / "events.jsonl").exists():
        raise ConfigError(f"{args.run_dir} is not a run directory (no events.jsonl)")
    print(summary_table(args.run_dir))
    return 0
