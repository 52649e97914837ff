"""Synthetic stand-ins for the NEVIS'22 streams, registered as ``synthetic-full|short|tiny|debug``.

Each synthetic stream mirrors the reference stream of the same size entry by entry: order, years,
repeats (same task key, identical data), task kind, grey vs colour, and the reference class count
capped at 100 (:func:`capped_classes` lists the datasets above the cap, e.g. Caltech 101 with 102
classes, CUB 200, ImageNet: a stand-in with hundreds of classes needs at least five training images
per class, which would multiply the CPU cost of every default run; README says which). Training-set sizes follow the reference's relative sizes on a log scale compressed
from about 1,500 .. 1.3M examples to 60 .. 6,000 training images, with at least 5 per class.
Images come from the generator families in :mod:`nevis_bench.streams.synthetic.generators`; the data
is a function of the data seed alone (never of the run seed), so every run sees the same benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nevis_bench.data import catalog
from nevis_bench.data.sources import Availability
from nevis_bench.protocol import TaskInfo
from nevis_bench.registry import STREAMS
from nevis_bench.stream import Stream, StreamEntry

MAX_CLASSES = 100
MIN_TRAIN, MAX_TRAIN = 60, 6000
REF_MIN_SIZE, REF_MAX_SIZE = 1_500, 1_331_167  # datasets up to ~1.5k examples get the minimum; ImageNet the maximum
MIN_PER_CLASS = 5
DATA_SEED = 0


def synthetic_train_size(reference_size: int, num_classes: int) -> int:
    """Log-linear map of the reference's dataset size onto [60, 6000] training images."""
    span = math.log(REF_MAX_SIZE / REF_MIN_SIZE)
    position = math.log(max(reference_size, REF_MIN_SIZE) / REF_MIN_SIZE) / span
    n = MIN_TRAIN * (MAX_TRAIN / MIN_TRAIN) ** min(position, 1.0)
    return max(int(round(n)), MIN_PER_CLASS * num_classes)


def split_sizes(train: int, num_classes: int, debug: bool = False) -> dict[str, int]:
    """Sizes of the four stored splits; evaluation splits hold at least 2 examples per class."""
    evaluation = max(int(round(0.25 * train)), 2 * num_classes)
    test = evaluation if debug else max(int(round(0.4 * train)), 2 * num_classes)
    return {"train": train, "dev": evaluation, "dev_test": evaluation, "test": test}


@dataclass(frozen=True)
class SyntheticSource:
    facts: catalog.DatasetFacts
    num_classes: int
    sizes: tuple[tuple[str, int], ...]
    seed: int = DATA_SEED

    def fingerprint(self, image_size: int) -> str:
        from nevis_bench.streams.synthetic.generators import GENERATOR_VERSION

        f = self.facts
        return (
            f"synthetic:v{GENERATOR_VERSION}:{f.key}:{f.family}:{f.style}:{f.kind}:{self.num_classes}:"
            f"{f.channels}:{dict(self.sizes)}:{self.seed}:{image_size}"
        )

    def availability(self) -> Availability:
        return Availability(True)

    def build(self, image_size: int) -> dict:
        from nevis_bench.streams.synthetic.generators import generate_task

        return generate_task(self.facts, self.num_classes, dict(self.sizes), image_size, self.seed)

    def describe(self) -> str:
        return f"synthetic:{self.facts.family}" + (f"/{self.facts.style}" if self.facts.style else "")


def synthetic_entry(year: int, key: str, debug: bool = False) -> StreamEntry:
    """The synthetic stand-in of catalogue dataset ``key`` appearing in ``year``."""
    facts = catalog.DATASETS[key]
    classes = min(facts.num_classes, MAX_CLASSES)
    if debug:
        train = MIN_PER_CLASS * classes
    else:
        train = min(MAX_TRAIN, synthetic_train_size(facts.size, classes))
    sizes = tuple(split_sizes(train, classes, debug).items())
    task = TaskInfo(
        key=key, name=facts.name, year=year, kind=facts.kind, num_classes=classes,
        domain=facts.domain, channels=facts.channels,
    )
    return StreamEntry(year, task, SyntheticSource(facts, classes, sizes))


def capped_classes() -> dict[str, tuple[int, int]]:
    """Catalogue datasets whose stand-in has fewer classes than the real task: key -> (synthetic, real)."""
    return {key: (MAX_CLASSES, facts.num_classes) for key, facts in catalog.DATASETS.items()
            if facts.num_classes > MAX_CLASSES}


def synthetic_stream(variant: str, name: str, debug: bool = False) -> Stream:
    entries = [synthetic_entry(year, key, debug) for year, key in catalog.VARIANTS[variant]]
    description = (
        f"synthetic stand-in for the reference {variant.upper()} stream "
        f"({len(entries)} entries, {len({e.task.key for e in entries})} distinct tasks); offline, generated on first use"
    )
    return Stream(name, entries, description)


@STREAMS.register("synthetic-full")
def synthetic_full() -> Stream:
    """Synthetic mirror of the reference FULL stream (106 tasks, 1992-2021)."""
    return synthetic_stream("full", "synthetic-full")


@STREAMS.register("synthetic-short")
def synthetic_short() -> Stream:
    """Synthetic mirror of the reference SHORT stream (29 tasks); the default stream."""
    return synthetic_stream("short", "synthetic-short")


@STREAMS.register("synthetic-tiny")
def synthetic_tiny() -> Stream:
    """Synthetic mirror of the reference TINY stream (7 tasks)."""
    return synthetic_stream("tiny", "synthetic-tiny")


@STREAMS.register("synthetic-debug")
def synthetic_debug() -> Stream:
    """Synthetic mirror of the reference DEBUG stream (2 tiny tasks: Pascal 2007 multi-label, COIL 20)."""
    return synthetic_stream("debug", "synthetic-debug", debug=True)


@STREAMS.register("synthetic-dataset")
def synthetic_dataset(dataset: str = "", then: str = "") -> Stream:
    """The synthetic stand-in of one catalogue dataset, or of a source then a target (transfer matrix).

    Options: ``dataset`` (a catalogue key, required), ``then`` (a second key, trained after ``dataset``).
    """
    from nevis_bench.streams.nevis import dataset_order

    order = dataset_order(str(dataset), str(then))
    entries = [synthetic_entry(year, key) for year, key in order]
    what = " then ".join(key for _, key in order)
    return Stream(f"synthetic-dataset:{'+'.join(k for _, k in order)}", entries,
                  f"single-dataset stream: the synthetic stand-in of {what}")
