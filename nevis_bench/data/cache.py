"""The framework-neutral task cache (``docs/design.md``, "Data flow").

Every source (synthetic, TFDS, prepared) is materialised once into

    <data_dir>/cache/<task_key>/<fingerprint>/
        manifest.json                 counts, shapes, content hashes, source description
        <split>.images.npy            uint8 (N, S, S, C), memory-mapped when read
        <split>.labels.npy            int64 (N,) or float32 multi-hot (N, K)
        <split>.ids.npy               example ids (fixed-width unicode)
        <split>.frames.npy            framing "full" only: uint8 (N, S, S, C) whole images, stretched
        <split>.aspects.npy           framing "full" only: float32 (N,) width / height of each original
        COMPLETE                      written last; a folder without it is ignored

``train_and_dev`` is stored as the concatenation of ``train`` and ``dev`` (no copy on disk).
A task is written into a temporary folder and renamed into place, so a crash never leaves a half
task that looks complete, and two processes writing the same task do not collide.

Integrity: :meth:`CachedTask.check` compares an entry with its manifest (shapes, dtypes, counts, the
SHA-256 of every array) and with what the task promises (image size, channels, class count and label
range). A run checks every task it uses once per process (:func:`check_once`, remembered by the files'
``stat`` signature, so a file changed later is checked again); a mismatch is a :class:`CacheError`,
never a silent use. ``nevis-bench data verify`` runs the same checks on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from nevis_bench.errors import InputError

STORED_SPLITS = ("train", "dev", "dev_test", "test")
CONCAT_SPLITS = {"train_and_dev": ("train", "dev")}
MANIFEST_VERSION = 1


class CacheError(RuntimeError, InputError):
    """A cache entry that is missing, corrupt or inconsistent; the message says what to do."""


# Cache entries checked in this process: folder -> stat signature of its files when checked.
_CHECKED: dict[str, tuple] = {}


def _signature(folder: pathlib.Path) -> tuple:
    """(name, inode, size, mtime) of every file of an entry: changes whenever a file is replaced or written."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        stat = entry.stat()
        out.append((entry.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def forget_checks() -> None:
    """Forget which entries this process has checked (the next use checks them again)."""
    _CHECKED.clear()


def _array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(str(array.dtype).encode() + str(array.shape).encode())
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    step = 1 << 24
    for start in range(0, flat.size, step):
        digest.update(flat[start : start + step])
    return digest.hexdigest()


@dataclass
class SplitData:
    """Images and labels of one split; ``images`` may be a read-only memory map."""

    labelled = True  # a predict event gets an unlabelled view instead (nevis_bench.run.context)

    images: np.ndarray  # uint8 (N, S, S, C)
    labels: np.ndarray  # int64 (N,) or float32 (N, K)
    ids: np.ndarray | None = None
    frames: np.ndarray | None = None  # framing "full": whole images (N, S, S, C), stretched to a square
    aspects: np.ndarray | None = None  # framing "full": width / height of each original image

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def has_frames(self) -> bool:
        return self.frames is not None and self.aspects is not None

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the examples at ``indices`` (sorted reads are fastest on a memory map)."""
        return np.asarray(self.images[indices]), np.asarray(self.labels[indices])

    def take_frames(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, aspects, labels) of the examples at ``indices``; only where :attr:`has_frames`."""
        return np.asarray(self.frames[indices]), np.asarray(self.aspects[indices]), np.asarray(self.labels[indices])


class ConcatSplitData(SplitData):
    """Two splits read as one, without copying (``train_and_dev``)."""

    def __init__(self, first: SplitData, second: SplitData):
        self.first, self.second = first, second
        self._n_first = len(first)
        self.ids = None
        self.frames = self.aspects = None

    @property
    def has_frames(self) -> bool:
        return self.first.has_frames and self.second.has_frames

    def take_frames(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indices = np.asarray(indices)
        in_first = indices < self._n_first
        parts = [self.first.take_frames(indices[in_first]), self.second.take_frames(indices[~in_first] - self._n_first)]
        order = np.argsort(np.concatenate([np.flatnonzero(in_first), np.flatnonzero(~in_first)]), kind="stable")
        return tuple(np.concatenate([a, b])[order] for a, b in zip(*parts))  # type: ignore[return-value]

    def __len__(self) -> int:
        return self._n_first + len(self.second)

    @property
    def images(self) -> np.ndarray:  # materialises; prefer take()
        return np.concatenate([np.asarray(self.first.images), np.asarray(self.second.images)])

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.first.labels), np.asarray(self.second.labels)])

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices)
        in_first = indices < self._n_first
        images = np.empty((len(indices),) + self.first.images.shape[1:], np.uint8)
        labels = np.empty((len(indices),) + self.first.labels.shape[1:], self.first.labels.dtype)
        if in_first.any():
            images[in_first], labels[in_first] = self.first.take(indices[in_first])
        if (~in_first).any():
            images[~in_first], labels[~in_first] = self.second.take(indices[~in_first] - self._n_first)
        return images, labels


