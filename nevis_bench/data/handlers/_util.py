"""Helpers the handlers share: the reference's random split draws, archive iteration, de-duplication,
and :func:`labelled_examples` / :func:`planned_examples` / :func:`split_examples`, the common "label the
members of an archive, drop duplicates, give each its split" loop."""

from __future__ import annotations

import hashlib
import io
import pathlib
import re
import tarfile
import zipfile
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from nevis_bench.data.handlers import Example, HandlerContext

# Split fractions in the order the reference draws them: sorted by its split names
# ("dev" < "dev-test" < "test" < "train"); the draw is np.random.RandomState(0).multinomial per example.
ALL_DATA = (("dev", 0.12), ("dev_test", 0.12), ("test", 0.20), ("train", 0.56))  # no official split
FOR_TRAIN = (("dev", 0.15), ("dev_test", 0.15), ("train", 0.70))  # of the official train; official test kept
TRAIN_AND_DEV_ONLY = (("dev", 0.20), ("train", 0.80))  # dev_test and test come from elsewhere
TEST_AND_DEV_TEST = (("dev_test", 0.50), ("test", 0.50))  # a held-out domain split in halves

IGNORED = re.compile(r"(^|/)(Thumbs\.db|\.DS_Store)$|(^|/)__MACOSX/")


class CategoricalSplitter:
    """Assigns consecutive examples to splits by independent categorical draws.

    Example ``i`` (in the handler's deterministic order) goes to the split of the ``i``-th draw of
    ``np.random.RandomState(seed).multinomial(1, fractions)``, exactly as the reference's
    ``random_split_generator_into_splits_with_fractions``; the realised fractions are therefore
    approximate. Draws are made in chunks, which gives the same sequence as one draw at a time.
    """

    def __init__(self, fractions: Sequence[tuple[str, float]], seed: int = 0, chunk: int = 4096):
        self.names = [name for name, _ in fractions]
        self.probabilities = [fraction for _, fraction in fractions]
        if not np.isclose(sum(self.probabilities), 1.0):
            raise ValueError(f"split fractions must sum to 1, got {fractions}")
        self._state = np.random.RandomState(seed)
        self._chunk = chunk
        self._pending: list[int] = []

    def next(self) -> str:
        if not self._pending:
            draws = self._state.multinomial(1, self.probabilities, size=self._chunk).argmax(axis=1)
            self._pending = draws[::-1].tolist()
        return self.names[self._pending.pop()]

    def assign(self, count: int) -> list[str]:
        return [self.next() for _ in range(count)]


class Deduplicator:
    """Drops examples whose decoded pixels and label were seen before (the reference's md5 rule)."""

    def __init__(self):
        self._seen: set[tuple[str, object]] = set()
        self.removed = 0

    def is_new(self, image: Image.Image, label) -> bool:
        key = (hashlib.md5(image.tobytes()).hexdigest(), label if isinstance(label, int) else tuple(label))
        if key in self._seen:
            self.removed += 1
            return False
        self._seen.add(key)
        return True


def iter_tar(path: pathlib.Path | io.IOBase, keep: Callable[[str], bool] = lambda name: True) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of the regular files of a tar archive, in archive order, streaming."""
    opened = tarfile.open(path, "r|*") if isinstance(path, (str, pathlib.Path)) else tarfile.open(fileobj=path, mode="r|*")
    with opened as archive:
        for member in archive:
            if not member.isfile() or IGNORED.search(member.name) or not keep(member.name):
                continue
            handle = archive.extractfile(member)
            if handle is not None:
                yield member.name, handle.read()


def tar_names(path: pathlib.Path) -> list[str]:
    """Names of the regular files of a tar archive, in archive order."""
    with tarfile.open(path, "r|*") as archive:
        return [m.name for m in archive if m.isfile() and not IGNORED.search(m.name)]


def zip_names(archive: zipfile.ZipFile, sort: bool = True) -> list[str]:
    """File names of a zip archive, sorted (the reference iterates most zips in sorted name order) or,
    with ``sort=False``, in archive order."""
    names = [n for n in archive.namelist() if not n.endswith("/") and not IGNORED.search(n)]
    return sorted(names) if sort else names


def parent_name(path: str) -> str:
    """The name of the folder that holds ``path`` (``a/b/c.png`` -> ``b``)."""
    parts = path.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def labelled_examples(
    ctx: "HandlerContext",
    archives: Iterable[pathlib.Path],
    label_of: Callable[[str], object],
    split: "CategoricalSplitter | str | None" = None,
    **options,
) -> Iterator["Example"]:
    """Examples of the members of ``archives`` (in turn) whose ``label_of(member)`` is not None, each
    in ``split``: :func:`planned_examples` with no member's split fixed (same ``options``)."""

    def plan_of(member: str):
        label = label_of(member)
        return None if label is None else (None, label)

    return planned_examples(ctx, archives, plan_of, split, **options)


