"""``nevis-bench data status | prepare | verify``: what a stream needs, getting it, checking it.

* ``data status --stream NAME``: one row per dataset of the stream: year of first use, dataset, source,
  state (``cached``: in the task cache at ``--image-size``; ``available``: on disk, the cache is built
  on first use or by ``data prepare``; ``missing``; ``damaged``: a cache entry without a readable
  manifest) and, for missing or damaged ones, the exact command or manual step that gets it.
* ``data prepare NAME --from DIR`` converts one dataset from its original files in ``DIR`` (handlers,
  and ImageNet's manual TFDS download); ``--download`` fetches it (needs network); without either, a
  dataset already on disk only gets its task cache built. ``data prepare --stream NAME`` does this for
  every dataset of a stream it can, then lists what is still missing (exit code 1). Building the task
  cache here keeps TensorFlow out of training processes (``--no-cache`` skips it).
* ``data verify NAME...`` recomputes the hashes of a prepared dataset against its ``splits.json`` and
  checks every task-cache entry of the dataset at ``--image-size`` against its manifest (shapes,
  dtypes, label range, content hashes). ``data verify --stream NAME`` checks every task of a stream:
  its cache entry against the manifest and the task, and, where the source is on disk, that the entry
  was built from the source as it is now (its fingerprint) and, for a prepared dataset, the prepared
  dataset's own hashes. Exit code 1 when anything is wrong.
* A damaged cache entry (what a run refuses to use) is rebuilt by ``data prepare`` (``--stream``: every
  damaged task of the stream), or by deleting its folder.

NAME is a catalog key (``pascal_voc2005``, ``cifar_100``), a source name (``melanoma``, ``voc/2007``)
or a display name (``"Pascal 2005"``).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

DEFAULT_IMAGE_SIZE = 32


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="task cache, prepared datasets and TFDS data (default $NEVIS_BENCH_DATA_DIR or ~/.cache/nevis-bench)")
    parser.add_argument("--tfds-data-dir", default=None,
                        help="TFDS data folder (default $TFDS_DATA_DIR or <data-dir>/tensorflow_datasets)")
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="stored image size of the task cache (32)")


def add_subcommands(subparsers) -> None:
    data = subparsers.add_parser("data", help="dataset status, preparation from original archives, verification")
    data_sub = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)

    status = data_sub.add_parser("status", help="which datasets of a stream are cached, available or missing")
    status.add_argument("--stream", required=True, help="stream name (see `nevis-bench streams list`)")
    status.add_argument("--stop-year", type=int, help="only the tasks before this year (default: all years)")
    _add_common(status)
    status.set_defaults(func=cmd_status)

    prepare = data_sub.add_parser("prepare", help="prepare one dataset, or every missing dataset of a stream")
    prepare.add_argument("name", nargs="?", help="dataset (catalog key, source name or display name)")
    prepare.add_argument("--stream", help="prepare every dataset of this stream that can be prepared")
    prepare.add_argument("--from", dest="source_dir", metavar="DIR",
                         help="folder holding the original files (for --stream: also DIR/<name>/ per dataset)")
    prepare.add_argument("--download", action="store_true", help="download what is missing (needs network)")
    prepare.add_argument("--stop-year", type=int, help="with --stream: only the tasks before this year")
    prepare.add_argument("--skip-corrupt", action="store_true",
                         help="skip images that do not decode (listed in metadata.json) instead of stopping")
    prepare.add_argument("--force", action="store_true", help="rebuild a prepared dataset that already exists")
    prepare.add_argument("--no-cache", action="store_true", help="do not build the task cache")
    _add_common(prepare)
    prepare.set_defaults(func=cmd_prepare)

    verify = data_sub.add_parser("verify", help="check cached tasks (and prepared datasets) against their manifests and sources")
    verify.add_argument("names", nargs="*", metavar="NAME", help="dataset(s) (catalog key, source name, display name or task key)")
    verify.add_argument("--stream", help="check every task of this stream")
    verify.add_argument("--stop-year", type=int, help="with --stream: only the tasks before this year")
    _add_common(verify)
    verify.set_defaults(func=cmd_verify)


def _usage(message: str):
    from nevis_bench.cli import UsageError

    return UsageError(message)


def _data_dir(args) -> str:
    from nevis_bench.data.sources import default_data_dir

    return os.path.expanduser(args.data_dir) if args.data_dir else str(default_data_dir())


def resolve_dataset(name: str):
    """The catalog facts of a dataset named by key, source name or display name."""
    from nevis_bench.data.catalog import DATASETS

    if name in DATASETS:
        return DATASETS[name]
    lowered = name.strip().lower()
    for facts in DATASETS.values():
        if lowered in (facts.source.partition(":")[2].lower(), facts.source.lower(), facts.name.lower()):
            return facts
    names = sorted(set(DATASETS) | {f.source.partition(":")[2] for f in DATASETS.values()})
    close = difflib.get_close_matches(name, names, n=4)
    raise _usage(f"unknown dataset {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "; see streams/catalog.py"))


def _stream(name: str, data_dir: str, tfds_data_dir: str | None):
    """A registered stream or a stream file, given the data folders where it takes them."""
    from nevis_bench.registry import RegistryError
    from nevis_bench.stream_options import open_stream

    try:
        return open_stream(name, {}, data_dir=data_dir, tfds_data_dir=tfds_data_dir)
    except RegistryError as error:
        raise _usage(str(error)) from error


def _first_years(stream, stop_year: int | None) -> dict:
    """Distinct task key -> (first year, entry), in stream order, before ``stop_year`` when given."""
    out = {}
    for entry in stream.entries:
        if stop_year is None or entry.year < stop_year:
            out.setdefault(entry.task.key, (entry.year, entry))
    return out


def _state(cache, source, key: str, image_size: int) -> tuple[str, str]:
    from nevis_bench.data.cache import CacheError

    try:
        if cache.get(key, source.fingerprint(image_size)) is not None:
            return "cached", ""
    except CacheError as error:
        return "damaged", f"{error}; rebuild with `nevis-bench data prepare` (see `nevis-bench data verify {key}`)"
    availability = source.availability()
    if availability.available:
        return "available", availability.how_to_get or "task cache built on first use or by `nevis-bench data prepare`"
    return "missing", availability.how_to_get


def cmd_status(args) -> int:
    from nevis_bench.data.cache import TaskCache

    data_dir = _data_dir(args)
    stream = _stream(args.stream, data_dir, args.tfds_data_dir)
    cache = TaskCache(data_dir)
    rows, counts = [], {"cached": 0, "available": 0, "missing": 0, "damaged": 0}
    for key, (year, entry) in _first_years(stream, args.stop_year).items():
        state, action = _state(cache, entry.source, key, args.image_size)
        counts[state] += 1
        rows.append((str(year), key, entry.source.describe(), state, action))
    header = ("year", "dataset", "source", "state", "how to get it")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths + [0])).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths + [0])).rstrip())
    print(
        f"\n{stream.name}: {len(rows)} datasets: {counts['cached']} cached, {counts['available']} available, "
        f"{counts['missing']} missing" + (f", {counts['damaged']} damaged" if counts["damaged"] else "")
        + f" (data dir {data_dir}, image size {args.image_size})"
    )
    return 0


def _single_entry_stream(facts, data_dir: str, tfds_data_dir: str | None, download: bool = False):
    from nevis_bench.data import catalog
    from nevis_bench.data.sources import source_for, task_info
    from nevis_bench.stream import Stream, StreamEntry

    year = next((y for y, k in catalog.FULL if k == facts.key), 2000)
    source = source_for(facts, data_dir, tfds_data_dir, download)
    return Stream(f"data-{facts.key}", [StreamEntry(year, task_info(facts, year), source)])


def _cache(stream, key: str, data_dir: str, image_size: int, force: bool = False) -> None:
    """Build ``key``'s task-cache entry; one that exists is rebuilt when damaged (or with ``force``)."""
    from nevis_bench.stream import StreamData

    data = StreamData(stream, stop_year=10_000, data_dir=data_dir, image_size=image_size)
    problems = data.problems(key)
    if problems or force:
        if problems:
            print(f"{key}: the task cache entry is damaged ({problems[0]}); rebuilding it", file=sys.stderr)
        data.rebuild(key)
    else:
        data.task(key)


