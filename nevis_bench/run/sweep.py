"""A grid of runs executed with Ray, locally or on a cluster (``nevis-bench sweep SWEEP.toml``).

A sweep file expands ``learners x configurations x seeds x streams`` into runs::

    runs_dir = "runs/my-sweep"           # every run gets its own directory here (relative to the cwd)
    learners = ["independent", "finetune_prev"]
    seeds = [0, 1, 2]
    streams = ["synthetic-short"]
    num_cpus = 1                          # Ray resources per run: a CPU share ...
    num_gpus = 0                          # ... or one GPU (then device defaults to "cuda")
    max_retries = 2                       # resumptions after a failure or a dead worker
    # device, data_dir, final, final_eval, stop_year, image_size, checkpoint_every_steps,
    # checkpoint_every_seconds, learner_module, preset, image_framing, tfds_data_dir: run settings
    # shared by every run

    [configurations.base]                 # learner_config tables, each applied to every learner
    max_steps = 400
    [configurations.long]
    max_steps = 2000

    [stream_options.synthetic-short]      # optional stream options per stream

Run directories are named by :func:`nevis_bench.run.config.run_name`
(``<stream>--<learner>--<config_id>--seed<seed>``; the config id hashes the learner's full validated
hyperparameters), as ``nevis-bench run`` names them. Running a sweep again continues it: a run
directory whose configuration matches is reused (skipped when complete, resumed from its checkpoint
otherwise); one whose configuration differs stops the sweep before anything runs. A run that fails
or whose worker process dies is resumed from its last checkpoint by Ray's task retries
(``max_retries``); runs checkpoint inside train events (``checkpoint_every_steps`` /
``checkpoint_every_seconds``). At the end the leaderboard of the runs folder is built
(``<runs_dir>/leaderboard`` unless ``--output``). See docs/sweeps.md.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import tomllib
from dataclasses import dataclass, field
from typing import Any

from nevis_bench.data.sources import default_data_dir
from nevis_bench.run.config import ConfigError, configuration_differences, run_name

# Testing hook: the worker process exits (``os._exit``) right after its N-th within-event checkpoint,
# on the first attempt of each run only, to simulate a worker dying mid-run.
CRASH_ENV = "NEVIS_BENCH_SWEEP_CRASH_AFTER_CHECKPOINTS"
CRASH_MARKER = ".sweep-crash-injected"
CRASH_EXIT_CODE = 17

SHARED_RUN_FIELDS = (
    "device", "data_dir", "final", "final_eval", "stop_year", "image_size", "checkpoint_every_steps",
    "checkpoint_every_seconds", "learner_module", "preset", "image_framing", "tfds_data_dir",
)


@dataclass
class SweepRun:
    name: str
    values: dict[str, Any]  # RunConfig values for runner.start


@dataclass
class Sweep:
    runs_dir: pathlib.Path
    runs: list[SweepRun]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 2
    extra: dict[str, Any] = field(default_factory=dict)


def _as_list(value: Any, key: str) -> list:
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"sweep: {key} must be a non-empty list")
    return value


def load_sweep(path: str | os.PathLike, runs_dir: str | None = None) -> Sweep:
    """Read and expand a sweep file; every run's configuration is validated before anything runs."""
    from nevis_bench.run import runner

    path = pathlib.Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"sweep file {path} not found") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"sweep file {path}: {error}") from error
    known = {"runs_dir", "learners", "seeds", "streams", "configurations", "stream_options", "num_cpus",
             "num_gpus", "max_retries", *SHARED_RUN_FIELDS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown keys {unknown}; known: {sorted(known)}")
    learners = _as_list(raw.get("learners"), "learners")
    seeds = _as_list(raw.get("seeds", [0]), "seeds")
    streams = _as_list(raw.get("streams"), "streams")
    configurations = raw.get("configurations") or {"default": {}}
    if not all(isinstance(v, dict) for v in configurations.values()):
        raise ConfigError("sweep: [configurations.NAME] must be tables of learner hyperparameters")
    num_gpus = float(raw.get("num_gpus", 0))
    shared = {k: raw[k] for k in SHARED_RUN_FIELDS if k in raw}
    shared.setdefault("device", "cuda" if num_gpus > 0 else "cpu")
    # Workers may start in another directory: paths are made absolute here, in the driver.
    shared["data_dir"] = str(pathlib.Path(shared.get("data_dir") or default_data_dir()).expanduser().resolve())
    if shared.get("learner_module"):
        shared["learner_module"] = str(pathlib.Path(shared["learner_module"]).expanduser().resolve())
    root = pathlib.Path(runs_dir or raw.get("runs_dir") or pathlib.Path("runs") / path.stem).expanduser().resolve()
    runs: list[SweepRun] = []
    seen: set[str] = set()
    for stream in streams:
        for learner in learners:
            for config_name, learner_config in configurations.items():
                for seed in seeds:
                    values = {
                        **shared, "stream": stream, "learner": learner, "seed": int(seed),
                        "learner_config": dict(learner_config), "runs_dir": str(root), "progress": False,
                        "stream_options": dict((raw.get("stream_options") or {}).get(stream, {})),
                    }
                    try:
                        # the driver may have no GPU (a cluster's head node): the device is checked by the worker
                        prepared = runner.validate({**values, "device": "cpu"} if values["device"].startswith("cuda")
                                                   else dict(values))
                    except ConfigError as error:
                        raise ConfigError(f"sweep run {stream}/{learner}/{config_name}/seed {seed}: {error}") from error
                    name = run_name(prepared.config)
                    if name in seen:
                        continue  # two configuration tables that validate to the same hyperparameters
                    seen.add(name)
                    existing = root / name / "config.json"
                    if existing.exists():
                        differences = configuration_differences(json.loads(existing.read_text()), prepared.config)
                        if differences:
                            raise ConfigError(
                                f"sweep run {name}: {root / name} holds a run with other settings (differs in "
                                f"{', '.join(differences)}); use another runs_dir"
                            )
                    runs.append(SweepRun(name, {**values, "run_name": name}))
    return Sweep(root, runs, num_cpus=float(raw.get("num_cpus", 1)), num_gpus=num_gpus,
                 max_retries=int(raw.get("max_retries", 2)))


def run_status(run_path: pathlib.Path) -> str | None:
    """The status in a run directory's summary.json, or None when there is none."""
    try:
        return json.loads((run_path / "summary.json").read_text()).get("status")
    except (FileNotFoundError, ValueError):
        return None


# --- the worker -------------------------------------------------------------------------------------

def execute_run(values: dict[str, Any], crash_after_checkpoints: int | None = None) -> dict[str, Any]:
    """Start or resume one run to the end (in a Ray worker, or in-process). Returns its status."""
    from nevis_bench.run import runner
    from nevis_bench.run.evaluator import StopControl

    path = pathlib.Path(values["runs_dir"]) / values["run_name"]
    stop = StopControl()
    if crash_after_checkpoints and not (path / CRASH_MARKER).exists():
        stop = _CrashingStop(path, crash_after_checkpoints)
    if path.exists() and not (path / "config.json").exists():
        shutil.rmtree(path)  # died between creating the folder and writing its config
    resumed = (path / "config.json").exists()
    run_dir, evaluator = runner.start(dict(values), stop=stop)  # continues the run when it exists
    status = evaluator.run()
    return {"name": path.name, "status": status, "resumed": resumed, "pid": os.getpid()}


class _CrashingStop:
    """A StopControl whose process dies right after a chosen within-event checkpoint (testing hook)."""

    def __new__(cls, path: pathlib.Path, after: int):
        from nevis_bench.run.evaluator import StopControl

        class Crashing(StopControl):
            def after_checkpoint(self) -> None:
                super().after_checkpoint()
                if self.checkpoints_done >= after:
                    (path / CRASH_MARKER).write_text(f"worker {os.getpid()} exited after checkpoint {after}\n")
                    os._exit(CRASH_EXIT_CODE)

        return Crashing()


# --- Ray --------------------------------------------------------------------------------------------

def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Connect to a cluster (``address``) or start a quiet local one; no-op when Ray is up already.
    Returns whether this call connected or started Ray (the caller then shuts it down).

    A local cluster runs without token authentication (``RAY_AUTH_MODE=disabled``), without the
    dashboard and usage statistics, and does not stream worker logs to the terminal.
    """
    try:
        import ray
    except ImportError as error:
        raise ConfigError("sweeps need Ray: pip install 'nevis-bench[sweep]' (ray==2.60.0)") from error
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = dict(
        log_to_driver=False, logging_level=logging.WARNING, configure_logging=True, include_dashboard=False,
    )
    if address:
        ray.init(address=address, **options)
        return True
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=num_cpus or os.cpu_count(), num_gpus=num_gpus, **options)
    return True


def run_sweep(sweep: Sweep, address: str | None = None, log=print) -> dict[str, dict[str, Any]]:
    """Run every unfinished run of ``sweep`` with Ray; returns ``{run name: result}``.

    Complete runs (their configuration was checked by :func:`load_sweep`) are skipped."""
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for run in sweep.runs:
        if run_status(sweep.runs_dir / run.name) == "complete":
            results[run.name] = {"name": run.name, "status": "complete", "skipped": True}
        else:
            todo.append(run)
    log(f"sweep: {len(sweep.runs)} runs under {sweep.runs_dir}; {len(sweep.runs) - len(todo)} complete, "
        f"{len(todo)} to run")
    if not todo:
        return results
    sweep.runs_dir.mkdir(parents=True, exist_ok=True)
    started_here = init_ray(address)  # a clear ConfigError when Ray is not installed
    import ray

    try:
        crash = os.environ.get(CRASH_ENV)
        remote = ray.remote(execute_run).options(
            num_cpus=sweep.num_cpus, num_gpus=sweep.num_gpus, max_retries=sweep.max_retries,
            retry_exceptions=True, name="nevis-bench-run",
        )
        pending = {remote.remote(run.values, int(crash) if crash else None): run for run in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as error:  # retries exhausted: the task raised, or its worker kept dying
                message = str(error).strip().splitlines()
                result = {"name": run.name, "status": "failed", "error": message[-1] if message else repr(error)}
            results[run.name] = result
            log(f"  {run.name}: {result['status']}" + (f" ({result['error']})" if "error" in result else ""))
    finally:
        if started_here:
            ray.shutdown()
    return results
