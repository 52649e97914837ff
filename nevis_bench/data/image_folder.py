"""A task from a folder of images with one subfolder per class: the data most users hold.

Layout: ``FOLDER/<class name>/<image file>`` (any format Pillow reads: PNG, JPEG, BMP, GIF, TIFF,
WebP). Classes are the subfolder names in sorted order (label 0 is the first); files are read in
sorted order. Hidden files and folders are ignored.

Split rules (``split`` in a stream file):

* fractions ``{train = 0.7, dev = 0.1, dev_test = 0.1, test = 0.1}`` (the default): within each class
  the sorted files are permuted with ``np.random.default_rng(seed)`` and cut in that order, so
  every split holds every class in proportion; a split that comes out empty is an error naming
  the class counts;
* ``"folders"``: ``FOLDER/<split>/<class name>/<image file>`` for the four splits ``train``,
  ``dev``, ``dev_test``, ``test`` (the classes are those of ``train``).

Images become ``S x S`` squares as every other source's (:func:`nevis_bench.data.images.square_resize`),
with full frames too when the run asks for them (:meth:`ImageFolderSource.build_full`). The cache key
holds the folder's path and a hash of every file's relative path, size and modification time, so
adding, removing or replacing an image gives a new cache entry.
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass

import numpy as np

from nevis_bench.data.cache import STORED_SPLITS
from nevis_bench.data.images import RESIZE_ID, framed_splits, square_resize, to_mode
from nevis_bench.data.sources import Availability
from nevis_bench.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_FRACTIONS = (("train", 0.7), ("dev", 0.1), ("dev_test", 0.1), ("test", 0.1))
FOLDERS = "folders"
FORMAT_VERSION = 1


class ImageFolderError(ValueError, InputError):
    """An image folder that cannot become a task (missing, too few classes or images, a bad split rule)."""


def _visible(path: pathlib.Path) -> bool:
    return not path.name.startswith(".")


def class_folders(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def image_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class ImageFolderSource:
    """Task source of an image folder (a :class:`nevis_bench.data.sources.TaskSource`)."""

    folder: str
    channels: int = 3
    split: str | tuple[tuple[str, float], ...] = DEFAULT_FRACTIONS  # fractions, or FOLDERS
    seed: int = 0

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ImageFolderError(f"image folder {self.folder}: channels must be 1 (grey) or 3 (colour), got {self.channels}")
        if self.split != FOLDERS:
            names = [name for name, _ in self.split]
            if sorted(names) != sorted(STORED_SPLITS) or any(f < 0 for _, f in self.split):
                raise ImageFolderError(
                    f"image folder {self.folder}: split fractions need exactly {', '.join(STORED_SPLITS)}, each >= 0, "
                    f"got {dict(self.split)}"
                )
            if abs(sum(f for _, f in self.split) - 1.0) > 1e-6:
                raise ImageFolderError(f"image folder {self.folder}: split fractions must add up to 1, got {dict(self.split)}")

    @property
    def path(self) -> pathlib.Path:
        return pathlib.Path(self.folder).expanduser().resolve()

    def class_names(self) -> list[str]:
        """The class names (sorted subfolders; of ``train/`` under the ``folders`` rule)."""
        root = self.path / "train" if self.split == FOLDERS else self.path
        if not root.is_dir():
            raise ImageFolderError(f"image folder {root} does not exist or is not a folder")
        names = [p.name for p in class_folders(root)]
        if len(names) < 2:
            raise ImageFolderError(f"image folder {root} needs at least 2 class subfolders, found {len(names)}")
        return names

    def _files(self) -> dict[str, list[tuple[pathlib.Path, int]]]:
        """Split -> [(file, label)], by the split rule."""
        names = self.class_names()
        out: dict[str, list[tuple[pathlib.Path, int]]] = {name: [] for name in STORED_SPLITS}
        if self.split == FOLDERS:
            for split in STORED_SPLITS:
                for label, name in enumerate(names):
                    folder = self.path / split / name
                    out[split] += [(f, label) for f in image_files(folder)] if folder.is_dir() else []
        else:
            rng = np.random.default_rng(self.seed)
            for label, name in enumerate(names):
                files = image_files(self.path / name)
                order = rng.permutation(len(files))
                counts = [int(round(fraction * len(files))) for _, fraction in self.split[1:]]
                start = len(files) - sum(counts)  # train takes the remainder
                cuts = {self.split[0][0]: order[:max(start, 0)]}
                for (split, _), count in zip(self.split[1:], counts):
                    cuts[split] = order[start:start + count]
                    start += count
                for split, rows in cuts.items():
                    out[split] += [(files[i], label) for i in sorted(rows)]
        empty = [split for split, files in out.items() if not files]
        if empty:
            sizes = {name: len(image_files(self.path / name)) for name in names} if self.split != FOLDERS else {}
            raise ImageFolderError(
                f"image folder {self.path}: split(s) {', '.join(empty)} come out empty"
                + (f" (images per class: {sizes}); add images or change the fractions" if sizes else "")
            )
        return out

    def num_classes(self) -> int:
        return len(self.class_names())

    def fingerprint(self, image_size: int) -> str:
        digest = hashlib.sha256()
        for path in sorted(p for p in self.path.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(self.path).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        rule = FOLDERS if self.split == FOLDERS else ",".join(f"{k}={v}" for k, v in self.split)
        return (f"folder:v{FORMAT_VERSION}:{self.path}:{digest.hexdigest()[:16]}:{rule}:{self.seed}:{self.channels}:"
                f"{image_size}:{RESIZE_ID}")

    def availability(self) -> Availability:
        if self.path.is_dir():
            return Availability(True)
        return Availability(False, f"create the folder {self.path} with one subfolder of images per class")

    def describe(self) -> str:
        return f"folder:{self.path}"

    def _read(self) -> tuple[dict, dict]:
        from PIL import Image

        images_of, labels_ids = {}, {}
        for split, files in self._files().items():
            images = []
            for path, _ in files:
                with Image.open(path) as image:
                    image.load()
                    images.append(to_mode(image, self.channels))
            images_of[split] = images
            labels_ids[split] = (np.asarray([label for _, label in files], dtype=np.int64),
                                 np.asarray([p.relative_to(self.path).as_posix() for p, _ in files], dtype=str))
        return images_of, labels_ids

    def build(self, image_size: int) -> dict:
        images_of, labels_ids = self._read()
        empty = np.zeros((0, image_size, image_size, self.channels), np.uint8)
        return {
            split: (np.stack([square_resize(i, image_size, self.channels) for i in images]) if images else empty,
                    *labels_ids[split])
            for split, images in images_of.items()
        }

    def build_full(self, image_size: int) -> dict:
        """As :meth:`build`, plus each image's full frame and aspect ratio (framing ``full``)."""
        images_of, labels_ids = self._read()
        return framed_splits(images_of, labels_ids, image_size, self.channels)
