"""User-defined streams: a TOML file of tasks (``nevis-bench run --stream path/to/stream.toml``).

A stream file names the stream and lists its tasks in order; each task names exactly one source::

    name = "my-stream"                 # the stream's name in records (default: the file's stem)
    description = "MNIST, then my photos"

    [[tasks]]
    year = 2004
    catalogue = "mnist"                # a NEVIS'22 dataset, real data (prepared or TFDS), reference splits

    [[tasks]]
    year = 2005
    synthetic = "coil100"              # the synthetic stand-in of a catalogue dataset (offline)

    [[tasks]]
    year = 2006
    tfds = "beans"                     # a TFDS dataset; the 22 of NEVIS'22 need nothing more, others
    rule = "train_val_test"            # say their split rule (train_test | train_val_test), classes,
    num_classes = 3                    # channels and TFDS version
    channels = 3
    version = "0.1.0"

    [[tasks]]
    year = 2007
    folder = "photos"                  # one subfolder per class; relative to this file
    key = "my_photos"                  # task key (default: the folder's name)
    name = "My photos"
    split = { train = 0.7, dev = 0.1, dev_test = 0.1, test = 0.1 }   # or split = "folders"
    seed = 0                           # of the per-class shuffle before cutting

Task keys common to every source: ``year`` (required; tasks run in file order, and those at or after
the stop year, 2020 in development, are held out), ``key``, ``name``, ``domain``. A repeated key
repeats the task (same data, same head), as the NEVIS'22 streams repeat datasets.
Stream options (``-o stream.KEY=VALUE``): ``data_dir``, ``tfds_data_dir`` (default: the run's
``--data-dir`` and ``--tfds-data-dir``) and ``download`` (let TFDS download missing data).
Every unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import tomllib
from typing import Any

from nevis_bench.data import catalog
from nevis_bench.data.image_folder import DEFAULT_FRACTIONS, FOLDERS, ImageFolderSource
from nevis_bench.data.sources import source_for, task_info
from nevis_bench.errors import InputError
from nevis_bench.protocol import SINGLE_LABEL, TaskInfo
from nevis_bench.stream import Stream, StreamEntry

SOURCE_KEYS = ("catalogue", "synthetic", "tfds", "folder")
COMMON_KEYS = ("year", "key", "name", "domain")
EXTRA_KEYS = {
    "catalogue": (), "synthetic": (),
    "tfds": ("rule", "num_classes", "channels", "version", "label"),
    "folder": ("channels", "split", "seed"),
}
FILE_KEYS = ("name", "description", "tasks")
OPTIONS = ("data_dir", "tfds_data_dir", "download")


class StreamFileError(ValueError, InputError):
    """A stream file that cannot be read; the message names the file, the task and what to change."""


def _canonical(name: str) -> str:
    return re.sub(r"[ \-/~.:]", "_", name).lower()


def _catalogue_key(value: Any, where: str) -> str:
    try:
        return catalog.catalogue_key(str(value), "catalogue")
    except ValueError as error:
        raise StreamFileError(f"{where}: {error}") from None


def load_stream_file(path: str, options: dict[str, Any] | None = None, data_dir: str | None = None,
                     tfds_data_dir: str | None = None) -> Stream:
    """The stream a TOML file describes (see the module docstring)."""
    file = pathlib.Path(path).expanduser()
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise StreamFileError(f"unknown option(s) {', '.join(unknown)} of stream file {path}; valid options: {', '.join(OPTIONS)}")
    data_dir = options.get("data_dir", data_dir)
    tfds_data_dir = options.get("tfds_data_dir", tfds_data_dir)
    download = options.get("download", False)
    if not isinstance(download, bool):
        raise StreamFileError(f"stream file {path}: option download must be true or false, got {download!r}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StreamFileError(f"stream file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise StreamFileError(f"stream file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise StreamFileError(f"stream file {path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(FILE_KEYS)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise StreamFileError(f"stream file {path} lists no tasks: add [[tasks]] tables (README, 'Your own streams')")
    entries: list[StreamEntry] = []
    sources: dict[str, tuple[str, Any]] = {}  # task key -> (what its source is, the source)
    for number, table in enumerate(tasks, start=1):
        where = f"stream file {path}, task {number}"
        entry = _entry(table, where, file.parent, data_dir, tfds_data_dir, download)
        described = entry.source.describe()
        known = sources.get(entry.task.key)
        if known is not None and known[0] != described:
            raise StreamFileError(f"{where}: task key {entry.task.key!r} is used by another source ({known[0]}); "
                                  "give this task its own key")
        if known is not None:
            entry = StreamEntry(entry.year, entry.task, known[1])  # a repeat shares its source
        sources.setdefault(entry.task.key, (described, entry.source))
        entries.append(entry)
    name = str(data.get("name") or file.stem)
    description = str(data.get("description") or f"user-defined stream from {file}")
    return Stream(name, entries, f"{description} ({len(entries)} tasks; stream file {file})")


def _entry(table: Any, where: str, base: pathlib.Path, data_dir, tfds_data_dir, download: bool) -> StreamEntry:
    if not isinstance(table, dict):
        raise StreamFileError(f"{where}: a task is a table ([[tasks]]), got {table!r}")
    given = [key for key in SOURCE_KEYS if key in table]
    if len(given) != 1:
        raise StreamFileError(f"{where}: name exactly one source of {', '.join(SOURCE_KEYS)}, got {given or 'none'}")
    kind = given[0]
    valid = set(COMMON_KEYS) | {kind} | set(EXTRA_KEYS[kind])
    unknown = sorted(set(table) - valid)
    if unknown:
        raise StreamFileError(f"{where}: unknown key(s) {', '.join(unknown)} for a {kind} task; valid keys: {', '.join(sorted(valid))}")
    year = table.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise StreamFileError(f"{where}: year must be an integer (e.g. year = 2004), got {year!r}")
    value = table[kind]
    if kind == "catalogue":
        facts = catalog.DATASETS[_catalogue_key(value, where)]
        task, source = task_info(facts, year), source_for(facts, data_dir, tfds_data_dir, download)
    elif kind == "synthetic":
        from nevis_bench.registry import STREAMS

        synthetic = STREAMS.get("synthetic-dataset").factory(dataset=_catalogue_key(value, where)).entries[0]
        task, source = dataclasses.replace(synthetic.task, year=year), synthetic.source
    elif kind == "tfds":
        task, source = _tfds_task(table, str(value), year, where, data_dir, tfds_data_dir, download)
    else:
        task, source = _folder_task(table, str(value), year, where, base)
    overrides = {k: str(table[k]) for k in ("key", "name", "domain") if k in table}
    if overrides:
        task = dataclasses.replace(task, **overrides)
    return StreamEntry(year, task, source)


def _tfds_task(table: dict, name: str, year: int, where: str, data_dir, tfds_data_dir, download: bool):
    from nevis_bench.data.tfds_source import TFDS_SPECS, TRAIN_TEST, TRAIN_VAL_TEST, TfdsSource, TfdsSpec, register_spec

    extra = {k: table[k] for k in EXTRA_KEYS["tfds"] if k in table}
    if name not in TFDS_SPECS or extra:
        needed = [k for k in ("rule", "num_classes", "channels", "version") if k not in table]
        if needed:
            raise StreamFileError(
                f"{where}: TFDS dataset {name!r} is not one of the NEVIS'22 TFDS datasets "
                f"({', '.join(sorted(TFDS_SPECS))}); give its {', '.join(needed)}"
            )
        if table["rule"] not in (TRAIN_TEST, TRAIN_VAL_TEST):
            raise StreamFileError(f"{where}: rule must be {TRAIN_TEST} (TFDS train cut 70/15/15, test kept) or "
                                  f"{TRAIN_VAL_TEST} (train cut 80/20, validation and test kept), got {table['rule']!r}")
        try:
            register_spec(TfdsSpec(name, table["rule"], str(table["version"]), int(table["num_classes"]),
                                   int(table["channels"]), label=str(table.get("label", "label"))))
        except ValueError as error:
            raise StreamFileError(f"{where}: {error}") from None
    spec = TFDS_SPECS[name]
    task = TaskInfo(key=_canonical(name), name=name, year=year, kind=SINGLE_LABEL if not spec.multi_label else "multi_label",
                    num_classes=spec.num_classes, domain="object", channels=spec.channels)
    return task, TfdsSource(name, data_dir=data_dir, tfds_dir=tfds_data_dir, download=download)


def _folder_task(table: dict, folder: str, year: int, where: str, base: pathlib.Path):
    path = pathlib.Path(folder).expanduser()
    path = path if path.is_absolute() else base / path
    split = table.get("split", dict(DEFAULT_FRACTIONS))
    if isinstance(split, dict):
        order = [name for name, _ in DEFAULT_FRACTIONS]
        if sorted(split) != sorted(order) or not all(isinstance(v, (int, float)) for v in split.values()):
            raise StreamFileError(f"{where}: split needs numbers for {', '.join(order)} (e.g. split = {{ train = 0.7, "
                                  f"dev = 0.1, dev_test = 0.1, test = 0.1 }}) or split = \"{FOLDERS}\", got {split!r}")
        rule: Any = tuple((name, float(split[name])) for name in order)
    elif split == FOLDERS:
        rule = FOLDERS
    else:
        raise StreamFileError(f"{where}: split must be a table of fractions or \"{FOLDERS}\", got {split!r}")
    source = ImageFolderSource(str(path), channels=int(table.get("channels", 3)), split=rule, seed=int(table.get("seed", 0)))
    key = _canonical(path.resolve().name)
    task = TaskInfo(key=key, name=path.resolve().name, year=year, kind=SINGLE_LABEL, num_classes=source.num_classes(),
                    domain="object", channels=source.channels)
    return task, source
