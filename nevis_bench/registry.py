"""Name registries for learners, streams and encoders.

Entries register with a decorator at import time of their module; nothing else happens at import.
The plug-in folders ``learners/`` and ``streams/`` (installed as ``nevis_bench.learners`` and
``nevis_bench.streams``) are imported when a registry is first read, so a name is known as soon as
somebody asks for it; this discovery is the only place the core imports them. Listing names
(:meth:`Registry.listing`) reads their sources without importing anything.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pathlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from nevis_bench.errors import InputError

T = TypeVar("T")


class RegistryError(KeyError, InputError):
    """An unknown name or a clash; the message says what exists."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    config_class: type | None  # dataclass of hyperparameters, or None
    summary: str
    module: str
    test_overrides: dict  # small hyperparameters for the conformance kit in the test suite


class Registry(Generic[T]):
    def __init__(self, what: str, builtin_package: str, variable: str):
        self.what = what
        self._builtin_package = builtin_package
        self._variable = variable  # the name this registry has in the modules that register with it
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, name: str, config_class: type | None = None, test_overrides: dict | None = None):
        """Decorator: ``@LEARNERS.register("name", ConfigDataclass)`` on a factory ``f(config)``.

        ``test_overrides``: hyperparameters that make the learner quick enough for the conformance
        kit in the test suite (e.g. a small step budget); the suite runs every learner with them.
        """
        if config_class is not None and not dataclasses.is_dataclass(config_class):
            raise TypeError(f"{self.what} {name!r}: config_class must be a dataclass")

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            existing = self._entries.get(name)
            module = getattr(factory, "__module__", "?")
            if existing is not None and existing.module != module:
                raise RegistryError(
                    f"{self.what} {name!r} is registered twice: by {existing.module} and by {module}; "
                    "rename one of them"
                )
            doc = inspect.getdoc(factory) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
            self._entries[name] = Entry(name, factory, config_class, summary, module, dict(test_overrides or {}))
            return factory

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            package = importlib.import_module(self._builtin_package)
            for info in sorted(pathlib.Path(package.__file__).parent.iterdir()):
                if info.suffix == ".py" and not info.name.startswith("_"):
                    importlib.import_module(f"{self._builtin_package}.{info.stem}")
                elif info.is_dir() and (info / "__init__.py").exists() and not info.name.startswith("_"):
                    importlib.import_module(f"{self._builtin_package}.{info.name}")

    def listing(self) -> list[tuple[str, str]]:
        """``(name, summary)`` of every built-in entry, sorted, read from the source files with ``ast``.

        Nothing is imported, so listing answers at once (importing the learners would import torch).
        Entries registered by a loaded user module (``--learner-module``) are added from the registry.
        """
        import ast

        found: dict[str, str] = {}
        spec = importlib.util.find_spec(self._builtin_package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        for folder in folders:
            for file in sorted(pathlib.Path(folder).rglob("*.py")):
                tree = ast.parse(file.read_text(), str(file))
                for node in ast.walk(tree):
                    if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        continue
                    for decorator in node.decorator_list:
                        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                                and decorator.func.attr == "register" and isinstance(decorator.func.value, ast.Name)
                                and decorator.func.value.id == self._variable and decorator.args
                                and isinstance(decorator.args[0], ast.Constant)):
                            doc = (ast.get_docstring(node) or "").strip()
                            found[decorator.args[0].value] = doc.splitlines()[0] if doc else ""
        for name, entry in self._entries.items():
            found.setdefault(name, entry.summary)
        return sorted(found.items())

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.what} {name!r}; known {self.what}s: {known}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


LEARNERS: Registry[Any] = Registry("learner", "nevis_bench.learners", "LEARNERS")
STREAMS: Registry[Any] = Registry("stream", "nevis_bench.streams", "STREAMS")


def import_learner_module(path: str) -> str:
    """Import a learner defined in a file outside the package; it registers itself on import.

    Returns the module name. The file's folder is not added to ``sys.path``.
    """
    file = pathlib.Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"learner module {path!r} does not exist (looked at {file})")
    module_name = f"nevis_bench_user_{file.stem}"
    if module_name in sys.modules:
        return module_name
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    return module_name