def _make_available(facts, source, args, data_dir: str, roots: list[str], explicit: bool) -> str:
    """Try to make one dataset available; '' on success, else what is still needed.

    ``explicit``: the user named this dataset, so missing inputs are errors rather than skips.
    """
    from nevis_bench.data import prepared
    from nevis_bench.data.handlers import HandlerError, get_handler
    from nevis_bench.data.tfds_source import TfdsSource

    rebuild = args.force and bool(roots or args.download)  # --force only matters with something to rebuild from
    if isinstance(source, TfdsSource):
        spec = source.spec
        if source.availability().available and not rebuild:
            return ""
        if spec.manual and roots:
            folders = [os.path.expanduser(r) for r in roots]
            folders = [f for r in folders for f in (r, os.path.join(r, spec.name))]
            manual_dir = next((f for f in folders if all(os.path.exists(os.path.join(f, m)) for m in spec.manual_files)), None)
            if manual_dir is None:
                if explicit:
                    raise _usage(f"{', '.join(spec.manual_files)} not found in {roots[0]}. {spec.manual}")
                return spec.manual
            print(f"{facts.key}: preparing {spec.name} with TFDS from the files in {manual_dir}", file=sys.stderr)
            source.prepare(manual_dir=manual_dir)
            return ""
        if args.download and not spec.manual:
            print(f"{facts.key}: downloading and preparing {spec.name} with TFDS", file=sys.stderr)
            source.prepare()
            return ""
        return source.availability().how_to_get
    handler = get_handler(source.name)
    if source.dataset.ready and not rebuild:
        return ""
    if handler is None:
        return source.availability().how_to_get
    if roots:
        search = [os.path.expanduser(r) for r in roots]
        if not explicit and handler.missing_files([p for r in search for p in (r, os.path.join(r, handler.name))]):
            return handler.how_to_get()
    elif args.download:
        search = [str(prepared.download_artefacts(handler, os.path.join(data_dir, "downloads", handler.name)))]
    else:
        if explicit:
            raise _usage(f"{facts.key} is not prepared; {handler.how_to_get()}")
        return handler.how_to_get()
    print(f"{facts.key}: converting the original files with handler {handler.name}", file=sys.stderr)
    try:
        dataset = prepared.write_prepared(handler, search, data_dir, skip_corrupt=args.skip_corrupt, force=args.force)
    except HandlerError as error:
        if explicit:
            raise
        return f"{error}"
    counts = dataset.metadata["counts"]
    print(f"{facts.key}: prepared {sum(counts.values())} images {counts} in {dataset.path}", file=sys.stderr)
    return ""


