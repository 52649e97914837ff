"""Handlers: convert a dataset's original archive(s) into the prepared format (``nevis_bench.data.prepared``).

One module per handler; each defines ``HANDLER = Handler(...)``. :data:`HANDLERS` maps the handler
name (the reference's name, ``nevis:<name>`` in the catalog, also the folder under
``<data_dir>/prepared/``) to its :class:`Handler`.

A handler's ``convert(ctx)`` receives a :class:`HandlerContext` that finds the original files in the
directory given with ``nevis-bench data prepare NAME --from DIR`` (or in ``DIR/NAME/``) and decodes
images, and returns a :class:`HandlerOutput`: an iterable of :class:`Example` (split, stable id,
PIL image, label) in a deterministic order, plus the class names. Split rules follow the reference
(the reference's ``dm_nevis/datasets_storage/handlers``); each handler's docstring states its rule and
every deliberate deviation.

Corrupt images: by default a file that does not decode stops the conversion with
:class:`CorruptImageError` naming the archive and member. With ``skip_corrupt=True``
(``--skip-corrupt``) such files are skipped; their ids are recorded in ``metadata.json``
(``skipped_corrupt``) and the count is printed. Skipped files are dropped before any split draw, so
the random split of the remaining examples shifts; prefer repairing the archive.
"""

from __future__ import annotations

import fnmatch
import importlib
import io
import pathlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from PIL import Image

from nevis_bench.errors import InputError

SPLIT_NAMES = ("train", "dev", "dev_test", "test")


class HandlerError(RuntimeError, InputError):
    """The source files are missing or not what the handler expects; the message says which."""


class CorruptImageError(HandlerError):
    """An image in the original archive does not decode."""


@dataclass(frozen=True)
class Artefact:
    """One original file: ``filename`` is the name (or a glob pattern) expected in the source directory."""

    filename: str
    url: str | None = None
    md5: str | None = None


@dataclass
class Example:
    split: str  # train | dev | dev_test | test
    id: str  # stable id, normally the archive member path
    image: Image.Image
    label: int | Sequence[int]  # class index, or the positive classes of a multi-label example


@dataclass
class HandlerOutput:
    examples: Iterable[Example]
    class_names: list[str]  # may be filled while ``examples`` is consumed; read afterwards
    notes: dict = field(default_factory=dict)  # counts worth recording (e.g. duplicates removed); read afterwards


class HandlerContext:
    """Finds a handler's original files and decodes images, honouring ``skip_corrupt``."""

    def __init__(self, roots: Sequence[pathlib.Path], skip_corrupt: bool = False, name: str = ""):
        self.roots = [pathlib.Path(r) for r in roots]
        self.skip_corrupt = skip_corrupt
        self.name = name
        self.skipped: list[str] = []

    def find(self, pattern: str) -> list[pathlib.Path]:
        """Files matching ``pattern`` (a name or glob) in the first root that has any, sorted by name."""
        for root in self.roots:
            if root.is_dir():
                matches = sorted(p for p in root.iterdir() if p.is_file() and fnmatch.fnmatch(p.name, pattern))
                if matches:
                    return matches
        return []

    def file(self, pattern: str) -> pathlib.Path:
        matches = self.find(pattern)
        if not matches:
            raise HandlerError(f"{self.name}: no file {pattern!r} in {', '.join(map(str, self.roots))}")
        return matches[0]

    def decoded(self, members: Iterable[tuple[str, bytes]], archive: str) -> Iterator[tuple[str, str, Image.Image]]:
        """``(member name, example id, image)`` for the members that decode; the id is ``archive:member``."""
        for name, data in members:
            where = f"{archive}:{name}"
            image = self.decode(data, where)
            if image is not None:
                yield name, where, image

    def decode(self, data: bytes | io.IOBase, where: str) -> Image.Image | None:
        """Decode an image; ``where`` names it (archive:member). None when skipped as corrupt."""
        try:
            image = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
            image.load()
            return image
        except Exception as error:  # PIL raises many types for broken files
            if self.skip_corrupt:
                self.skipped.append(where)
                return None
            raise CorruptImageError(
                f"{self.name}: cannot decode image {where}: {type(error).__name__}: {error}. Replace the "
                "archive with an intact copy, or pass --skip-corrupt to skip such files (they are listed "
                "in metadata.json)"
            ) from error


@dataclass(frozen=True)
class Handler:
    name: str  # reference handler name; the prepared folder name
    dataset_key: str  # key in nevis_bench.data.catalog.DATASETS
    artefacts: tuple[Artefact, ...]
    convert: Callable[[HandlerContext], HandlerOutput]
    split_rule: str  # one line, recorded in metadata.json
    website: str = ""
    licence: str = "research use; see the dataset's website for its terms"
    citation: str = ""
    manual_step: str = ""  # what to do by hand when the files cannot be downloaded
    version: int = 1  # bump when the produced examples or splits change

    def missing_files(self, roots: Sequence[pathlib.Path]) -> list[Artefact]:
        ctx = HandlerContext(roots, name=self.name)
        return [a for a in self.artefacts if not ctx.find(a.filename)]

    def how_to_get(self) -> str:
        files = ", ".join(a.filename for a in self.artefacts[:6]) + (
            f", ... ({len(self.artefacts)} files)" if len(self.artefacts) > 6 else ""
        )
        step = f"nevis-bench data prepare {self.name} --from DIR   (DIR holds the original files: {files})"
        if all(a.url for a in self.artefacts):
            step += f"; or, with network access: nevis-bench data prepare {self.name} --download"
        if self.manual_step:
            step += f"; {self.manual_step}"
        return step


def _discover() -> dict[str, Handler]:
    """Every module of this package whose name does not start with ``_`` defines one ``HANDLER``.

    Adding a handler is adding a file; no list to edit. Imported after the classes above, which the
    handler modules use.
    """
    found: dict[str, Handler] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        handler = importlib.import_module(f"{__name__}.{info.name}").HANDLER
        if handler.name in found:
            raise RuntimeError(f"handler {handler.name!r} is defined twice (module {info.name})")
        found[handler.name] = handler
    return found


HANDLERS: dict[str, Handler] = _discover()


def get_handler(name: str) -> Handler | None:
    return HANDLERS.get(name)
