"""The ``nevis-bench`` command line.

Subcommands live in small modules; each has ``add_subcommands(subparsers)`` that adds its parsers
and sets ``func`` (called with the parsed arguments, returning an exit code). Add a module's name to
``SUBCOMMAND_MODULES`` to expose it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = (
    "nevis_bench.cli.run",
    "nevis_bench.cli.reports",
    "nevis_bench.cli.data",
    "nevis_bench.cli.encoders",
    "nevis_bench.run.sweep",
)


class UsageError(Exception):
    """Bad input found before any compute; printed as ``error: ...`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nevis-bench",
        description="Continual-learning benchmark harness: NEVIS'22-style streams, accuracy and compute.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_subcommands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


