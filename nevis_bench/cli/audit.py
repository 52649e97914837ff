"""``nevis-bench audit RUN_DIR --event N``: measure a recorded event's FLOPs and compare with its record."""

from __future__ import annotations

import argparse


def cmd_audit(args: argparse.Namespace) -> int:
    import dataclasses

    from nevis_bench.run.audit import audit_run

    failed = 0
    for index in args.event:
        result, recorded = audit_run(args.run_dir, index)
        print(result.describe() + f"; recorded in events.jsonl: {recorded:.4g}")
        if recorded != result.reported:
            print(f"  note: the replay reported {result.reported:.4g}, the record {recorded:.4g} "
                  "(the learner's FLOP report is not deterministic)")
        failed += not result.passed or not dataclasses.replace(result, reported=recorded).passed
    return 1 if failed else 0


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="re-measure a recorded event's FLOPs with FlopCounterMode",
        description="Rebuild the learner of RUN_DIR from its config.json, replay the stream up to event N, run "
                    "event N under torch's FlopCounterMode on the real tensors and compare the measurement with "
                    "the FLOPs the learner reported. Exit 1 when a report is more than 5%% below the measurement. "
                    "Work the counter cannot see (scikit-learn, numpy) is not measured: the audit is a lower bound.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--event", type=int, action="append", required=True, metavar="N",
                        help="event index to audit (repeatable)")
    parser.set_defaults(func=cmd_audit)
