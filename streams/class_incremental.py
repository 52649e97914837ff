"""Class-incremental splits of a synthetic task: ``synthetic-class-incremental``.

The classes of one synthetic dataset (default COIL-100's stand-in) are cut into ``tasks`` groups of
``classes_per_task``; task ``t`` holds the examples of group ``t``. All tasks share one label space
of ``tasks * classes_per_task`` classes (``TaskInfo.num_classes``), and labels are global: class
``c`` of group ``t`` is label ``t * classes_per_task + c``. So a learner can keep one head over every
class it has seen (task-agnostic, where forgetting shows) or restrict its scores to the classes of
the task at hand (task-incremental). Run it with ``--final-eval`` to measure forgetting.

Options (``--stream-option KEY=VALUE``): ``base`` (a synthetic dataset key of the catalog),
``tasks``, ``classes_per_task``, ``train_per_class``, ``eval_per_class``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nevis_bench.streams.synthetic.streams import SyntheticSource

from nevis_bench.data import catalog
from nevis_bench.data.sources import Availability
from nevis_bench.protocol import SINGLE_LABEL, TaskInfo
from nevis_bench.registry import STREAMS
from nevis_bench.stream import Stream, StreamEntry


@dataclass(frozen=True)
class ClassGroupSource:
    """The examples of a few classes of a synthetic task, relabelled into the shared label space."""

    base: SyntheticSource
    classes: tuple[int, ...]  # base-task classes of this group
    first_label: int  # global label of the group's first class

    def fingerprint(self, image_size: int) -> str:
        return f"{self.base.fingerprint(image_size)}:classes={list(self.classes)}:first={self.first_label}"

    def availability(self) -> Availability:
        return Availability(True)

    def build(self, image_size: int) -> dict:
        lookup = {c: self.first_label + i for i, c in enumerate(self.classes)}
        out = {}
        for split, (images, labels, *rest) in self.base.build(image_size).items():
            keep = np.isin(labels, self.classes)
            relabelled = np.array([lookup[int(c)] for c in labels[keep]], dtype=np.int64)
            out[split] = (images[keep], relabelled)
        return out

    def describe(self) -> str:
        return f"{self.base.describe()} classes {self.classes[0]}..{self.classes[-1]}"


@STREAMS.register("synthetic-class-incremental")
def synthetic_class_incremental(
    base: str = "coil100", tasks: int = 5, classes_per_task: int = 4, train_per_class: int = 20,
    eval_per_class: int = 10,
) -> Stream:
    """Class-incremental split of one synthetic task (default: 5 tasks x 4 COIL-100 classes)."""
    if base not in catalog.DATASETS:
        raise ValueError(f"base {base!r} is not a catalog dataset key (see `nevis-bench streams describe synthetic-full`)")
    facts = catalog.DATASETS[base]
    total = tasks * classes_per_task
    if facts.kind != SINGLE_LABEL or total > min(facts.num_classes, 100):
        raise ValueError(f"base {base!r} must be single-label with at least {total} classes")
    classes = min(facts.num_classes, 100)
    sizes = {"train": train_per_class * classes, "dev": eval_per_class * classes,
             "dev_test": eval_per_class * classes, "test": eval_per_class * classes}
    source = SyntheticSource(facts, classes, tuple(sizes.items()))
    entries = []
    for t in range(tasks):
        group = tuple(range(t * classes_per_task, (t + 1) * classes_per_task))
        task = TaskInfo(key=f"{base}_classes_{group[0]}_{group[-1]}", name=f"{facts.name} classes {group[0]}-{group[-1]}",
                        year=2000 + t, kind=SINGLE_LABEL, num_classes=total, domain=facts.domain, channels=facts.channels,
                        label_space=f"{base}-class-incremental")
        entries.append(StreamEntry(2000 + t, task, ClassGroupSource(source, group, t * classes_per_task)))
    return Stream("synthetic-class-incremental", entries,
                  f"{tasks} tasks of {classes_per_task} classes of synthetic {facts.name}, one shared label space of {total}")
