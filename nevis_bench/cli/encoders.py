"""``nevis-bench pretrain``, ``nevis-bench encoders`` and ``nevis-bench compare-encoders``.

* ``pretrain --stream NAME [--steps N] [--backbone small_convnet] --output ckpt.pt``: train a backbone on
  the tasks of a source stream (:mod:`nevis_bench.learner_kit.pretrain`); load it as encoder ``file:ckpt.pt``.
* ``encoders``: list the registered encoder names.
* ``compare-encoders --encoders A,B --learners L1,L2 --stream NAME``: one run per (encoder, learner)
  (each learner must take an ``encoder`` setting), then an encoder x learner table of average error
  and headline FLOPs (``compare_encoders.csv`` / ``.md`` / ``.tex``) and a figure
  (``compare_encoders.png``, error against headline FLOPs) in ``--output``.
"""

from __future__ import annotations

import argparse
import json


def _options(items: list[str]) -> dict:
    from nevis_bench.run.config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            from nevis_bench.cli import UsageError

            raise UsageError(f"expected KEY=VALUE, got {item!r}")
        out[key] = parse_value(value)
    return out


def cmd_pretrain(args: argparse.Namespace) -> int:
    from nevis_bench.data.sources import default_data_dir
    from nevis_bench.learner_kit.pretrain import pretrain

    info = pretrain(
        args.stream, args.output, args.data_dir or default_data_dir(), steps=args.steps, backbone=args.backbone,
        input_size=args.input_size, image_size=args.image_size, learning_rate=args.learning_rate, seed=args.seed,
        stream_options=_options(args.stream_option), tasks=args.task or None, progress=not args.quiet,
    )
    print(json.dumps(info, indent=1))
    print(f"load it as encoder file:{info['output']}")
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    from nevis_bench.learner_kit.encoders import ENCODERS

    for name in sorted(ENCODERS):
        print(name)
    print("file:<checkpoint from `nevis-bench pretrain`>")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from nevis_bench.data.sources import default_data_dir
    from nevis_bench.reports.encoders import compare_encoders

    table = compare_encoders(
        [e for e in args.encoders.split(",") if e], [name for name in args.learner_names.split(",") if name], args.stream,
        args.output, args.runs_dir, args.data_dir or default_data_dir(), stream_options=_options(args.stream_option),
        learner_config=_options(args.override), encoder_weights=args.encoder_weights, seed=args.seed,
        progress=not args.quiet, stop_year=args.stop_year,
    )
    from nevis_bench.reports.formatting import to_markdown

    print(to_markdown(table))
    print(f"wrote {args.output}/compare_encoders.{{csv,md,tex,png}}")
    return 0


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="train an encoder backbone on a source stream and save it")
    p.add_argument("--stream", required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--backbone", default="small_convnet")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32, help="stored image size in the task cache")
    p.add_argument("--learning-rate", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", action="append", default=[], help="only these task keys (repeatable)")
    p.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data-dir")
    p.add_argument("--output", required=True, help="checkpoint path (.pt)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_pretrain)

    e = subparsers.add_parser("encoders", help="list encoder names")
    e.set_defaults(func=cmd_encoders)

    c = subparsers.add_parser("compare-encoders", help="run encoder x learner pairs; table + figure")
    c.add_argument("--encoders", required=True, help="comma-separated encoder names (file:PATH allowed)")
    c.add_argument("--learners", dest="learner_names", required=True, help="comma-separated learners that take an `encoder` setting")
    c.add_argument("--stream", required=True)
    c.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="learner setting applied to every learner")
    c.add_argument("--encoder-weights", help="weights file for every encoder (torchvision names)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--stop-year", type=int, help="only the tasks before this year")
    c.add_argument("--runs-dir", default="runs")
    c.add_argument("--data-dir")
    c.add_argument("--output", default="results/compare_encoders", help="folder of the table and figure")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_compare)
