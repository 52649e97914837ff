"""Opening a stream: by registered name with its options checked, or from a stream file (TOML).

Every registered stream states the options it takes: the fields of the options dataclass it
registers with (``@STREAMS.register("name", OptionsDataclass)``) and the named keyword parameters
of its factory. :func:`open_stream` refuses an unknown option, or a value the factory rejects, with
a :class:`StreamOptionError` that lists the valid options (as learner hyperparameters are checked),
never a raw ``TypeError``; ``nevis-bench streams describe NAME`` prints the same list
(:func:`stream_options`).

A name that ends in ``.toml`` (or names an existing file) is a user-defined stream file
(:mod:`nevis_bench.stream_file`).
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
from dataclasses import dataclass
from typing import Any

from nevis_bench.errors import InputError
from nevis_bench.registry import STREAMS, Entry
from nevis_bench.stream import Stream

# Options the harness fills in from the run's own settings when a stream takes them and the user gave none.
RUN_SUPPLIED = ("data_dir", "tfds_data_dir")


class StreamOptionError(ValueError, InputError):
    """A stream option that does not exist or has a value the stream refuses; the message lists the options."""


@dataclass(frozen=True)
class StreamOption:
    name: str
    default: Any
    kind: str  # the annotation, as written
    doc: str = ""


def is_stream_file(name: str) -> bool:
    """Whether ``--stream NAME`` names a stream file rather than a registered stream."""
    return name.endswith(".toml") or ("/" in name and pathlib.Path(name).is_file())


def stream_options(entry: Entry) -> list[StreamOption]:
    """The options a registered stream takes, in declaration order."""
    found: dict[str, StreamOption] = {}
    if entry.config_class is not None:
        for f in dataclasses.fields(entry.config_class):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            found[f.name] = StreamOption(f.name, default, str(f.type), f.metadata.get("doc", ""))
    for parameter in inspect.signature(entry.factory).parameters.values():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or parameter.name in found:
            continue
        default = None if parameter.default is parameter.empty else parameter.default
        annotation = "" if parameter.annotation is parameter.empty else str(parameter.annotation)
        found[parameter.name] = StreamOption(parameter.name, default, annotation)
    return list(found.values())


def describe_options(entry: Entry) -> list[str]:
    """Lines for ``streams describe``: every option with its default and meaning."""
    options = stream_options(entry)
    if not options:
        return ["options: none"]
    lines = ["options (-o stream.KEY=VALUE, or --stream-option KEY=VALUE):"]
    for option in options:
        doc = f"  {option.doc}" if option.doc else ""
        lines.append(f"  {option.name:<18} default {option.default!r:<22}{doc}")
    return lines


def open_stream(name: str, options: dict[str, Any] | None = None, data_dir: str | None = None,
                tfds_data_dir: str | None = None) -> Stream:
    """The stream ``name`` (registered, or a stream file) built with ``options``; ``data_dir`` and
    ``tfds_data_dir`` are passed to streams that take them unless ``options`` sets them."""
    options = dict(options or {})
    if is_stream_file(name):
        from nevis_bench.stream_file import load_stream_file

        return load_stream_file(name, options, data_dir=data_dir, tfds_data_dir=tfds_data_dir)
    entry = STREAMS.get(name)
    known = {option.name for option in stream_options(entry)}
    unknown = sorted(set(options) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise StreamOptionError(
            f"unknown option(s) {', '.join(unknown)} of stream {name!r}; valid options: {valid} "
            f"(`nevis-bench streams describe {name}` says what each does)"
        )
    for key, value in (("data_dir", data_dir), ("tfds_data_dir", tfds_data_dir)):
        if key in known and key not in options and value is not None:
            options[key] = value
    try:
        return entry.factory(**options)
    except (TypeError, ValueError) as error:
        raise StreamOptionError(f"stream {name!r}: {error}") from error
