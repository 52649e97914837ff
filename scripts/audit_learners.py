"""FLOP audit of every registered learner; writes results/benchmarks/flop_audit.md.

For each learner, with its test budget (the ``test_overrides`` it registers), the first train event and
its predict event of ``synthetic-debug`` are run on the real tensors under ``FlopCounterMode`` (the
conformance kit's ``flop_audit`` check, ``nevis_bench.run.audit``) and the measurement is compared with
the FLOPs the learner reported. The audit fails a report more than 5% below the measurement.

Usage: python scripts/audit_learners.py [--output results/benchmarks/flop_audit.md]
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import tempfile

from nevis_bench.conformance import run_check
from nevis_bench.registry import LEARNERS, STREAMS
from nevis_bench.run.audit import TOLERANCE
from nevis_bench.stream import StreamData

REPO = pathlib.Path(__file__).resolve().parents[1]


def _ratio(result) -> str:
    return f"{result.reported / result.measured:.3f}" if result.measured else "(nothing measured)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "results" / "benchmarks" / "flop_audit.md"))
    args = parser.parse_args()
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as work:
        data = pathlib.Path(work) / "data"
        StreamData(STREAMS.get("synthetic-debug").factory(), 2020, data, 32).prepare(progress=False)
        for name in LEARNERS.names():
            subject = run_check(name, "flop_audit", pathlib.Path(work) / name,
                                overrides=LEARNERS.get(name).test_overrides, data_dir=data)
            train, predict = subject.notes["flop_audit"]
            failed += not (train.passed and predict.passed)
            rows.append(f"| {name} | {train.reported:.4g} | {train.measured:.4g} | {_ratio(train)} | "
                        f"{predict.reported:.4g} | {predict.measured:.4g} | {_ratio(predict)} |")
            print(rows[-1], flush=True)
    lines = [
        "# FLOP audit of the registered learners",
        "",
        f"Produced by `python scripts/audit_learners.py` ({platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}). First train event and its predict event of `synthetic-debug`, "
        "each learner with its registered test budget, measured with `FlopCounterMode` on the real tensors "
        "(empty frozen-encoder feature cache) against the FLOPs the learner reported. A report more than "
        f"{TOLERANCE:.0%} below the measurement fails; work the counter cannot see (scikit-learn, numpy) "
        "is not measured, so the audit is a lower bound.",
        "",
        "| learner | train reported | train measured | ratio | predict reported | predict measured | ratio |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Failed audits: {failed}.",
        "",
    ]
    pathlib.Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