@dataclass
class CachedTask:
    """A complete task in the cache."""

    path: pathlib.Path
    manifest: dict

    def split(self, name: str) -> SplitData:
        if name in CONCAT_SPLITS:
            first, second = CONCAT_SPLITS[name]
            return ConcatSplitData(self.split(first), self.split(second))
        if name not in self.manifest["splits"]:
            raise CacheError(f"task {self.manifest['task_key']!r} has no split {name!r} in {self.path}")
        try:
            images = np.load(self.path / f"{name}.images.npy", mmap_mode="r")
            labels = np.load(self.path / f"{name}.labels.npy")
            ids_file = self.path / f"{name}.ids.npy"
            ids = np.load(ids_file) if ids_file.exists() else None
            frames_file, aspects_file = self.path / f"{name}.frames.npy", self.path / f"{name}.aspects.npy"
            frames = np.load(frames_file, mmap_mode="r") if frames_file.exists() else None
            aspects = np.load(aspects_file) if aspects_file.exists() else None
        except (OSError, ValueError) as error:
            raise CacheError(
                f"cannot read split {name!r} of {self.path}: {error}. Delete that folder and rerun; "
                "the task is rebuilt from its source"
            ) from error
        expected = self.manifest["splits"][name]["count"]
        if images.shape[0] != expected or labels.shape[0] != expected:
            raise CacheError(
                f"split {name!r} of {self.path} holds {images.shape[0]} images and {labels.shape[0]} "
                f"labels but its manifest says {expected}. Delete that folder and rerun"
            )
        return SplitData(images, labels, ids, frames, aspects)

    def verify(self) -> list[str]:
        """Recompute content hashes; returns the list of mismatches (empty when intact)."""
        return self.check()

    def check(self, num_classes: int | None = None, channels: int | None = None, image_size: int | None = None,
              kind: str | None = None, hashes: bool = True) -> list[str]:
        """Everything wrong with this entry (empty when intact).

        Against the manifest: every stored split present, array shapes, dtypes and counts, and the
        SHA-256 of images, labels (and ids, in manifests that record it). Against the task (the
        arguments, else the manifest's own ``num_classes``, ``channels``, ``image_size``, ``kind``):
        the image shape and the label range (single-label: integers in ``0..num_classes-1``;
        multi-label: 0/1 vectors of ``num_classes``). ``hashes=False`` skips the content hashes.
        """
        manifest = self.manifest
        num_classes = num_classes if num_classes is not None else manifest.get("num_classes")
        channels = channels if channels is not None else manifest.get("channels")
        image_size = image_size if image_size is not None else manifest.get("image_size")
        kind = kind if kind is not None else manifest.get("kind")
        problems = []
        splits = manifest.get("splits")
        if not isinstance(splits, dict):
            return ["manifest.json has no 'splits'"]
        for name in STORED_SPLITS:
            if name not in splits:
                problems.append(f"split {name!r} is missing from manifest.json")
        for name, entry in splits.items():
            where = f"{name}"
            try:
                images = np.load(self.path / f"{name}.images.npy", mmap_mode="r")
                labels = np.load(self.path / f"{name}.labels.npy", mmap_mode="r")
                ids_file = self.path / f"{name}.ids.npy"
                ids = np.load(ids_file, mmap_mode="r") if ids_file.exists() else None
                extras = {what: np.load(self.path / f"{name}.{what}.npy", mmap_mode="r")
                          for what in ("frames", "aspects") if f"{what}_sha256" in entry}
            except (OSError, ValueError) as error:
                problems.append(f"{where}: cannot be read ({error})")
                continue
            count = entry.get("count")
            if images.dtype != np.uint8 or images.ndim != 4:
                problems.append(f"{where}.images: {images.dtype} {images.shape}, expected uint8 (N, S, S, C)")
                continue
            if images.shape[0] != count or labels.shape[0] != count or (ids is not None and len(ids) != count):
                problems.append(f"{where}: {images.shape[0]} images, {labels.shape[0]} labels"
                                + (f", {len(ids)} ids" if ids is not None else "") + f"; manifest says {count}")
            if list(images.shape[1:]) != list(entry.get("image_shape", [])):
                problems.append(f"{where}.images: shape {images.shape[1:]}, manifest says {tuple(entry.get('image_shape', []))}")
            expected_shape = (image_size, image_size, channels)
            if image_size is not None and channels is not None and tuple(images.shape[1:]) != expected_shape:
                problems.append(f"{where}.images: shape {images.shape[1:]}, the task needs {expected_shape}")
            problems += _label_problems(where, labels, num_classes, kind)
            if not hashes:
                continue
            for what, array in (("images", images), ("labels", labels), ("ids", ids), *extras.items()):
                expected = entry.get(f"{what}_sha256")
                if expected is None or array is None:
                    if what != "ids":
                        problems.append(f"{where}.{what}: manifest.json records no content hash")
                    continue
                if _array_sha256(np.asarray(array)) != expected:
                    problems.append(f"{where}.{what}: content hash differs from manifest.json")
        return problems


