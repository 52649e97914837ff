"""Prepared datasets: the on-disk form of datasets converted from their original archives.

A handler (``nevis_bench.data.handlers``) turns the original files of a dataset into this format with
``nevis-bench data prepare NAME --from DIR``; :class:`PreparedSource` reads it into the task cache.

Layout (format version 1)::

    <data_dir>/prepared/<name>/          <name> is the reference's handler name, e.g. pascal_voc2005
        status                           "ready" once complete; written last (absent or "not_ready": ignore)
        metadata.json                    dataset card (below)
        splits.json                      manifest: ids, labels and content hashes of every split
        <split>-<NNNNN>.npz              shards, split in train | dev | dev_test | test

A shard is an uncompressed ``.npz`` (``np.load`` without pickle) with four arrays:

* ``png``: uint8, the PNG files of the shard's images concatenated;
* ``offsets``: int64 ``(n + 1,)``, image ``i`` is ``png[offsets[i]:offsets[i + 1]]``;
* ``labels``: int64 ``(n,)``, or float32 multi-hot ``(n, num_classes)`` for multi-label datasets;
* ``ids``: unicode ``(n,)``, stable example ids (normally ``<archive>:<member path>``).

Images are stored losslessly at their source resolution, in mode ``L`` (grey datasets) or ``RGB``.
``train_and_dev`` is not stored: it is ``train`` followed by ``dev``.

``splits.json``: ``{"format_version", "dataset", "splits": {split: {"count", "sha256", "shards":
[{"file", "count", "sha256"}], "ids", "labels", "pixel_sha256"}}}`` where ``labels`` holds class ids
(multi-label: lists of positive classes), ``pixel_sha256`` the hash of each decoded image (mode, size
and pixels; independent of the PNG encoder), ``shards[].sha256`` the hash of the shard file, and the
split's ``sha256`` the hash of its ``id<TAB>label<TAB>pixel_sha256`` lines. Two preparations of the same
archive give the same ``splits.json``; ``nevis-bench data verify NAME`` recomputes every hash.

``metadata.json``: ``format_version, name, dataset_key, display_name, year (first year in the FULL
stream), kind, domain, channels,
num_classes, class_names, counts, split_rule, handler_version, source_files (name, md5, url), website,
licence, citation, notes, skipped_corrupt, created, splits_sha256`` (the hash of ``splits.json``, part
of the task-cache fingerprint).

Writing goes to a staging folder next to the target, which is renamed into place after ``status``
says ready, so an interrupted preparation never looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from nevis_bench.data.images import (
    RESIZE_ID, decode_png, encode_png, frame_resize, pixel_sha256, square_resize, to_mode,
)
from nevis_bench.data.sources import Availability, DataMissingError, default_data_dir
from nevis_bench.errors import InputError

FORMAT_VERSION = 1
SPLITS = ("train", "dev", "dev_test", "test")
SHARD_MAX_EXAMPLES = 4096
SHARD_MAX_BYTES = 128 << 20


class PreparedError(RuntimeError, InputError):
    """A prepared dataset that is missing, incomplete or inconsistent; the message says what to do."""


def prepared_dir(data_dir: str | os.PathLike | None, name: str) -> pathlib.Path:
    root = pathlib.Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return root / "prepared" / name


def sha256_file(path: str | os.PathLike) -> str:
    return _file_digest(path, hashlib.sha256())


def md5_file(path: str | os.PathLike) -> str:
    """MD5 of a file, the checksum the reference records for original archives."""
    return _file_digest(path, hashlib.md5())


def _file_digest(path, digest) -> str:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _label_text(label) -> str:
    return str(label) if isinstance(label, int) else ",".join(map(str, label))


def _split_digest(ids: Sequence[str], labels: Sequence, hashes: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for example_id, label, pixel_hash in zip(ids, labels, hashes):
        digest.update(f"{example_id}\t{_label_text(label)}\t{pixel_hash}\n".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------
# Reading


class PreparedDataset:
    """A prepared dataset folder (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.name = self.path.name

    @property
    def ready(self) -> bool:
        status = self.path / "status"
        return status.exists() and status.read_text().strip() == "ready"

    @property
    def metadata(self) -> dict:
        return json.loads((self.path / "metadata.json").read_text())

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "splits.json").read_text())

    def shard_arrays(self, shard_file: str) -> dict[str, np.ndarray]:
        try:
            with np.load(self.path / shard_file, allow_pickle=False) as data:
                return {key: data[key] for key in ("png", "offsets", "labels", "ids")}
        except (OSError, ValueError, KeyError) as error:
            raise PreparedError(
                f"cannot read shard {self.path / shard_file}: {error}. Run `nevis-bench data verify {self.name}`; "
                f"re-prepare with `nevis-bench data prepare {self.name} --from DIR --force`"
            ) from error

    def examples(self, split: str) -> Iterator[tuple[str, bytes, np.ndarray]]:
        """(id, PNG bytes, label) of ``split`` in stored order."""
        for shard in self.manifest["splits"][split]["shards"]:
            arrays = self.shard_arrays(shard["file"])
            offsets = arrays["offsets"]
            for i in range(len(arrays["ids"])):
                yield str(arrays["ids"][i]), arrays["png"][offsets[i] : offsets[i + 1]].tobytes(), arrays["labels"][i]

    def verify(self) -> list[str]:
        """Recompute shard and pixel hashes against ``splits.json``; the list of problems (empty: intact)."""
        if not self.ready:
            return [f"{self.path}: not ready (status is not 'ready')"]
        problems = []
        metadata, manifest = self.metadata, self.manifest
        if metadata.get("splits_sha256") != sha256_file(self.path / "splits.json"):
            problems.append("splits.json: hash differs from metadata.json's splits_sha256")
        for split, entry in manifest["splits"].items():
            ids, labels, hashes = [], [], []
            for shard in entry["shards"]:
                file = self.path / shard["file"]
                if not file.exists():
                    problems.append(f"{split}: shard {shard['file']} is missing")
                    continue
                if sha256_file(file) != shard["sha256"]:
                    problems.append(f"{split}: shard {shard['file']} content hash differs from splits.json")
                arrays = self.shard_arrays(shard["file"])
                offsets = arrays["offsets"]
                for i in range(len(arrays["ids"])):
                    ids.append(str(arrays["ids"][i]))
                    label = arrays["labels"][i]
                    labels.append(int(label) if label.ndim == 0 else [int(k) for k in np.flatnonzero(label)])
                    try:
                        hashes.append(pixel_sha256(decode_png(arrays["png"][offsets[i] : offsets[i + 1]].tobytes())))
                    except Exception as error:  # a damaged PNG
                        hashes.append("")
                        problems.append(f"{split}: image {ids[-1]} does not decode: {error}")
            if len(ids) != entry["count"]:
                problems.append(f"{split}: {len(ids)} examples on disk, {entry['count']} in splits.json")
            if ids != entry["ids"]:
                problems.append(f"{split}: example ids differ from splits.json")
            if labels != entry["labels"]:
                problems.append(f"{split}: labels differ from splits.json")
            bad = [i for i, (a, b) in enumerate(zip(hashes, entry["pixel_sha256"])) if a != b]
            if bad:
                problems.append(f"{split}: {len(bad)} image(s) differ from their pixel hash, first {entry['ids'][bad[0]]}")
            if _split_digest(entry["ids"], entry["labels"], entry["pixel_sha256"]) != entry["sha256"]:
                problems.append(f"{split}: split hash differs from splits.json")
        return problems


