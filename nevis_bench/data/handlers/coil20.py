"""COIL-20 (``nevis:coil20``): 20 objects on a turntable, 72 views each, grey 128 x 128 PNGs.

Archive: ``coil-20-proc.zip`` (the processed set) with ``coil-20-proc/obj<k>__<view>.png``, k = 1..20.
Order: sorted member names (so ``obj10`` comes before ``obj2``).

Label (reference): k - 1. Members of any other form are skipped (as the reference does).

Split rule (reference): no official split; categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over all
images in sorted member order.
Note: the reference converted the grey images to RGB; the catalogue stores them grey (same pixels).
"""

from __future__ import annotations

import re

from nevis_bench.data.handlers import Artefact, Handler, HandlerContext, HandlerOutput
from nevis_bench.data.handlers._util import labelled_examples

MEMBER = re.compile(r"coil-20-proc/obj(\d+)__\d+\.png")
NUM_OBJECTS = 20


def label_of(member: str) -> int | None:
    match = MEMBER.fullmatch(member)
    if not match or not 1 <= int(match.group(1)) <= NUM_OBJECTS:
        return None
    return int(match.group(1)) - 1


def convert(ctx: HandlerContext) -> HandlerOutput:
    examples = labelled_examples(ctx, [ctx.file("coil-20-proc.zip")], label_of)
    return HandlerOutput(examples, [f"obj{k}" for k in range(1, NUM_OBJECTS + 1)])


HANDLER = Handler(
    name="coil20",
    dataset_key="coil20",
    artefacts=(
        Artefact(
            "coil-20-proc.zip",
            "http://www.cs.columbia.edu/CAVE/databases/SLAM_coil-20_coil-100/coil-20/coil-20-proc.zip",
            "464dec76a6abfcd00e8de6cf1e7d0acc",
        ),
    ),
    convert=convert,
    split_rule="categorical 0.56/0.12/0.12/0.20 (RandomState(0)) over coil-20-proc/obj*__*.png, sorted member order",
    website="https://www.cs.columbia.edu/CAVE/software/softlib/coil-20.php",
    licence="Columbia University CAVE: free for non-commercial research; see the website",
    citation="S. A. Nene, S. K. Nayar and H. Murase, Columbia Object Image Library (COIL-20), 1996",
)
