"""Run configuration: a typed dataclass, TOML files and ``-o key=value`` overrides, validated up front.

A TOML file holds run fields at the top level, the learner's hyperparameters in a
``[learner_config]`` table and stream options in ``[stream_options]``::

    stream = "synthetic-short"
    learner = "finetune_prev"
    seed = 3
    [learner_config]
    learning_rate = 0.05

An override ``-o key=value`` sets a run field when ``key`` names one, a learner hyperparameter for
``learner.key`` or a key of the learner's config, and a stream option for ``stream.key``. Values are
TOML literals (``0.1``, ``true``, ``[0.5, 1.0]``, ``"text"``); a bare word is a string.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from nevis_bench.data.catalog import DEFAULT_STOP_YEAR, FINAL_STOP_YEAR
from nevis_bench.data.sources import default_data_dir
from nevis_bench.errors import InputError


class ConfigError(ValueError, InputError):
    """An invalid configuration; raised before any compute with a message that says what to do."""


@dataclass
class RunConfig:
    stream: str = "synthetic-short"
    learner: str = "independent"
    seed: int = 0
    device: str = "cpu"
    final: bool = False  # final protocol: predict on `test`, stop year 2022
    final_eval: bool = False  # after the last task, predict every seen task again (forgetting)
    stop_year: int | None = None  # None: 2020 in development, 2022 with `final`
    image_size: int = 32  # stored image size in the task cache
    image_framing: str = "center-square"  # what the cache keeps of each image: its central square, or the
    # full frame ("full": random-resized crops see the whole image, as the reference's; data/images.py)
    preset: str | None = None  # a named bundle of settings (run/presets.py) filling in what is not given
    runs_dir: str = "runs"
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    tfds_data_dir: str | None = None  # the TFDS folder ($TFDS_DATA_DIR or <data_dir>/tensorflow_datasets)
    run_name: str | None = None  # folder name under runs_dir; default derived from the config
    learner_module: str | None = None  # a file defining a learner outside the package
    checkpoint_every_steps: int = 0  # 0: only by time and on request
    checkpoint_every_seconds: float = 600.0
    progress: bool = True
    stream_options: dict[str, Any] = field(default_factory=dict)
    learner_config: dict[str, Any] = field(default_factory=dict)

    @property
    def predict_split(self) -> str:
        return "test" if self.final else "dev_test"

    @property
    def effective_stop_year(self) -> int:
        if self.stop_year is not None:
            return self.stop_year
        return FINAL_STOP_YEAR if self.final else DEFAULT_STOP_YEAR

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_STRUCTURED = {"stream_options", "learner_config"}


def parse_value(text: str) -> Any:
    """A TOML literal, or the text itself when it is not one (so ``stream=foo`` works unquoted)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field annotation, converting where lossless."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"types": types})  # annotations of our own dataclasses
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if annotation is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list like [1, 2], got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        converted = [_coerce(v, inner, where) for v in value]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def build_dataclass(cls: type, values: dict[str, Any], what: str):
    """Instantiate dataclass ``cls`` from ``values`` with type checks; unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown {what} key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints[k], f"{what} key {k!r}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {what}: {error}") from error


def load_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"config file {path!r} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path!r} is not valid TOML: {error}") from error
    return dict(data)


def apply_overrides(values: dict[str, Any], overrides: list[str], learner_fields: set[str] | None) -> dict[str, Any]:
    """Fold ``key=value`` overrides into a dict of run values (see the module docstring)."""
    values = {**values, "learner_config": dict(values.get("learner_config", {})),
              "stream_options": dict(values.get("stream_options", {}))}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (example: -o learning_rate=0.05)")
        key, text = (part.strip() for part in item.split("=", 1))
        value = parse_value(text)
        if key.startswith("learner."):
            values["learner_config"][key[len("learner."):]] = value
        elif key.startswith("stream."):
            values["stream_options"][key[len("stream."):]] = value
        elif key in RUN_FIELDS and key not in _STRUCTURED:
            values[key] = value
        elif learner_fields is None or key in learner_fields:
            values["learner_config"][key] = value
        else:
            raise ConfigError(
                f"override key {key!r} is neither a run setting ({', '.join(sorted(set(RUN_FIELDS) - _STRUCTURED))}) "
                f"nor a hyperparameter of the learner ({', '.join(sorted(learner_fields)) or 'none'})"
            )
    return values


def config_id(learner: str, learner_config: dict[str, Any]) -> str:
    """8 hex digits identifying a learner and its hyperparameters (the leaderboard's grouping key)."""
    blob = json.dumps({"learner": learner, "config": learner_config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


# Settings that decide a run's records: two runs that agree on all of them are the same run. Where
# files live, progress bars and checkpoint frequency do not change a record.
DEFINING_FIELDS = (
    "stream", "learner", "seed", "learner_config", "stream_options", "final", "final_eval", "stop_year",
    "image_size", "image_framing", "device", "learner_module",
)
# Defining settings added after runs were written: a config.json without one holds its default.
_ADDED_DEFAULTS = {"image_framing": "center-square"}


def run_name(config: RunConfig) -> str:
    """The run directory name of ``config``: ``<stream>--<learner>--<config id>--seed<seed>``.

    ``run``, ``sweep`` and ``compare-encoders`` all name runs with this function; a second run of a
    configuration finds the first one's directory and reuses it (:func:`configuration_differences`).
    """
    stream = config.stream
    if stream.endswith(".toml") or "/" in stream:  # a stream file: named by its file
        stream = pathlib.Path(stream).stem
    return f"{stream}--{config.learner}--{config_id(config.learner, config.learner_config)}--seed{config.seed}"


def configuration_differences(saved: dict[str, Any], config: RunConfig) -> list[str]:
    """The defining settings on which a run directory's ``config.json`` differs from ``config``."""
    current = config.to_dict()
    current["stop_year"] = config.effective_stop_year
    if config.learner_module:
        current["learner_module"] = str(pathlib.Path(config.learner_module).resolve())
    return [name for name in DEFINING_FIELDS if saved.get(name, _ADDED_DEFAULTS.get(name)) != current.get(name)]