def cmd_prepare(args) -> int:
    from nevis_bench.errors import InputError

    if bool(args.name) == bool(args.stream):
        raise _usage("give either a dataset NAME or --stream NAME")
    data_dir = _data_dir(args)
    roots = [args.source_dir] if args.source_dir else []
    if args.source_dir and not os.path.isdir(os.path.expanduser(args.source_dir)):
        raise _usage(f"--from {args.source_dir}: not a folder")
    if args.name:
        facts = resolve_dataset(args.name)
        stream = _single_entry_stream(facts, data_dir, args.tfds_data_dir)
        source = stream.entries[0].source
        still_needed = _make_available(facts, source, args, data_dir, roots, explicit=True)
        if still_needed:
            raise _usage(f"{facts.key} is not available: {still_needed}")
        if not args.no_cache:
            _cache(stream, facts.key, data_dir, args.image_size, force=args.force)
            print(f"{facts.key}: task cache ready at image size {args.image_size}", file=sys.stderr)
        return 0

    from nevis_bench.data.catalog import DATASETS
    from nevis_bench.data.prepared import PreparedSource
    from nevis_bench.data.tfds_source import TfdsSource
    from nevis_bench.stream import StreamData

    stream = _stream(args.stream, data_dir, args.tfds_data_dir)
    data = StreamData(stream, stop_year=10_000, data_dir=data_dir, image_size=args.image_size)
    missing = []
    for key, (year, entry) in _first_years(stream, args.stop_year).items():
        source = entry.source
        if not args.force and not data.problems(key) and data.cache.get(key, source.fingerprint(args.image_size)) is not None:
            continue
        try:
            if key in DATASETS and isinstance(source, (PreparedSource, TfdsSource)):
                still_needed = _make_available(DATASETS[key], source, args, data_dir, roots, explicit=False)
            else:
                availability = source.availability()
                still_needed = "" if availability.available else availability.how_to_get
            if not still_needed and not args.no_cache:
                _cache(stream, key, data_dir, args.image_size, force=args.force)
                print(f"{key}: task cache ready", file=sys.stderr)
        except InputError as error:  # a missing or damaged archive: report it with the others
            still_needed = str(error)
        if still_needed:
            missing.append(f"  - {entry.task.name} ({key}, {source.describe()}): {still_needed}")
    if missing:
        print(f"\n{len(missing)} dataset(s) of {stream.name} are still missing:\n" + "\n".join(missing), file=sys.stderr)
        return 1
    print(f"every dataset of {stream.name} is ready", file=sys.stderr)
    return 0


