"""The ``nevis-bench`` command line: one module per group of subcommands.

Each module has ``add_subcommands(subparsers)`` that adds its parsers and sets ``func`` (called with
the parsed arguments, returning an exit code). Modules import only the standard library and light
parts of the package at import time; the heavy libraries (torch, TensorFlow, scikit-learn, pandas,
matplotlib) are imported inside the commands that need them, so ``--help`` and the listing commands
answer at once.

One grammar: ``-o/--override KEY=VALUE`` sets a setting, ``--output`` names what a command writes,
``--runs-dir`` the folder of run directories, ``--data-dir`` the datasets and task cache. Every input
error (:class:`nevis_bench.errors.InputError`) is printed as one ``error: ...`` line with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nevis_bench.errors import InputError

SUBCOMMAND_MODULES = (
    "nevis_bench.cli.run",
    "nevis_bench.cli.listing",
    "nevis_bench.cli.reports",
    "nevis_bench.cli.data",
    "nevis_bench.cli.encoders",
    "nevis_bench.cli.sweep",
    "nevis_bench.cli.audit",
    "nevis_bench.cli.transfer",
)

EXIT_INPUT_ERROR = 2


class UsageError(InputError):
    """Bad command-line input found before any compute."""


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
        return EXIT_INPUT_ERROR
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
