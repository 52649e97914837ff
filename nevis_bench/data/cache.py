"""The framework-neutral task cache (``docs/design.md``, "Data flow").

Every source (synthetic, TFDS, prepared) is materialised once into

    <data_dir>/cache/<task_key>/<fingerprint>/
        manifest.json                 counts, shapes, content hashes, source description
        <split>.images.npy            uint8 (N, S, S, C), memory-mapped when read
        <split>.labels.npy            int64 (N,) or float32 multi-hot (N, K)
        <split>.ids.npy               example ids (fixed-width unicode)
        COMPLETE                      written last; a folder without it is ignored

``train_and_dev`` is stored as the concatenation of ``train`` and ``dev`` (no copy on disk).
A task is written into a temporary folder and renamed into place, so a crash never leaves a half
task that looks complete, and two processes writing the same task do not collide.
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

STORED_SPLITS = ("train", "dev", "dev_test", "test")
CONCAT_SPLITS = {"train_and_dev": ("train", "dev")}
MANIFEST_VERSION = 1


class CacheError(RuntimeError):
    """A cache entry that is missing, corrupt or inconsistent; the message says what to do."""


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

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the examples at ``indices`` (sorted reads are fastest on a memory map)."""
        return np.asarray(self.images[indices]), np.asarray(self.labels[indices])


class ConcatSplitData(SplitData):
    """Two splits read as one, without copying (``train_and_dev``)."""

    def __init__(self, first: SplitData, second: SplitData):
        self.first, self.second = first, second
        self._n_first = len(first)
        self.ids = None

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
        return SplitData(images, labels, ids)

    def verify(self) -> list[str]:
        """Recompute content hashes; returns the list of mismatches (empty when intact)."""
        problems = []
        for name, entry in self.manifest["splits"].items():
            data = self.split(name)
            for what, array in (("images", data.images), ("labels", data.labels)):
                if _array_sha256(np.asarray(array)) != entry[f"{what}_sha256"]:
                    problems.append(f"{self.path.name}/{name}.{what}: content hash differs from manifest")
        return problems


class TaskCache:
    """Reads and writes tasks under ``<data_dir>/cache``."""

    def __init__(self, data_dir: str | os.PathLike):
        self.root = pathlib.Path(data_dir).expanduser() / "cache"

    def task_dir(self, task_key: str, fingerprint: str) -> pathlib.Path:
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        return self.root / task_key / digest

    def get(self, task_key: str, fingerprint: str) -> CachedTask | None:
        folder = self.task_dir(task_key, fingerprint)
        if not (folder / "COMPLETE").exists():
            return None
        manifest = json.loads((folder / "manifest.json").read_text())
        return CachedTask(folder, manifest)

    def write(
        self,
        task_key: str,
        fingerprint: str,
        splits: dict[str, tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]],
        metadata: dict,
    ) -> CachedTask:
        """Store ``splits`` (name -> (images, labels[, ids])) for ``task_key`` atomically."""
        missing = [name for name in STORED_SPLITS if name not in splits]
        if missing:
            raise CacheError(f"task {task_key!r}: source produced no {missing} split(s)")
        target = self.task_dir(task_key, fingerprint)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=".writing-", dir=target.parent))
        try:
            entries = {}
            for name, arrays in splits.items():
                images, labels = arrays[0], arrays[1]
                ids = arrays[2] if len(arrays) > 2 else np.array([f"{name}/{i}" for i in range(len(labels))])
                entries[name] = self._write_split(staging, name, images, labels, ids)
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
        return cached

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
        np.save(folder / f"{name}.ids.npy", np.asarray(ids).astype(str))
        return {
            "count": int(images.shape[0]),
            "image_shape": list(images.shape[1:]),
            "label_shape": list(labels.shape[1:]),
            "images_sha256": _array_sha256(images),
            "labels_sha256": _array_sha256(labels),
        }