def cmd_verify(args) -> int:
    if bool(args.names) == bool(args.stream):
        raise _usage("give either dataset NAME(s) or --stream NAME")
    data_dir = _data_dir(args)
    if args.stream:
        stream = _stream(args.stream, data_dir, args.tfds_data_dir)
        targets = [(key, entry) for key, (_, entry) in _first_years(stream, args.stop_year).items()]
        label = stream.name
    else:
        stream, targets = None, []
        for name in args.names:
            key, stream_of_one = _verify_target(name, data_dir, args)
            targets.append((key, stream_of_one.entries[0] if stream_of_one is not None else None))
        label = ", ".join(key for key, _ in targets)
    checked, notes, problems = [], [], []
    for key, entry in targets:
        _verify_task(key, entry, stream, data_dir, args, checked, notes, problems)
    if not checked and not problems:
        what = args.stream and f"stream {args.stream}" or label
        raise _usage(f"nothing to verify for {what}: neither prepared nor cached at image size "
                     f"{args.image_size} in {data_dir}; prepare it with `nevis-bench data prepare "
                     + (f"--stream {args.stream}`" if args.stream else f"{label}`"))
    for item in checked:
        print(f"checked {item}")
    for note in notes:
        print(f"note: {note}")
    if problems:
        print(f"{len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
        if any(p.startswith("cache") for p in problems):
            rebuild = f"--stream {args.stream}" if args.stream else " ".join(k for k, _ in targets)
            print(f"rebuild damaged cache entries with `nevis-bench data prepare {rebuild} --data-dir {data_dir} "
                  f"--image-size {args.image_size}` (or delete their folders)")
        return 1
    print(f"{label}: OK, every hash matches")
    return 0


def _verify_target(name: str, data_dir: str, args):
    """(task key, single-entry stream of its catalog source or None) for a NAME of ``data verify``."""
    from nevis_bench.data.cache import TaskCache

    try:
        facts = resolve_dataset(name)
    except Exception:
        if TaskCache(data_dir).entries(name):  # a task key that is no catalog dataset (class-incremental groups)
            return name, None
        raise
    return facts.key, _single_entry_stream(facts, data_dir, args.tfds_data_dir)


def _verify_task(key, entry, stream, data_dir, args, checked, notes, problems) -> None:
    """Check one task: its prepared dataset, its current cache entry against the task and source, and every
    other cache entry of the key at this image size against its own manifest."""
    from nevis_bench.data.cache import CacheError, TaskCache, read_manifest
    from nevis_bench.data.prepared import PreparedSource

    cache = TaskCache(data_dir)
    current = None
    if entry is not None:
        source = entry.source
        if isinstance(source, PreparedSource):
            dataset = source.dataset
            if dataset.ready:
                problems += [f"prepared: {key}: {p}" for p in dataset.verify()]
                checked.append(f"prepared dataset {dataset.path} ({sum(dataset.metadata['counts'].values())} images)")
            elif dataset.path.exists():
                problems.append(f"prepared: {key}: {dataset.path} is incomplete (status is not 'ready')")
        available = source.availability().available
        fingerprint = source.fingerprint(args.image_size)
        current = cache.task_dir(key, fingerprint)
        try:
            cached = cache.get(key, fingerprint)
        except CacheError as error:
            problems.append(f"cache: {key}: {error}")
            cached = None
        if cached is not None:
            task = entry.task
            found = cached.check(num_classes=task.num_classes, channels=task.channels, image_size=args.image_size,
                                 kind=task.kind)
            problems += [f"cache: {key}: {cached.path.name}/{p}" for p in found]
            if cached.manifest.get("fingerprint") != fingerprint:
                problems.append(f"cache: {key}: {cached.path} was built from {cached.manifest.get('fingerprint')!r}, "
                                f"not from the source as it is now ({fingerprint!r})")
            problems += [f"cache: {key}: {p}" for p in _against_prepared(cached, source)]
            problems += [f"cache: {key}: {p}" for p in _against_tfds(cached, source)]
            checked.append(f"task cache {cached.path} ({source.describe()}"
                           + (", built from the source as it is now" if available else ", source not on disk") + ")")
        elif not (current / "COMPLETE").exists():
            notes.append(f"{key}: not cached for its source as it is now ({source.describe()}); "
                         "the next run or `nevis-bench data prepare` builds it")
    for folder in cache.entries(key):
        if folder == current:
            continue
        try:
            manifest = read_manifest(folder, key)
        except CacheError as error:
            problems.append(f"cache: {key}: {error}")
            continue
        if manifest.get("image_size") not in (None, args.image_size):
            continue
        from nevis_bench.data.cache import CachedTask

        found = CachedTask(folder, manifest).check()
        problems += [f"cache: {key}: {folder.name}/{p}" for p in found]
        what = f"task cache {folder} ({manifest.get('source', '?')})"
        if entry is not None:
            what += ": not the entry of the current source (an older build, or another stream's source)"
        checked.append(what)


def _against_tfds(cached, source) -> list[str]:
    """For a TFDS source on disk: the cache entry's split sizes against those its build's split rule gives."""
    from nevis_bench.data.tfds_source import TfdsSource, expected_counts

    if not isinstance(source, TfdsSource):
        return []
    expected = expected_counts(source.spec, source.folder)
    if expected is None:
        return []
    found = {split: entry.get("count") for split, entry in cached.manifest["splits"].items()}
    return [f"{split}: {found.get(split)} examples cached, the TFDS build in {source.folder} gives {n}"
            for split, n in expected.items() if found.get(split) != n]


def _against_prepared(cached, source) -> list[str]:
    """For a prepared source: the cache entry's example ids and counts against the prepared ``splits.json``."""
    import numpy as np

    from nevis_bench.data.prepared import PreparedSource

    if not isinstance(source, PreparedSource) or not source.dataset.ready:
        return []
    problems = []
    for split, entry in source.dataset.manifest["splits"].items():
        ids_file = cached.path / f"{split}.ids.npy"
        if not ids_file.exists():
            continue
        ids = [str(i) for i in np.load(ids_file)]
        if ids != list(entry["ids"]):
            problems.append(f"{split}: example ids differ from the prepared dataset's splits.json")
    return problems
