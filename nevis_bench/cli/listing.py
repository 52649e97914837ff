"""``nevis-bench streams list|describe`` and ``nevis-bench learners list|describe``.

The ``list`` commands read names and summaries from the plug-in sources without importing them
(:meth:`nevis_bench.registry.Registry.listing`); ``describe`` imports the one entry it shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from nevis_bench.registry import LEARNERS, STREAMS, import_learner_module


def cmd_streams_list(args: argparse.Namespace) -> int:
    for name, summary in STREAMS.listing():
        print(f"{name:<28} {summary}")
    return 0


def cmd_streams_describe(args: argparse.Namespace) -> int:
    from nevis_bench.stream_options import StreamOptionError, describe_options, is_stream_file, open_stream

    options = {}
    for item in args.stream_option:
        from nevis_bench.run.config import ConfigError, parse_value

        if "=" not in item:
            raise ConfigError(f"stream option {item!r} is not KEY=VALUE (example: -o dataset=mnist)")
        key, text = (part.strip() for part in item.split("=", 1))
        options[key] = parse_value(text)
    if not is_stream_file(args.name):
        print("\n".join(describe_options(STREAMS.get(args.name))) + "\n")
    try:
        stream = open_stream(args.name, options)
    except StreamOptionError as error:
        if options:
            raise
        print(f"(give the options it needs to list its tasks: {error})")
        return 0
    print(f"{stream.name}: {stream.description}")
    print(f"{'#':>4}  {'year':>4}  {'task key':<48} {'name':<40} {'kind':<12} {'classes':>7} {'ch':>2}  {'domain':<10} source")
    for i, entry in enumerate(stream.entries, 1):
        t = entry.task
        print(f"{i:>4}  {entry.year:>4}  {t.key:<48} {t.name[:40]:<40} {t.kind:<12} {t.num_classes:>7} {t.channels:>2}  "
              f"{t.domain:<10} {entry.source.describe()}")
    return 0


def cmd_presets_list(args: argparse.Namespace) -> int:
    from nevis_bench.run.presets import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name:<12} {preset.summary}")
    return 0


def cmd_presets_describe(args: argparse.Namespace) -> int:
    from nevis_bench.run.presets import describe

    print(describe(args.name))
    return 0


def _load_learner_module(args) -> None:
    if getattr(args, "learner_module", None):
        from nevis_bench.run.config import ConfigError

        try:
            import_learner_module(args.learner_module)
        except (FileNotFoundError, ImportError) as error:
            raise ConfigError(str(error)) from error


def cmd_learners_list(args: argparse.Namespace) -> int:
    _load_learner_module(args)
    for name, summary in LEARNERS.listing():
        print(f"{name:<20} {summary}")
    return 0


def cmd_learners_describe(args: argparse.Namespace) -> int:
    _load_learner_module(args)
    entry = LEARNERS.get(args.name)
    module = sys.modules.get(entry.module)
    print(f"{entry.name}: {entry.summary}\n")
    if module is not None and module.__doc__:
        print(module.__doc__.strip() + "\n")
    if entry.config_class is not None:
        print("hyperparameters (set with -o KEY=VALUE):")
        for f in dataclasses.fields(entry.config_class):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            print(f"  {f.name:<24} {json.dumps(default, default=str)}")
    print("\nmeasured numbers and notes: docs/learners/" + entry.name + ".md (where the learner has a page)")
    return 0


def add_subcommands(subparsers) -> None:
    streams_parser = subparsers.add_parser("streams", help="list or describe streams")
    streams_sub = streams_parser.add_subparsers(dest="action", required=True)
    streams_sub.add_parser("list", help="stream names and summaries").set_defaults(func=cmd_streams_list)
    describe = streams_sub.add_parser("describe", help="the options and tasks of one stream (a name or a stream file)")
    describe.add_argument("name")
    describe.add_argument("-o", "--stream-option", action="append", default=[], metavar="KEY=VALUE",
                          help="a stream option (e.g. -o dataset=mnist for synthetic-dataset)")
    describe.set_defaults(func=cmd_streams_describe)

    presets_parser = subparsers.add_parser("presets", help="list or describe presets (run --preset NAME)")
    presets_sub = presets_parser.add_subparsers(dest="action", required=True)
    presets_sub.add_parser("list", help="preset names and summaries").set_defaults(func=cmd_presets_list)
    describe = presets_sub.add_parser("describe", help="every setting of a preset with the reference value it reproduces")
    describe.add_argument("name")
    describe.set_defaults(func=cmd_presets_describe)

    learners_parser = subparsers.add_parser("learners", help="list or describe learners")
    learners_parser.add_argument("--learner-module", help="also load a learner defined in this file")
    learners_sub = learners_parser.add_subparsers(dest="action", required=True)
    learners_sub.add_parser("list", help="learner names and summaries").set_defaults(func=cmd_learners_list)
    describe = learners_sub.add_parser("describe", help="a learner's documentation and hyperparameters")
    describe.add_argument("name")
    describe.set_defaults(func=cmd_learners_describe)