def planned_examples(
    ctx: "HandlerContext",
    archives: Iterable[pathlib.Path],
    plan_of: Callable[[str], "tuple[str | None, object] | None"],
    split: "CategoricalSplitter | str | None" = None,
    *,
    sort: bool = True,
    **options,
) -> Iterator["Example"]:
    """Examples of the members of ``archives`` (in turn) that ``plan_of(member)`` gives a
    ``(fixed split or None, label)``; members it gives None are skipped.

    Members of a ``.zip`` come in sorted name order, or in archive order with ``sort=False``
    (:func:`zip_names`); ``plan_of`` is called once per member, for all of them, when the zip is
    opened, before any is decoded. Any other archive is read as a tar, in archive order
    (:func:`iter_tar`). Each member is decoded with ``ctx.decoded`` (id ``<archive name>:<member>``);
    the decoded members become examples by :func:`split_examples` (``split`` and the ``options``
    ``mode``, ``crop``, ``dedup_notes`` as there), a fixed split taking precedence over ``split``.
    """
    rows = (
        (example_id, image, label, fixed)
        for archive in archives
        for example_id, image, (fixed, label) in _planned_members(ctx, archive, plan_of, sort)
    )
    return split_examples(rows, split, **options)


def split_examples(
    rows: Iterable[tuple],
    split: "CategoricalSplitter | str | None" = None,
    *,
    mode: str | None = None,
    crop: "Callable[[Image.Image, str], Image.Image] | None" = None,
    dedup_notes: dict | None = None,
) -> Iterator["Example"]:
    """Examples of ``rows`` ``(example id, image, label)``, in order, each in its split.

    A row may carry a fourth item, its fixed split (None: no fixed split). Each image is converted to
    ``mode`` if given and, when ``dedup_notes`` is given, a row is dropped if an earlier one had the
    same pixels and label (:class:`Deduplicator`; the count is stored as
    ``dedup_notes["duplicates_removed"]`` once all rows are read). A kept example's split is its fixed
    split; without one, ``split`` if that is a split name, else the next draw of ``split`` (a
    :class:`CategoricalSplitter`, which callers may share between calls; by default a new
    ``CategoricalSplitter(ALL_DATA)``). ``crop(image, split)``, if given, replaces the image once its
    split is known.
    """
    from nevis_bench.data.handlers import Example

    splitter = CategoricalSplitter(ALL_DATA) if split is None else split
    dedup = Deduplicator() if dedup_notes is not None else None
    for example_id, image, label, *fixed in rows:
        if mode is not None:
            image = image.convert(mode)
        if dedup is not None and not dedup.is_new(image, label):
            continue
        chosen = (fixed[0] if fixed else None) or (splitter if isinstance(splitter, str) else splitter.next())
        yield Example(chosen, example_id, crop(image, chosen) if crop else image, label)
    if dedup is not None:
        dedup_notes["duplicates_removed"] = dedup.removed


def found_classes(
    archives: Sequence[pathlib.Path], class_of: Callable[[str], str | None]
) -> tuple[list[str], Callable[[str], int | None]]:
    """The class names ``class_of`` gives the members of ``archives`` (zip or tar; None for members to
    skip), sorted, and the matching ``label_of``: a member's index in that list, or None."""
    found: set[str] = set()
    for archive in archives:
        if _is_zip(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zip_names(zf)
        else:
            names = tar_names(archive)
        found.update(c for c in map(class_of, names) if c is not None)
    classes = sorted(found)
    index = {name: i for i, name in enumerate(classes)}

    def label_of(member: str) -> int | None:
        name = class_of(member)
        return None if name is None else index[name]

    return classes, label_of


def _is_zip(archive: pathlib.Path) -> bool:
    return archive.name.lower().endswith(".zip")


def _planned_members(ctx: "HandlerContext", archive: pathlib.Path, plan_of: Callable[[str], object], sort: bool):
    """``(example id, image, plan)`` of the planned members of one archive (see :func:`planned_examples`)."""
    if _is_zip(archive):
        with zipfile.ZipFile(archive) as zf:
            planned = [(name, plan_of(name)) for name in zip_names(zf, sort)]
            members = ((name, zf.read(name)) for name, plan in planned if plan is not None)
            plans = dict(planned)
            for name, example_id, image in ctx.decoded(members, archive.name):
                yield example_id, image, plans[name]
    else:
        for name, example_id, image in ctx.decoded(iter_tar(archive, keep=lambda n: plan_of(n) is not None), archive.name):
            yield example_id, image, plan_of(name)


# ---- random crops of texture images (the reference's intended, never applied, "random_crop") --------

TEXTURE_CROPS_ENV = "NEVIS_TEXTURE_CROPS"
TEXTURE_CROP_SIZE = 64


def texture_crops_requested(crops: bool | None) -> bool:
    """``crops`` if given, else whether the environment variable ``NEVIS_TEXTURE_CROPS`` is set to 1/true/yes."""
    if crops is not None:
        return crops
    import os

    return os.environ.get(TEXTURE_CROPS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class SplitCropper:
    """One random ``size`` x ``size`` crop per image, drawn per split as the reference intended.

    Each split has its own ``np.random.default_rng(seed)``; an image's corner is
    ``left = rng.integers(0, width - size)``, ``top = rng.integers(0, height - size)``, drawn in the
    order the split's examples are produced. A side not longer than ``size`` is kept whole (no draw).
    """

    def __init__(self, size: int = TEXTURE_CROP_SIZE, seed: int = 0):
        self.size, self.seed = size, seed
        self._rngs: dict[str, np.random.Generator] = {}

    def __call__(self, image: Image.Image, split: str) -> Image.Image:
        rng = self._rngs.setdefault(split, np.random.default_rng(self.seed))
        width, height = image.size
        left = int(rng.integers(0, width - self.size)) if width > self.size else 0
        top = int(rng.integers(0, height - self.size)) if height > self.size else 0
        return image.crop((left, top, left + min(self.size, width), top + min(self.size, height)))
