"""The NEVIS'22 streams on real data: TFDS datasets and datasets prepared from their original archives.

Registered streams (the reference's variants and ablations in ``dm_nevis/streams/nevis_stream.py``):

=========================== ===============================================================================
``nevis-full``              FULL: 106 entries 1992-2021 (92 before 2020), 9 repeats keep their task key
``nevis-short``             SHORT: 29 entries (25 before 2020)
``nevis-tiny``              TINY: 7 entries (6 before 2020)
``nevis-debug``             DEBUG: Pascal 2007 (1999) and COIL 20 (2000); the reference's README says COIL 100
``nevis-imagenet-only``     IMAGENET_ONLY: ImageNet (2014)
``nevis-major-domain-only`` MAJOR_DOMAIN_ONLY: 70 entries (no satellite, face, texture, shape, OCR,
                            quality, medical before 2019; 2019-2021 as FULL)
``nevis-large-dataset-only`` LARGE_DATASET_ONLY: 67 entries (no dataset under 10,000 examples before 2019)
``remove-first-30``         ablation: FULL without its first 30 entries
``remove-last-30``          ablation: FULL without the last 30 entries before 2020, the reference's choice
                            of entries (CUB 200 and Stanford Cars dropped in 2016, SVHN and Chars74K kept)
``no-imagenet``             ablation: FULL without ImageNet before 2020 (the 2021 repeat stays)
``random-datasets``         ablation: every entry from 2020 on plus a random subset of the earlier ones
``nevis-dataset``           one catalogue dataset alone, or a source then a target (the reference's
                            ``IndividualDatasetStream``, used for its pairwise transfer matrix)
=========================== ===============================================================================

Ablation streams set ``Stream.default_stop_year = 2022`` (the reference's ``AblationStream`` runs to
2022, with 2020 as its meta-training boundary).

Every factory takes these keyword options (``-o stream.KEY=VALUE`` on the command line):

* ``data_dir``: where prepared datasets and TFDS data live (default ``$NEVIS_BENCH_DATA_DIR`` or
  ``~/.cache/nevis-bench``; the runner should pass its ``--data-dir``);
* ``tfds_data_dir``: the TFDS folder (default ``$TFDS_DATA_DIR`` or ``<data_dir>/tensorflow_datasets``);
* ``download`` (bool, default false): let TFDS download missing TFDS datasets on first use;
* ``shuffle``: ``none`` (default), ``within-year`` (permute the tasks of each year), or
  ``across-years`` (permute all tasks before 2020 among themselves and all tasks from 2020 on among
  themselves; each task keeps its year, so no task is lost whatever the stop year — unlike the
  reference's ``shuffle_datasets_order``, which cuts the stream at the first shuffled year >= stop year);
* ``shuffle_seed`` (int, default 1, the reference's): seed of ``np.random.default_rng``.

``random-datasets`` also takes ``count`` (int, default 60: the total number of entries, the reference's
``num_random_datasets``, the 14 entries from 2020 on included) and ``seed`` (int, default 0, the
reference's ``random_seed``); ``remove-last-30`` takes ``match_reference`` (bool, default true: the
published ablation; false drops the last 30 entries in stream order, see :func:`remove_last`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from nevis_bench.data import catalog
from nevis_bench.data.sources import source_for, task_info
from nevis_bench.registry import STREAMS
from nevis_bench.stream import Stream, StreamEntry

META_TRAIN_STOP_YEAR = catalog.DEFAULT_STOP_YEAR  # 2020: the development / held-out boundary
ABLATION_STOP_YEAR = catalog.FINAL_STOP_YEAR  # 2022
SHUFFLES = ("none", "within-year", "across-years")
Order = Sequence[tuple[int, str]]


def as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TypeError(f"option {name} must be true or false, got {value!r}")


def as_int(value, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise TypeError(f"option {name} must be an integer, got {value!r}") from None


# ---------------------------------------------------------------------------------------------------
# Order transformations (pure functions on (year, key) lists)


def shuffle_order(order: Order, mode: str, seed: int = 1) -> list[tuple[int, str]]:
    """Reorder a stream; every entry is kept (see the module docstring)."""
    order = list(order)
    if mode == "none":
        return order
    rng = np.random.default_rng(seed)
    if mode == "within-year":
        out = []
        for year in sorted({y for y, _ in order}):
            block = [entry for entry in order if entry[0] == year]
            rng.shuffle(block)  # same draws as the reference's shuffle_within_year for the years it runs
            out.extend(block)
        return out
    if mode == "across-years":
        early = [e for e in order if e[0] < META_TRAIN_STOP_YEAR]
        late = [e for e in order if e[0] >= META_TRAIN_STOP_YEAR]
        rng.shuffle(early)
        rng.shuffle(late)
        return early + late
    raise TypeError(f"option shuffle must be one of {', '.join(SHUFFLES)}, got {mode!r}")


def remove_first(order: Order, k: int = 30) -> list[tuple[int, str]]:
    """Drop the first ``k`` entries before 2020 (the reference's REMOVE_FIRST_30_TASKS)."""
    early = [e for e in order if e[0] < META_TRAIN_STOP_YEAR]
    dropped = set(range(min(k, len(early))))
    kept_early = [e for i, e in enumerate(early) if i not in dropped]
    return kept_early + [e for e in order if e[0] >= META_TRAIN_STOP_YEAR]


def remove_last(order: Order, k: int = 30, match_reference: bool = True) -> list[tuple[int, str]]:
    """Drop the last ``k`` entries before 2020 (REMOVE_LAST_30_TASKS).

    The reference walks the years backwards but, in the year where the count runs out, drops that
    year's *first* entries (for FULL: CUB 200 and Stanford Cars of 2016 instead of SVHN and Chars74K).
    The default (``match_reference=True``) reproduces that, as the published ablation ran it;
    ``match_reference=False`` drops the last ``k`` entries in stream order.
    """
    early = [e for e in order if e[0] < META_TRAIN_STOP_YEAR]
    late = [e for e in order if e[0] >= META_TRAIN_STOP_YEAR]
    if not match_reference:
        return early[: max(0, len(early) - k)] + late
    kept_by_year: dict[int, list] = {}
    removed = 0
    for year in sorted({y for y, _ in early}, reverse=True):
        block = [e for e in early if e[0] == year]
        skip = min(len(block), max(0, k - removed))
        removed += skip
        kept_by_year[year] = block[skip:]
    return [e for year in sorted(kept_by_year) for e in kept_by_year[year]] + late


def remove_imagenet(order: Order) -> list[tuple[int, str]]:
    """Drop ImageNet before 2020 (NO_IMAGENET); the 2021 repeat stays."""
    return [e for e in order if not (e[1] == "imagenet" and e[0] < META_TRAIN_STOP_YEAR)]


def random_subset(order: Order, count: int, seed: int = 0) -> list[tuple[int, str]]:
    """RANDOM_DATASET: all entries from 2020 on plus random earlier ones, ``count`` in total, order kept.

    As the reference: the earlier entries are shuffled with ``np.random.default_rng(seed)``, appended to
    the later ones, and the first ``count`` of that list are kept.
    """
    early = [e for e in order if e[0] < META_TRAIN_STOP_YEAR]
    late = [e for e in order if e[0] >= META_TRAIN_STOP_YEAR]
    if not len(late) < count <= len(order):
        raise TypeError(
            f"option count must be more than the {len(late)} entries from {META_TRAIN_STOP_YEAR} on and at most "
            f"{len(order)}, got {count}"
        )
    positions = list(range(len(early)))
    np.random.default_rng(seed).shuffle(positions)
    chosen = set(positions[: count - len(late)])
    return [e for i, e in enumerate(early) if i in chosen] + late


# ---------------------------------------------------------------------------------------------------
# Stream construction


@dataclass
class NevisStreamOptions:
    """The options every real-data stream takes (``streams describe`` lists them; unknown keys are refused)."""

    data_dir: str | None = field(default=None, metadata={"doc": "prepared datasets and TFDS data (default: the run's --data-dir)"})
    tfds_data_dir: str | None = field(default=None, metadata={"doc": "TFDS folder (default: --tfds-data-dir, $TFDS_DATA_DIR or <data_dir>/tensorflow_datasets)"})
    download: bool = field(default=False, metadata={"doc": "let TFDS download missing TFDS datasets on first use"})
    shuffle: str = field(default="none", metadata={"doc": "none | within-year | across-years (every task is kept)"})
    shuffle_seed: int = field(default=1, metadata={"doc": "seed of the shuffle (the reference's 1)"})
    skip_missing: bool = field(default=False, metadata={"doc": "run only the entries whose data is present; the rest are recorded"})


def nevis_stream(
    name: str,
    order: Order,
    description: str,
    *,
    data_dir=None,
    tfds_data_dir=None,
    download=False,
    shuffle: str = "none",
    shuffle_seed=1,
    skip_missing=False,
    default_stop_year: int | None = None,
) -> Stream:
    """A stream over ``order`` ((year, catalog key) pairs) with TFDS / prepared sources.

    ``skip_missing``: leave out the entries whose data is not available (neither prepared nor in the
    TFDS folder), as the reference does with a warning; they are listed in ``Stream.skipped``, which
    the run records in ``config.json`` and ``summary.json``.
    """
    download = as_bool(download, "download")
    skip_missing = as_bool(skip_missing, "skip_missing")
    shuffle = str(shuffle)
    order = shuffle_order(order, shuffle, as_int(shuffle_seed, "shuffle_seed"))
    data_dir = None if data_dir is None else str(data_dir)
    tfds_data_dir = None if tfds_data_dir is None else str(tfds_data_dir)
    sources: dict[str, object] = {}
    entries, skipped = [], []
    for year, key in order:
        facts = catalog.DATASETS[key]
        if key not in sources:  # a repeat shares its source (same task key, same data)
            sources[key] = source_for(facts, data_dir, tfds_data_dir, download)
        if skip_missing and not sources[key].availability().available:
            skipped.append(f"{year} {key}")
            continue
        entries.append(StreamEntry(year, task_info(facts, year), sources[key]))
    if shuffle != "none":
        description += f" (shuffled {shuffle}, seed {shuffle_seed})"
    if skipped:
        description += f" ({len(skipped)} of {len(order)} entries skipped: data missing)"
    return Stream(name, entries, description, default_stop_year=default_stop_year, skipped=skipped)


def _describe(order: Order, what: str) -> str:
    before = sum(1 for y, _ in order if y < META_TRAIN_STOP_YEAR)
    distinct = len({k for _, k in order})
    tfds = len({k for _, k in order if catalog.DATASETS[k].source.startswith("tfds:")})
    return (
        f"{what}: {len(order)} entries ({before} before {META_TRAIN_STOP_YEAR}), {distinct} distinct datasets "
        f"({tfds} from TFDS, {distinct - tfds} prepared from original archives); real data, see `nevis-bench data status`"
    )


OPTIONS_DOC = """
    Options (keyword arguments; ``-o stream.KEY=VALUE``): ``data_dir`` (prepared datasets and TFDS data;
    default $NEVIS_BENCH_DATA_DIR or ~/.cache/nevis-bench), ``tfds_data_dir`` (default $TFDS_DATA_DIR or
    <data_dir>/tensorflow_datasets), ``download`` (bool, default false: let TFDS download missing data),
    ``shuffle`` (none | within-year | across-years; every task is kept), ``shuffle_seed`` (int, default 1),
    ``skip_missing`` (bool, default false: run only the entries whose data is present; the skipped ones
    are recorded, and the leaderboard keeps such a run apart from complete ones).
    """


def _options_doc(factory):
    factory.__doc__ = (factory.__doc__ or "").rstrip() + "\n" + OPTIONS_DOC
    return factory


def _variant(variant: str, name: str, what: str, **options) -> Stream:
    order = catalog.VARIANTS[variant]
    return nevis_stream(name, order, _describe(order, what), **options)


@STREAMS.register("nevis-full", NevisStreamOptions)
@_options_doc
def nevis_full(**options) -> Stream:
    """The reference FULL stream on real data (106 entries, 1992-2021)."""
    return _variant("full", "nevis-full", "NEVIS'22 FULL", **options)


@STREAMS.register("nevis-short", NevisStreamOptions)
@_options_doc
def nevis_short(**options) -> Stream:
    """The reference SHORT stream on real data (29 entries)."""
    return _variant("short", "nevis-short", "NEVIS'22 SHORT", **options)


@STREAMS.register("nevis-tiny", NevisStreamOptions)
@_options_doc
def nevis_tiny(**options) -> Stream:
    """The reference TINY stream on real data (7 entries)."""
    return _variant("tiny", "nevis-tiny", "NEVIS'22 TINY", **options)


@STREAMS.register("nevis-debug", NevisStreamOptions)
@_options_doc
def nevis_debug(**options) -> Stream:
    """The reference DEBUG stream on real data (Pascal 2007, COIL 20)."""
    return _variant("debug", "nevis-debug", "NEVIS'22 DEBUG", **options)


@STREAMS.register("nevis-imagenet-only", NevisStreamOptions)
@_options_doc
def nevis_imagenet_only(**options) -> Stream:
    """The reference IMAGENET_ONLY stream (ImageNet at 2014)."""
    return _variant("imagenet-only", "nevis-imagenet-only", "NEVIS'22 IMAGENET_ONLY", **options)


@STREAMS.register("nevis-major-domain-only", NevisStreamOptions)
@_options_doc
def nevis_major_domain_only(**options) -> Stream:
    """The reference MAJOR_DOMAIN_ONLY stream (70 entries)."""
    return _variant("major-domain-only", "nevis-major-domain-only", "NEVIS'22 MAJOR_DOMAIN_ONLY", **options)


@STREAMS.register("nevis-large-dataset-only", NevisStreamOptions)
@_options_doc
def nevis_large_dataset_only(**options) -> Stream:
    """The reference LARGE_DATASET_ONLY stream (67 entries)."""
    return _variant("large-dataset-only", "nevis-large-dataset-only", "NEVIS'22 LARGE_DATASET_ONLY", **options)


def _ablation(name: str, order: Order, what: str, options: dict) -> Stream:
    return nevis_stream(name, order, _describe(order, what), default_stop_year=ABLATION_STOP_YEAR, **options)


@STREAMS.register("remove-first-30", NevisStreamOptions)
@_options_doc
def remove_first_30(**options) -> Stream:
    """Ablation: FULL without its first 30 entries; runs to 2022."""
    return _ablation("remove-first-30", remove_first(catalog.FULL, 30), "ablation REMOVE_FIRST_30_TASKS", options)


@STREAMS.register("remove-last-30", NevisStreamOptions)
@_options_doc
def remove_last_30(match_reference=True, **options) -> Stream:
    """Ablation: FULL without the last 30 entries before 2020 (the published choice); runs to 2022.

    Extra option: ``match_reference`` (bool, default true) drops the entries the reference drops in the
    boundary year (CUB 200, Stanford Cars); false drops the last 30 in stream order (see ``remove_last``).
    """
    order = remove_last(catalog.FULL, 30, as_bool(match_reference, "match_reference"))
    return _ablation("remove-last-30", order, "ablation REMOVE_LAST_30_TASKS", options)


@STREAMS.register("no-imagenet", NevisStreamOptions)
@_options_doc
def no_imagenet(**options) -> Stream:
    """Ablation: FULL without ImageNet before 2020; runs to 2022."""
    return _ablation("no-imagenet", remove_imagenet(catalog.FULL), "ablation NO_IMAGENET", options)


@STREAMS.register("random-datasets", NevisStreamOptions)
@_options_doc
def random_datasets(count=60, seed=0, **options) -> Stream:
    """Ablation: every entry from 2020 on plus random earlier ones, ``count`` entries in all; runs to 2022.

    Extra options: ``count`` (int, default 60, the reference's num_random_datasets: total entries, the 14
    from 2020 on included), ``seed`` (int, default 0, the reference's random_seed).
    """
    order = random_subset(catalog.FULL, as_int(count, "count"), as_int(seed, "seed"))
    return _ablation("random-datasets", order, f"ablation RANDOM_DATASET (count {count}, seed {seed})", options)



# ---------------------------------------------------------------------------------------------------
# Single-dataset streams (the reference's IndividualDatasetStream)

PAIR_YEARS = (2018, 2019)  # both before every stop year; the source's task comes first


def dataset_order(dataset: str, then: str = "") -> list[tuple[int, str]]:
    """One dataset, or ``dataset`` then ``then``: the order of a single-dataset stream."""
    order = [(PAIR_YEARS[0], catalog.catalogue_key(dataset))]
    if then:
        order.append((PAIR_YEARS[1], catalog.catalogue_key(then, "then")))
    return order


@STREAMS.register("nevis-dataset", NevisStreamOptions)
@_options_doc
def nevis_dataset(dataset: str = "", then: str = "", **options) -> Stream:
    """One NEVIS'22 dataset alone, or a source then a target (real data; the transfer matrix's stream).

    Extra options: ``dataset`` (a catalogue key, required), ``then`` (a second key: trained after
    ``dataset``, as the reference's ``IndividualDatasetStream(name, second_name)``).
    """
    order = dataset_order(str(dataset), str(then))
    what = " then ".join(key for _, key in order)
    return nevis_stream(f"nevis-dataset:{'+'.join(k for _, k in order)}", order,
                        f"single-dataset stream: {what} (real data)", **options)