# ----------------------------------------------------------------------------------------------------
# Writing


class _SplitWriter:
    def __init__(self, folder: pathlib.Path, split: str, num_classes: int, multi_label: bool):
        self.folder, self.split = folder, split
        self.num_classes, self.multi_label = num_classes, multi_label
        self.ids: list[str] = []
        self.labels: list = []
        self.hashes: list[str] = []
        self.shards: list[dict] = []
        self._pngs: list[bytes] = []
        self._labels: list = []
        self._ids: list[str] = []
        self._bytes = 0

    def add(self, example_id: str, png: bytes, label, pixel_hash: str) -> None:
        self.ids.append(example_id)
        self.labels.append(label)
        self.hashes.append(pixel_hash)
        self._pngs.append(png)
        self._labels.append(label)
        self._ids.append(example_id)
        self._bytes += len(png)
        if len(self._pngs) >= SHARD_MAX_EXAMPLES or self._bytes >= SHARD_MAX_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._pngs:
            return
        offsets = np.zeros(len(self._pngs) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(p) for p in self._pngs])
        if self.multi_label:
            labels = np.zeros((len(self._labels), self.num_classes), dtype=np.float32)
            for row, positives in enumerate(self._labels):
                labels[row, list(positives)] = 1.0
        else:
            labels = np.asarray(self._labels, dtype=np.int64)
        file = f"{self.split}-{len(self.shards):05d}.npz"
        np.savez(
            self.folder / file,
            png=np.frombuffer(b"".join(self._pngs), dtype=np.uint8),
            offsets=offsets,
            labels=labels,
            ids=np.asarray(self._ids, dtype=str),
        )
        self.shards.append({"file": file, "count": len(self._pngs), "sha256": sha256_file(self.folder / file)})
        self._pngs, self._labels, self._ids, self._bytes = [], [], [], 0

    def manifest(self) -> dict:
        self.flush()
        return {
            "count": len(self.ids),
            "sha256": _split_digest(self.ids, self.labels, self.hashes),
            "shards": self.shards,
            "ids": self.ids,
            "labels": self.labels,
            "pixel_sha256": self.hashes,
        }