def _label_problems(where: str, labels: np.ndarray, num_classes: int | None, kind: str | None) -> list[str]:
    multi = kind == "multi_label" if kind is not None else labels.ndim == 2
    labels = np.asarray(labels)
    if multi:
        if labels.dtype != np.float32 or labels.ndim != 2:
            return [f"{where}.labels: {labels.dtype} {labels.shape}, expected float32 multi-hot (N, K)"]
        if num_classes is not None and labels.shape[1] != num_classes:
            return [f"{where}.labels: {labels.shape[1]} classes per target, the task has {num_classes}"]
        if labels.size and not np.isin(labels, (0.0, 1.0)).all():
            return [f"{where}.labels: multi-hot targets hold values other than 0 and 1"]
        return []
    if labels.dtype != np.int64 or labels.ndim != 1:
        return [f"{where}.labels: {labels.dtype} {labels.shape}, expected int64 (N,)"]
    if labels.size and num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
        return [f"{where}.labels: values {int(labels.min())}..{int(labels.max())} outside the task's classes "
                f"0..{num_classes - 1}"]
    return []


def read_manifest(folder: pathlib.Path, task_key: str) -> dict:
    """The manifest of a complete entry; a :class:`CacheError` when it is missing or unreadable."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise CacheError(f"task {task_key!r}: cache entry {folder} is marked COMPLETE but has no manifest.json") from None
    except (OSError, ValueError) as error:
        raise CacheError(f"task {task_key!r}: cannot read {folder / 'manifest.json'}: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        raise CacheError(f"task {task_key!r}: {folder / 'manifest.json'} is not a task-cache manifest")
    return manifest


def check_once(task: CachedTask, **expected) -> list[str]:
    """:meth:`CachedTask.check`; the content hashes only when this process has not yet found the same files
    (same ``stat`` signature) intact, or written them itself."""
    key = str(task.path)
    signature = _signature(task.path)
    hashed = _CHECKED.get(key) == signature
    problems = task.check(**expected, hashes=not hashed)
    if not problems:
        _CHECKED[key] = signature
    return problems


class TaskCache:
    """Reads and writes tasks under ``<data_dir>/cache``."""

    def __init__(self, data_dir: str | os.PathLike):
        self.root = pathlib.Path(data_dir).expanduser() / "cache"

    def task_dir(self, task_key: str, fingerprint: str) -> pathlib.Path:
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        return self.root / task_key / digest

    def get(self, task_key: str, fingerprint: str) -> CachedTask | None:
        """The complete entry of ``task_key`` under ``fingerprint``; None when there is none.

        A folder marked ``COMPLETE`` whose manifest is missing or unreadable is a :class:`CacheError`.
        """
        folder = self.task_dir(task_key, fingerprint)
        if not (folder / "COMPLETE").exists():
            return None
        return CachedTask(folder, read_manifest(folder, task_key))

    def entries(self, task_key: str) -> list[pathlib.Path]:
        """Every complete entry of ``task_key`` (one per source fingerprint ever cached)."""
        folder = self.root / task_key
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if (p / "COMPLETE").exists())

    def remove(self, task_key: str, fingerprint: str) -> None:
        """Delete the entry of ``task_key`` under ``fingerprint`` (renamed aside first, then removed)."""
        folder = self.task_dir(task_key, fingerprint)
        if not folder.exists():
            return
        doomed = pathlib.Path(tempfile.mkdtemp(prefix=f".removing-{os.getpid()}-", dir=folder.parent))
        os.rename(folder, doomed / "entry")
        shutil.rmtree(doomed, ignore_errors=True)
        _CHECKED.pop(str(folder), None)

    def write(
        self,
        task_key: str,
        fingerprint: str,
        splits: dict[str, tuple[np.ndarray, ...]],
        metadata: dict,
    ) -> CachedTask:
        """Store ``splits`` (name -> (images, labels[, ids[, frames, aspects]])) for ``task_key`` atomically."""
        missing = [name for name in STORED_SPLITS if name not in splits]
        if missing:
            raise CacheError(f"task {task_key!r}: source produced no {missing} split(s)")
        target = self.task_dir(task_key, fingerprint)
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target.parent)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".writing-{os.getpid()}-", dir=target.parent))
        try:
            entries = {}
            for name, arrays in splits.items():
                images, labels = arrays[0], arrays[1]
                ids = arrays[2] if len(arrays) > 2 else np.array([f"{name}/{i}" for i in range(len(labels))])
                entries[name] = self._write_split(staging, name, images, labels, ids)
                if len(arrays) > 3:  # framing "full": whole frames and their aspect ratios
                    entries[name].update(self._write_frames(staging, name, arrays[3], arrays[4], len(labels)))
            shapes = {tuple(e["image_shape"]) for e in entries.values()}
            if len(shapes) != 1:
                raise CacheError(f"task {task_key!r}: splits have different image shapes {sorted(shapes)}")
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "task_key": task_key,
                "fingerprint": fingerprint,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "splits": entries,
                "concat_splits": {k: list(v) for k, v in CONCAT_SPLITS.items()},
                **metadata,
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
            (staging / "COMPLETE").write_text("")
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / "COMPLETE").exists():  # a stale, incomplete folder: replace it
                    shutil.rmtree(target, ignore_errors=True)
                    os.rename(staging, target)
                # else another process finished the same task first; keep theirs
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        cached = self.get(task_key, fingerprint)
        assert cached is not None
        if cached.manifest.get("fingerprint") == fingerprint and all(
            cached.manifest["splits"][n].get("images_sha256") == e["images_sha256"] for n, e in entries.items()
        ):  # hashed while writing: no need to hash again in this process
            _CHECKED[str(cached.path)] = _signature(cached.path)
        return cached

    @staticmethod
    def _write_frames(folder: pathlib.Path, name: str, frames, aspects, count: int) -> dict:
        frames = np.asarray(frames)
        aspects = np.asarray(aspects, dtype=np.float32)
        if frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != count or aspects.shape != (count,):
            raise CacheError(f"split {name!r}: frames must be uint8 (N, S, S, C) with N aspect ratios for {count} "
                             f"examples, got {frames.dtype} {frames.shape} and {aspects.shape}")
        if not np.all(np.isfinite(aspects)) or np.any(aspects <= 0):
            raise CacheError(f"split {name!r}: aspect ratios must be finite and positive")
        np.save(folder / f"{name}.frames.npy", frames)
        np.save(folder / f"{name}.aspects.npy", aspects)
        return {"frames_sha256": _array_sha256(frames), "aspects_sha256": _array_sha256(aspects)}

    @staticmethod
    def _write_split(folder: pathlib.Path, name: str, images, labels, ids) -> dict:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise CacheError(f"split {name!r}: images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        if labels.shape[0] != images.shape[0] or len(ids) != images.shape[0]:
            raise CacheError(f"split {name!r}: {images.shape[0]} images but {labels.shape[0]} labels, {len(ids)} ids")
        labels = labels.astype(np.float32 if labels.ndim == 2 else np.int64)
        np.save(folder / f"{name}.images.npy", images)
        np.save(folder / f"{name}.labels.npy", labels)
        ids = np.asarray(ids).astype(str)
        np.save(folder / f"{name}.ids.npy", ids)
        return {
            "count": int(images.shape[0]),
            "image_shape": list(images.shape[1:]),
            "label_shape": list(labels.shape[1:]),
            "images_sha256": _array_sha256(images),
            "labels_sha256": _array_sha256(labels),
            "ids_sha256": _array_sha256(ids),
        }


def _remove_abandoned(folder: pathlib.Path) -> None:
    """Remove the staging folders (``.writing-<pid>-*``, ``.removing-<pid>-*``) of writers that no longer
    run (killed mid-write); a live process's staging folder is left alone."""
    for staging in folder.iterdir():
        kind, _, rest = staging.name.partition("-")
        pid = rest.partition("-")[0]
        if kind not in (".writing", ".removing") or not pid.isdigit() or not staging.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:
            pass  # a live process of another user
