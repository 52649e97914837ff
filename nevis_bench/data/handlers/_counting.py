"""Count bins of the counting datasets (mall, trancos, shanghai_tech): the reference's quantisation.

The reference turns a crowd or vehicle count into one of 10 classes with roughly equal numbers of
images: a histogram of the counts (counts >= ``max_size`` in the last cell), its cumulative sum ``C``,
and for k = 1..9 the cut ``c_k`` = the largest count with ``C[count] < k * total / 10``. Walking the
counts 0, 1, ..., ``max_size - 1`` with a current class starting at 0, the class goes up by one at
each count greater than the current class's cut, at most once per count. This is reproduced exactly
(including that rule's shifts when two cuts coincide); :func:`count_bins` returns the class of every
count.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nevis_bench.data.handlers import HandlerError

NUM_BINS = 10


def count_bins(counts: Sequence[int], max_size: int, name: str, num_bins: int = NUM_BINS) -> tuple[list[int], list[str]]:
    """(class of each count 0..max_size-1, class names "lo-hi") from all the dataset's counts."""
    histogram = np.zeros(max_size)
    for count in counts:
        histogram[min(int(count), max_size - 1)] += 1
    cumulative = np.cumsum(histogram)
    per_bin = histogram.sum() / num_bins
    cuts = []
    for k in range(1, num_bins):
        below = np.flatnonzero(cumulative < per_bin * k)
        if not len(below):
            raise HandlerError(f"{name}: cannot cut the counts into {num_bins} bins (more than a tenth share the lowest count)")
        cuts.append(int(below[-1]))
    cuts.append(max_size)
    labels, label = [], 0
    for count in range(max_size):
        if count > cuts[label]:
            label += 1
        labels.append(label)
    if label != num_bins - 1:
        raise HandlerError(f"{name}: the counts give {label + 1} bins, not {num_bins}")
    names = []
    for b in range(num_bins):
        members = [c for c, l in enumerate(labels) if l == b]
        names.append(f"{members[0]}-{members[-1]}" if b < num_bins - 1 else f"{members[0]}+")
    return labels, names


def label_of_count(labels: list[int], count: int) -> int:
    """The class of ``count``; counts beyond the table take the last cell's class."""
    return labels[min(int(count), len(labels) - 1)]