def write_prepared(
    handler,
    roots: Sequence[str | os.PathLike],
    data_dir: str | os.PathLike,
    *,
    skip_corrupt: bool = False,
    force: bool = False,
    progress: bool = True,
) -> PreparedDataset:
    """Run ``handler`` on the original files under ``roots`` and write ``<data_dir>/prepared/<name>``."""
    from nevis_bench.data.catalog import DATASETS, FULL
    from nevis_bench.data.handlers import SPLIT_NAMES, HandlerContext, HandlerError

    facts = DATASETS[handler.dataset_key]
    target = prepared_dir(data_dir, handler.name)
    if PreparedDataset(target).ready and not force:
        raise PreparedError(f"{target} is already prepared; pass --force to rebuild it")
    roots = [pathlib.Path(r).expanduser() for r in roots]
    search = [p for r in roots for p in (r, r / handler.name)]
    missing = handler.missing_files(search)
    if missing:
        listing = "\n".join(f"  - {a.filename}" + (f"  ({a.url})" if a.url else "") for a in missing)
        raise HandlerError(
            f"{handler.name}: {len(missing)} original file(s) not found in {', '.join(map(str, roots))} "
            f"(or a {handler.name}/ folder inside):\n{listing}"
            + (f"\n{handler.manual_step}" if handler.manual_step else "")
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{handler.name}.staging-", dir=target.parent))
    try:
        (staging / "status").write_text("not_ready\n")
        ctx = HandlerContext(search, skip_corrupt=skip_corrupt, name=handler.name)
        output = handler.convert(ctx)
        multi_label = facts.kind == "multi_label"
        writers = {s: _SplitWriter(staging, s, facts.num_classes, multi_label) for s in SPLIT_NAMES}
        seen: set[str] = set()
        count, started = 0, time.monotonic()
        for example in output.examples:
            if example.split not in writers:
                raise HandlerError(f"{handler.name}: example {example.id} has unknown split {example.split!r}")
            if example.id in seen:
                raise HandlerError(f"{handler.name}: example id {example.id!r} occurs twice")
            seen.add(example.id)
            label = _checked_label(handler.name, example, facts.num_classes, multi_label)
            image = to_mode(example.image, facts.channels)
            writers[example.split].add(example.id, encode_png(image), label, pixel_sha256(image))
            count += 1
            if progress and count % 1000 == 0:
                print(f"  {handler.name}: {count} images ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        splits = {s: w.manifest() for s, w in writers.items()}
        if not splits["train"]["count"]:
            raise HandlerError(f"{handler.name}: the conversion produced no training examples; are these the right files?")
        for split, entry in splits.items():
            if not entry["count"]:
                print(f"warning: {handler.name}: split {split!r} is empty", file=sys.stderr)
        manifest = {"format_version": FORMAT_VERSION, "dataset": handler.name, "splits": splits}
        (staging / "splits.json").write_text(json.dumps(manifest))
        metadata = {
            "format_version": FORMAT_VERSION,
            "name": handler.name,
            "dataset_key": facts.key,
            "display_name": facts.name,
            "year": next((year for year, key in FULL if key == facts.key), None),  # first year in the FULL stream
            "kind": facts.kind,
            "domain": facts.domain,
            "channels": facts.channels,
            "num_classes": len(output.class_names),
            "class_names": list(output.class_names),
            "counts": {s: e["count"] for s, e in splits.items()},
            "split_rule": handler.split_rule,
            "handler_version": handler.version,
            "source_files": _source_files(handler, ctx),
            "website": handler.website,
            "licence": handler.licence,
            "citation": handler.citation,
            "notes": dict(output.notes),
            "skipped_corrupt": list(ctx.skipped),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "splits_sha256": sha256_file(staging / "splits.json"),
        }
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=1))
        (staging / "status").write_text("ready\n")
        if ctx.skipped:
            print(f"warning: {handler.name}: skipped {len(ctx.skipped)} corrupt image(s), listed in metadata.json", file=sys.stderr)
        if target.exists():
            old = target.with_name(f".{handler.name}.old-{os.getpid()}")
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return PreparedDataset(target)


