"""From a configuration to a running evaluator: validation first, then the run directory.

Everything that can be wrong with the input (unknown stream or learner, bad hyperparameter, an
unwritable runs directory, missing datasets, an unavailable device) is found here, before any
compute, and reported as a :class:`ConfigError` that says what to do.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from dataclasses import dataclass

import torch

from nevis_bench.data.images import IMAGE_FRAMINGS
from nevis_bench.protocol import Learner
from nevis_bench.registry import LEARNERS, RegistryError, import_learner_module
from nevis_bench.run import presets
from nevis_bench.run.config import (
    ConfigError, RunConfig, build_dataclass, config_id, configuration_differences, run_name,
)
from nevis_bench.run.evaluator import Evaluator, StopControl
from nevis_bench.run.run_dir import RunDirectory, versions
from nevis_bench.stream import Stream
from nevis_bench.stream_options import open_stream


@dataclass
class PreparedRun:
    config: RunConfig
    stream: Stream
    learner: object
    learner_config: object


def learner_fields(name: str, learner_module: str | None = None) -> set[str] | None:
    """Hyperparameter names of a learner (None when the learner is unknown: checked later)."""
    if learner_module:
        import_learner_module(learner_module)
    if name not in LEARNERS:
        return None
    config_class = LEARNERS.get(name).config_class
    return {f.name for f in dataclasses.fields(config_class)} if config_class else set()


def validate(values: dict, learner: Learner | None = None) -> PreparedRun:
    """Build and check everything a run needs; raises ConfigError with a fix.

    ``learner``: run this learner object instead of the registered ``values["learner"]`` (which then
    only names it in the records), e.g. a learner defined in a notebook or a test. A ``preset`` in
    ``values`` fills in the settings not given (:mod:`nevis_bench.run.presets`).
    """
    if values.get("preset"):
        name = values.get("learner", RunConfig.learner)
        try:
            fields = learner_fields(name, values.get("learner_module")) if learner is None else None
        except (FileNotFoundError, ImportError) as error:
            raise ConfigError(str(error)) from error
        values = presets.apply(values, values["preset"], fields, name)
    config = build_dataclass(RunConfig, values, "run setting")
    try:
        if config.learner_module:
            import_learner_module(config.learner_module)
        entry = LEARNERS.get(config.learner) if learner is None else None
    except (RegistryError, FileNotFoundError, ImportError) as error:
        raise ConfigError(f"{error}. List them with `nevis-bench learners list` / `nevis-bench streams list`") from error
    if entry is None:
        learner_config = None
    elif entry.config_class is not None:
        learner_config = build_dataclass(entry.config_class, config.learner_config, f"learner {config.learner!r}")
        config.learner_config = dataclasses.asdict(learner_config)
    elif config.learner_config:
        raise ConfigError(f"learner {config.learner!r} takes no hyperparameters, got {sorted(config.learner_config)}")
    else:
        learner_config = None
    if config.image_framing not in IMAGE_FRAMINGS:
        raise ConfigError(f"image_framing must be one of {', '.join(IMAGE_FRAMINGS)}, got {config.image_framing!r}")
    input_size = getattr(learner_config, "input_size", None)
    if isinstance(input_size, int) and input_size > config.image_size:
        raise ConfigError(
            f"learner {config.learner!r} asks for {input_size} px inputs (input_size) but the task cache holds "
            f"{config.image_size} px images (image_size): it would upsample; set -o image_size={input_size} "
            f"(or more) or -o input_size={config.image_size}"
        )
    try:
        stream = open_stream(config.stream, config.stream_options, data_dir=config.data_dir,
                             tfds_data_dir=config.tfds_data_dir)
    except RegistryError as error:
        raise ConfigError(f"{error}. List them with `nevis-bench streams list`, or give a stream file "
                          "(--stream path/to/stream.toml; README, 'Your own streams')") from error
    stream.image_framing = config.image_framing
    if config.stop_year is None and stream.default_stop_year is not None:
        config.stop_year = stream.default_stop_year  # e.g. the ablation streams run to 2022
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {config.device}: CUDA is not available here; use --device cpu")
    if config.device not in ("cpu",) and not config.device.startswith("cuda"):
        raise ConfigError(f"--device must be cpu or cuda[:N], got {config.device!r}")
    if config.image_size < 8:
        raise ConfigError("image_size must be at least 8")
    if not stream.entries_before(config.effective_stop_year):
        raise ConfigError(f"stream {config.stream!r} has no task before stop year {config.effective_stop_year}")
    if learner is None:
        learner = entry.factory(learner_config) if learner_config is not None else entry.factory()
    return PreparedRun(config, stream, learner, learner_config)


def _writable_folder(path: str, what: str) -> pathlib.Path:
    folder = pathlib.Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{what} {str(folder)!r} is not writable ({error.strerror}); pass another with --{what.replace(' ', '-')}") from error
    return folder


def start(values: dict, stop: StopControl | None = None, learner: Learner | None = None) -> tuple[RunDirectory, Evaluator]:
    """Validate, create the run directory, check the data; the caller calls ``evaluator.run()``."""
    prepared = validate(values, learner)
    config = prepared.config
    runs = _writable_folder(config.runs_dir, "runs dir")
    _writable_folder(config.data_dir, "data dir")
    name = config.run_name or run_name(config)
    run_dir = RunDirectory(runs / name)
    if run_dir.path.exists():
        if not (run_dir.path / "config.json").exists():
            raise ConfigError(f"{run_dir.path} exists but is not a run directory; remove it or pick another --run-name")
        differences = configuration_differences(run_dir.read_config(), config)
        if differences:
            raise ConfigError(
                f"run directory {run_dir.path} holds a run with other settings (differs in {', '.join(differences)}); "
                "pick another --run-name or --runs-dir"
            )
        return reopen(str(run_dir.path), stop, progress=config.progress, learner=learner)  # the same run: continue it
    evaluator = Evaluator(run_dir, config, prepared.stream, prepared.learner, stop)
    evaluator.data.check_available()
    run_dir.create({
        **config.to_dict(),
        "run_id": name,
        "config_id": config_id(config.learner, config.learner_config),
        "predict_split": config.predict_split,
        "stop_year": config.effective_stop_year,
        "learner_module": str(pathlib.Path(config.learner_module).resolve()) if config.learner_module else None,
        **({"skipped_entries": list(prepared.stream.skipped)} if prepared.stream.skipped else {}),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return run_dir, evaluator


def reopen(path: str, stop: StopControl | None = None, progress: bool | None = None,
           learner: Learner | None = None) -> tuple[RunDirectory, Evaluator]:
    """The evaluator of an existing run directory, ready to resume from its last checkpoint
    (a complete run has nothing left to do: ``run()`` only rewrites its summary)."""
    run_dir = RunDirectory(path)
    if not (run_dir.path / "config.json").exists():
        raise ConfigError(f"{path} is not a run directory (no config.json)")
    saved = run_dir.read_config()
    values = {k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    values["stop_year"] = saved["stop_year"]
    if progress is not None:
        values["progress"] = progress
    prepared = validate(values, learner)
    return run_dir, Evaluator(run_dir, prepared.config, prepared.stream, prepared.learner, stop)