def _checked_label(name: str, example, num_classes: int, multi_label: bool):
    from nevis_bench.data.handlers import HandlerError

    if multi_label:
        positives = sorted({int(k) for k in example.label})
        if any(not 0 <= k < num_classes for k in positives):
            raise HandlerError(f"{name}: example {example.id} has labels {positives} outside 0..{num_classes - 1}")
        return positives
    label = int(example.label)
    if not 0 <= label < num_classes:
        raise HandlerError(f"{name}: example {example.id} has label {label} outside 0..{num_classes - 1}")
    return label


def _source_files(handler, ctx) -> list[dict]:
    files = []
    for artefact in handler.artefacts:
        for path in ctx.find(artefact.filename):
            files.append({"name": path.name, "md5": md5_file(path), "url": artefact.url, "expected_md5": artefact.md5})
    return files


# ----------------------------------------------------------------------------------------------------
# Downloads (used by --download; never by tests or default commands)


def download_artefacts(handler, destination: str | os.PathLike, *, timeout: float = 60.0) -> pathlib.Path:
    """Fetch a handler's original files into ``destination`` (skipping intact ones); checks MD5s."""
    from nevis_bench.data.handlers import HandlerError

    destination = pathlib.Path(destination).expanduser()
    destination.mkdir(parents=True, exist_ok=True)
    for artefact in handler.artefacts:
        if not artefact.url or any(c in artefact.filename for c in "*?["):
            raise HandlerError(
                f"{handler.name}: {artefact.filename} cannot be downloaded automatically. {handler.manual_step} "
                f"Then run: nevis-bench data prepare {handler.name} --from DIR"
            )
        path = destination / artefact.filename
        if path.exists() and (artefact.md5 is None or md5_file(path) == artefact.md5):
            continue
        part = path.with_name(path.name + ".part")
        try:
            with urllib.request.urlopen(artefact.url, timeout=timeout) as response, open(part, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except (urllib.error.URLError, OSError) as error:
            part.unlink(missing_ok=True)
            raise HandlerError(
                f"{handler.name}: cannot download {artefact.url}: {error}. Without network access, fetch the file "
                f"elsewhere, put it in a folder DIR and run: nevis-bench data prepare {handler.name} --from DIR"
            ) from error
        check_md5(part, artefact.md5, artefact.url)
        os.replace(part, path)
    return destination


def check_md5(path: pathlib.Path, expected: str | None, what: str) -> None:
    """Raise (and delete ``path``) when its MD5 is not ``expected``; nothing to check when None."""
    from nevis_bench.data.handlers import HandlerError

    if expected is None:
        return
    actual = md5_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise HandlerError(f"checksum mismatch for {what}: md5 {actual}, expected {expected}; the download was removed")


# ----------------------------------------------------------------------------------------------------
# The task source


@dataclass(frozen=True)
class PreparedSource:
    """Task source of a prepared dataset (a :class:`nevis_bench.stream.TaskSource`)."""

    name: str  # handler name / folder under <data_dir>/prepared
    dataset_key: str
    data_dir: str | None = None  # None: $NEVIS_BENCH_DATA_DIR or ~/.cache/nevis-bench, resolved at use

    @property
    def dataset(self) -> PreparedDataset:
        return PreparedDataset(prepared_dir(self.data_dir, self.name))

    def fingerprint(self, image_size: int) -> str:
        dataset = self.dataset
        version = dataset.metadata.get("splits_sha256", "?") if dataset.ready else "not-prepared"
        return f"prepared:v{FORMAT_VERSION}:{self.name}:{version}:{image_size}:{RESIZE_ID}"

    def availability(self) -> Availability:
        if self.dataset.ready:
            return Availability(True)
        return Availability(False, how_to_prepare(self.name, self.dataset.path))

    def describe(self) -> str:
        return f"prepared:{self.name}"

    def build(self, image_size: int) -> dict:
        return self._build(image_size, framed=False)

    def build_full(self, image_size: int) -> dict:
        """As :meth:`build`, plus each image's full frame and aspect ratio (framing ``full``)."""
        return self._build(image_size, framed=True)

    def _build(self, image_size: int, framed: bool) -> dict:
        from nevis_bench.data.catalog import DATASETS

        dataset = self.dataset
        if not dataset.ready:
            raise DataMissingError(f"{self.name}: {how_to_prepare(self.name, dataset.path)}")
        metadata = dataset.metadata
        channels = int(metadata["channels"])
        num_classes = DATASETS[self.dataset_key].num_classes
        out = {}
        for split in SPLITS:
            ids, pngs, labels = [], [], []
            for example_id, png, label in dataset.examples(split):
                ids.append(example_id)
                pngs.append(png)
                labels.append(label)
            with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
                images = list(pool.map(lambda png: square_resize(decode_png(png), image_size, channels), pngs, chunksize=64))
                frames = list(pool.map(lambda png: frame_resize(decode_png(png), image_size, channels), pngs,
                                       chunksize=64)) if framed else []
            if metadata["kind"] == "multi_label":
                label_array = np.asarray(labels, dtype=np.float32).reshape(len(labels), num_classes)
            else:
                label_array = np.asarray(labels, dtype=np.int64).reshape(len(labels))
                if len(label_array) and (label_array.min() < 0 or label_array.max() >= num_classes):
                    raise PreparedError(f"{dataset.path}: {split} has labels outside 0..{num_classes - 1}")
            image_array = np.stack(images) if images else np.zeros((0, image_size, image_size, channels), np.uint8)
            out[split] = (image_array, label_array, np.asarray(ids, dtype=str))
            if framed:
                empty = np.zeros((0, image_size, image_size, channels), np.uint8)
                out[split] += (np.stack([f for f, _ in frames]) if frames else empty,
                               np.asarray([a for _, a in frames], dtype=np.float32))
        return out


def how_to_prepare(name: str, path: pathlib.Path) -> str:
    from nevis_bench.data.handlers import get_handler

    handler = get_handler(name)
    if handler is None:
        return (
            f"no converter for {name!r} yet (the reference's handler nevis:{name}); write the prepared format "
            f"(nevis_bench/data/prepared.py) into {path}, or add a handler under nevis_bench/data/handlers/"
        )
    return handler.how_to_get()
