"""Fault drill: kill a run with SIGKILL at N random moments, resume each time, compare with a clean run.

Issue 13. The drill runs a small stream once uninterrupted (the reference), then again in one or
more *rounds*, each a fresh run directory and a fresh data directory (so that the task cache is
built by the run itself and a kill during cache preparation is possible). In a round the run is
started with ``python -m nevis_bench.cli run``; at each planned kill it is killed with SIGKILL and
continued with ``python -m nevis_bench.cli resume RUN_DIR`` (the ``nevis-bench resume`` entry
point), until it completes. Every finished round is compared with the reference:

* records: ``events.jsonl`` without ``wall_seconds`` and ``run_id``;
* ``summary.json`` without ``wall_seconds`` and ``run_id``;
* predictions: every array of every ``predictions/*.npz``;
* the task cache: every task's manifest (content hashes, counts, shapes) without its creation time.

How a kill moment is chosen. The drill watches the files of the running process (polling every
millisecond; it never imports the harness) and names the phase the process is in:

* ``cache``: the process has written its ``running`` summary and the task cache is not complete
  (a source being generated, or a ``.writing-*`` staging folder being filled);
* ``train``: inside a train event (model build, steps, validations), no checkpoint being written;
* ``checkpoint``: ``checkpoints/.latest.pt.tmp-<pid of the process>`` exists (a checkpoint write,
  within an event or at an event boundary, is in progress);
* ``final_eval``: every in-stream record is written and a final-evaluation event is in progress.

The N kills are spread evenly over the four phases (seeded shuffle); a round takes at most one kill
of each phase, in the order the phases occur. Each kill waits for its phase, then a random time
into it (a seeded fraction of that phase's duration in the reference run; for ``train`` a randomly
chosen train event, for ``checkpoint`` the k-th checkpoint write of the process, k random; every
second ``cache`` kill waits for a task's ``.writing-*`` staging folder, a few ms into it). At that
moment the process is frozen with SIGSTOP, its phase is read again from the files and, if it is
still in the planned phase, it is killed with SIGKILL, so the phase recorded for every kill is
exactly the state the process died in. A moment that missed its phase (the phase ended first) is
let go with SIGCONT and retried, in this process or in a later round; a process that finished
before its kill does not count as a kill. The drill goes on until N real kills happened.

Usage:
    python scripts/fault_drill.py --kills 20 --seed 0          # writes results/benchmarks/faults.md
    python scripts/fault_drill.py --kills 3 --output /tmp/faults.md -o max_steps=4 -o min_steps=4

Exit status 0 when N kills, N resumes and 0 differences; 1 otherwise (a difference, a failed
resume, or fewer kills than asked).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
PHASES = ("cache", "train", "checkpoint", "final_eval")
VOLATILE = ("wall_seconds", "run_id")
DEFAULT_OVERRIDES = ("max_steps=12", "min_steps=12", "eval_every_epochs=4.0", "checkpoint_every_steps=2")
POLL_SECONDS = 0.001
PROCESS_TIMEOUT = 900.0


# -- the run's files -----------------------------------------------------------------------------


def record_count(run_dir: pathlib.Path) -> int:
    """Complete lines of ``events.jsonl`` (a torn last line does not count)."""
    try:
        return (run_dir / "events.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def complete_tasks(data_dir: pathlib.Path) -> int:
    cache = data_dir / "cache"
    return len(list(cache.glob("*/*/COMPLETE"))) if cache.exists() else 0


def staging_folders(data_dir: pathlib.Path) -> list[pathlib.Path]:
    cache = data_dir / "cache"
    return sorted(cache.glob("*/.writing-*")) if cache.exists() else []


def leftover_temporaries(run_dir: pathlib.Path, data_dir: pathlib.Path) -> list[str]:
    """Temporary files and staging folders left behind (by killed processes) after a round."""
    found = [str(p.relative_to(run_dir.parent)) for p in run_dir.rglob(".*tmp*")]
    found += [str(p.relative_to(data_dir)) for p in staging_folders(data_dir)]
    return sorted(found)


@dataclass
class Plan:
    """What the reference run showed: the events in order and how long each phase took."""

    event_types: list[str]  # "train", "predict" or "final_eval" per event index
    num_tasks: int
    event_tasks: list[str] = field(default_factory=list)
    cache_seconds: float = 0.0
    event_seconds: dict[int, float] = field(default_factory=dict)
    final_eval_seconds: float = 0.0
    checkpoint_writes_from: dict[int, int] = field(default_factory=dict)  # records -> writes from there on
    checkpoint_write_seconds: float = 0.01  # the longest checkpoint write seen

    @property
    def in_stream(self) -> int:
        return sum(t != "final_eval" for t in self.event_types)

    @property
    def train_events(self) -> list[int]:
        return [i for i, t in enumerate(self.event_types) if t == "train"]


class Watched:
    """The files of one process of a run, read to name the phase it is in."""

    def __init__(self, process: subprocess.Popen, started: float, run_dir: pathlib.Path, data_dir: pathlib.Path,
                 plan: Plan | None):
        self.process = process
        self.started = started
        self.run_dir = run_dir
        self.data_dir = data_dir
        self.plan = plan
        self.temporary = run_dir / "checkpoints" / f".latest.pt.tmp-{process.pid}"

    def in_run_loop(self) -> bool:
        """Whether this process has written its ``running`` summary (it is past start-up)."""
        try:
            return (self.run_dir / "summary.json").stat().st_mtime > self.started
        except FileNotFoundError:
            return False

    def phase(self) -> tuple[str, int]:
        """(phase, records written)."""
        if self.temporary.exists():
            return "checkpoint", record_count(self.run_dir)
        if not self.in_run_loop():
            return "startup", record_count(self.run_dir)
        if complete_tasks(self.data_dir) < self.plan.num_tasks:
            return "cache", record_count(self.run_dir)
        records = record_count(self.run_dir)
        if records < self.plan.in_stream:
            return ("train" if self.plan.event_types[records] == "train" else "predict"), records
        if records < len(self.plan.event_types):
            return "final_eval", records
        return "finish", records


def launch(args: list[str], log: pathlib.Path) -> tuple[subprocess.Popen, float]:
    """Starts ``python -m nevis_bench.cli ARGS --quiet``; its output goes to ``log`` (.out, .err)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "nevis_bench.cli", *args, "--quiet"], cwd=REPO,
                                   stdout=out, stderr=err)
    return process, started


def error_tail(log: pathlib.Path) -> str:
    try:
        return log.with_suffix(".err").read_text().strip()[-2000:]
    except OSError:
        return ""


def run_args(stream: str, learner: str, overrides: list[str], runs_dir: pathlib.Path, data_dir: pathlib.Path,
             name: str, final_eval: bool) -> list[str]:
    args = ["run", "--stream", stream, "--learner", learner, "--runs-dir", str(runs_dir), "--data-dir", str(data_dir),
            "--run-name", name]
    if final_eval:
        args.append("--final-eval")
    for item in overrides:
        args += ["-o", item]
    return args


# -- the reference -------------------------------------------------------------------------------


def reference_run(args: list[str], run_dir: pathlib.Path, data_dir: pathlib.Path) -> tuple[Plan, float]:
    """Runs the reference uninterrupted, watching it; returns the plan it shows and its wall time."""
    process, started = launch(args, run_dir.parent.parent / "logs" / "reference")
    watched = Watched(process, started, run_dir, data_dir, None)
    timeline: list[tuple[float, bool, int, int, bool]] = []  # (time, in run loop, tasks cached, records, writing)
    last = None
    while process.poll() is None:
        state = (watched.in_run_loop(), complete_tasks(data_dir), record_count(run_dir), watched.temporary.exists())
        if state != last:
            timeline.append((time.time(), *state))
            last = state
        if time.time() - started > PROCESS_TIMEOUT:
            process.kill()
            raise RuntimeError("the reference run did not finish in time")
        time.sleep(POLL_SECONDS)
    if process.returncode != 0:
        raise RuntimeError(f"the reference run failed (exit {process.returncode}):\n{error_tail(run_dir.parent.parent / 'logs' / 'reference')}")
    wall = time.time() - started
    events = read_events(run_dir)
    plan = Plan(
        event_types=["final_eval" if e.get("final_eval") else e["event_type"] for e in events],
        num_tasks=complete_tasks(data_dir),
        event_tasks=[e["task_key"] for e in events],
    )
    end = time.time()
    # cache: from the running summary until every task is cached
    cache_start = next((t for t, loop, _, _, _ in timeline if loop), None)
    cache_end = next((t for t, loop, tasks, _, _ in timeline if loop and tasks == plan.num_tasks), None)
    if cache_start is not None and cache_end is not None:
        plan.cache_seconds = cache_end - cache_start
    # event i: from the first moment with i records on disk to the first with i + 1
    first_at: dict[int, float] = {}
    for t, loop, tasks, records, _ in timeline:
        if loop and tasks == plan.num_tasks:
            first_at.setdefault(records, t)
    first_at.setdefault(len(events), end)
    for i in range(len(events)):
        if i in first_at and i + 1 in first_at:
            plan.event_seconds[i] = first_at[i + 1] - first_at[i]
    plan.final_eval_seconds = sum(plan.event_seconds.get(i, 0.0) for i, kind in enumerate(plan.event_types)
                                  if kind == "final_eval")
    writes_at = [timeline[i][3] for i in range(len(timeline)) if timeline[i][4] and (i == 0 or not timeline[i - 1][4])]
    for start in range(len(events) + 1):
        plan.checkpoint_writes_from[start] = sum(r >= start for r in writes_at)
    lengths = [timeline[i + 1][0] - timeline[i][0] for i in range(len(timeline) - 1)
               if timeline[i][4] and not timeline[i + 1][4]]
    plan.checkpoint_write_seconds = max(lengths, default=0.01)
    return plan, wall


# -- kills ---------------------------------------------------------------------------------------


@dataclass
class Kill:
    round: int
    phase: str
    process: str  # "run" or "resume"
    seconds_after_start: float
    records: int
    detail: str
    moment: str = ""


def stop_and_kill_if(watched: Watched, target: str) -> tuple[str, int, str] | None:
    """Freezes the process (SIGSTOP), reads its phase; kills it (SIGKILL) when that is ``target``, else
    lets it go on (SIGCONT). Returns (phase, records, what it was doing) of a kill, or None (missed)."""
    process = watched.process
    try:
        process.send_signal(signal.SIGSTOP)
    except ProcessLookupError:
        return None
    time.sleep(0.002)  # let the stop take effect before reading the files
    phase, records = watched.phase()
    if phase == target and process.poll() is None:
        detail = describe(watched, phase, records)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return phase, records, detail
    try:
        process.send_signal(signal.SIGCONT)
    except ProcessLookupError:
        pass
    return None


def describe(watched: Watched, phase: str, records: int) -> str:
    plan = watched.plan
    if phase == "cache":
        staging = staging_folders(watched.data_dir)
        done = complete_tasks(watched.data_dir)
        if staging:
            return f"writing task `{staging[0].parent.name}` into its staging folder ({done}/{plan.num_tasks} tasks cached)"
        return f"generating a task ({done}/{plan.num_tasks} tasks cached)"

    def event(i: int) -> str:
        if i >= len(plan.event_types):
            return "after the last event"
        kind = {"final_eval": "final-evaluation predict"}.get(plan.event_types[i], plan.event_types[i])
        return f"{kind} event {i} (`{plan.event_tasks[i]}`)"

    if phase == "checkpoint":
        try:
            size = watched.temporary.stat().st_size
        except FileNotFoundError:
            size = 0
        return f"`{watched.temporary.name}` at {size} bytes; {records} records, then {event(records)}"
    return event(records)


def supervise(watched: Watched, target: str | None, plan: Plan, rng: random.Random, staging: bool = False):
    """Waits for ``target``'s moment and kills the process there. With ``staging``, a ``cache`` kill
    waits for a task's staging folder (the task being written) instead of a time into the phase.

    Returns (phase, records, detail, moment) of the kill; "unreachable" when the process went past the target's
    phase (it keeps running); "ended" when the process exited first."""
    process = watched.process
    entered: float | None = None
    delay = 0.0
    train_event: int | None = None
    writes_seen = 0
    write_wanted = 0
    writing = False
    retry = missed = False
    start_records = record_count(watched.run_dir)
    if target == "checkpoint":
        remaining = plan.checkpoint_writes_from.get(start_records, 1)
        write_wanted = rng.randint(1, max(1, int(remaining * 0.8)))
    if target == "train":
        candidates = [i for i in plan.train_events if i >= start_records]
        if not candidates:
            return "unreachable"
        train_event = rng.choice(candidates)
    while process.poll() is None:
        if time.time() - watched.started > PROCESS_TIMEOUT:
            process.kill()
            raise RuntimeError("a drilled process did not finish in time")
        if target is None:
            time.sleep(0.05)
            continue
        phase, records = watched.phase()
        if target == "checkpoint":
            if phase == "checkpoint" and not writing:
                writes_seen += 1
                if writes_seen >= write_wanted:
                    delay = rng.uniform(0.0, plan.checkpoint_write_seconds)
                    time.sleep(delay)
                    killed = stop_and_kill_if(watched, "checkpoint")
                    if killed:
                        return (*killed, f"checkpoint write {writes_seen} of this process, +{1000 * delay:.1f} ms")
            writing = phase == "checkpoint"
            time.sleep(POLL_SECONDS)
            continue
        if phase == "finish" or (target == "cache" and phase not in ("startup", "cache")):
            return "unreachable"
        if target == "train" and records > train_event:  # that event ended: a later one, if any
            later = [i for i in plan.train_events if i >= records]
            if not later:
                return "unreachable"
            train_event = rng.choice(later)
            entered = None
        inside = phase == target or (phase == "checkpoint" and target != "cache")
        if target == "train":
            inside = inside and records == train_event
        elif target == "cache" and staging:
            inside = inside and bool(staging_folders(watched.data_dir))
        elif target == "final_eval":
            inside = inside and plan.in_stream <= records < len(plan.event_types)
        now = time.time()
        if inside and entered is None:
            entered = now
            length = {"cache": plan.cache_seconds, "final_eval": plan.final_eval_seconds}.get(
                target, plan.event_seconds.get(train_event or 0, 1.0))
            # after a missed moment (it fell on a checkpoint write), a new one soon after
            delay = rng.uniform(0.0, 0.02 if retry else 0.003 if staging else 0.8 * max(length, 0.01))
            missed, retry = retry, False
        elif not inside:
            entered = None
        if entered is not None and now - entered >= delay:
            killed = stop_and_kill_if(watched, target)
            if killed:
                where = {"cache": "the cache phase", "final_eval": "the final evaluation"}.get(target, f"event {train_event}")
                if target == "cache" and staging:
                    where = "a staging folder's appearance"
                return (*killed, f"+{1000 * delay:.0f} ms after {'a missed moment' if missed else where}")
            entered, retry = None, True  # missed (e.g. a checkpoint write was under way): a new moment from here
        time.sleep(POLL_SECONDS)
    return "ended"


# -- comparison ----------------------------------------------------------------------------------


def read_events(run_dir: pathlib.Path) -> list[dict]:
    events = []
    path = run_dir / "events.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            events.append(json.loads(line))
    return events


def without(record: dict, keys=VOLATILE) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def compare(reference: pathlib.Path, drilled: pathlib.Path, reference_data: pathlib.Path,
            drilled_data: pathlib.Path) -> list[str]:
    """Every difference between a drilled run and the reference, one line each."""
    problems = []
    ref_events = [without(e) for e in read_events(reference)]
    try:
        got_events = [without(e) for e in read_events(drilled)]
    except json.JSONDecodeError as error:
        return [f"events.jsonl: not valid JSON lines ({error})"]
    if len(ref_events) != len(got_events):
        problems.append(f"events.jsonl: {len(got_events)} records, reference {len(ref_events)}")
    for i, (a, b) in enumerate(zip(ref_events, got_events)):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            problems.append(f"events.jsonl record {i}: {', '.join(keys)} differ")
    ref_summary = without(json.loads((reference / "summary.json").read_text()))
    got_summary = without(json.loads((drilled / "summary.json").read_text()))
    for key in sorted(set(ref_summary) | set(got_summary)):
        if ref_summary.get(key) != got_summary.get(key):
            problems.append(f"summary.json {key}: {got_summary.get(key)!r}, reference {ref_summary.get(key)!r}")
    ref_files = sorted(p.name for p in (reference / "predictions").glob("*.npz"))
    got_files = sorted(p.name for p in (drilled / "predictions").glob("*.npz"))
    if ref_files != got_files:
        problems.append(f"predictions: files {got_files}, reference {ref_files}")
    for name in sorted(set(ref_files) & set(got_files)):
        try:
            with np.load(reference / "predictions" / name) as a, np.load(drilled / "predictions" / name) as b:
                if sorted(a.files) != sorted(b.files):
                    problems.append(f"predictions/{name}: arrays {sorted(b.files)}, reference {sorted(a.files)}")
                for array in sorted(set(a.files) & set(b.files)):
                    x, y = a[array], b[array]
                    if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                        problems.append(f"predictions/{name}[{array}] differs")
        except Exception as error:  # noqa: BLE001 - a torn file is a difference, not a crash of the drill
            problems.append(f"predictions/{name}: cannot be read ({type(error).__name__}: {error})")
    ref_tasks = {p.parent.parent.name + "/" + p.parent.name: p for p in (reference_data / "cache").glob("*/*/COMPLETE")}
    got_tasks = {p.parent.parent.name + "/" + p.parent.name: p for p in (drilled_data / "cache").glob("*/*/COMPLETE")}
    if sorted(ref_tasks) != sorted(got_tasks):
        problems.append(f"task cache: entries {sorted(got_tasks)}, reference {sorted(ref_tasks)}")
    for key in sorted(set(ref_tasks) & set(got_tasks)):
        a = without(json.loads((ref_tasks[key].parent / "manifest.json").read_text()), ("created",))
        b = without(json.loads((got_tasks[key].parent / "manifest.json").read_text()), ("created",))
        if a != b:
            problems.append(f"task cache {key}: manifest differs")
    return problems


# -- the drill -----------------------------------------------------------------------------------


@dataclass
class DrillResult:
    stream: str
    learner: str
    overrides: list[str]
    kills_asked: int
    seed: int
    kills: list[Kill] = field(default_factory=list)
    resumes: int = 0
    rounds: int = 0
    carried_over: int = 0
    differences: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    superseded: int = 0  # records redone after a resume (kept in events.superseded.jsonl)
    reference_seconds: float = 0.0
    drill_seconds: float = 0.0
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return (len(self.kills) == self.kills_asked and self.resumes == len(self.kills) and not self.differences
                and not self.failures)


def phase_plan(kills: int, rng: random.Random) -> list[str]:
    """N phases spread evenly over the four, in a seeded order."""
    extra = kills % len(PHASES)  # which phases get the kills beyond full sets is random too
    phases = [PHASES[i % len(PHASES)] for i in range(kills - extra)] + rng.sample(PHASES, extra)
    rng.shuffle(phases)
    return phases


def drill(kills: int = 20, seed: int = 0, stream: str = "synthetic-debug", learner: str = "finetune_prev",
          overrides: list[str] | None = None, final_eval: bool = True, workdir: pathlib.Path | None = None,
          max_rounds: int | None = None, log=print) -> DrillResult:
    """Runs the drill; see the module docstring. ``workdir`` keeps the runs (default: removed)."""
    overrides = list(DEFAULT_OVERRIDES if overrides is None else overrides)
    rng = random.Random(seed)
    result = DrillResult(stream, learner, overrides, kills, seed)
    own = workdir is None
    work = pathlib.Path(tempfile.mkdtemp(prefix="fault-drill-")) if own else pathlib.Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        reference_dir = work / "reference" / "runs" / "reference"
        reference_data = work / "reference" / "data"
        started = time.time()
        plan, result.reference_seconds = reference_run(
            run_args(stream, learner, overrides, reference_dir.parent, reference_data, "reference", final_eval),
            reference_dir, reference_data)
        result.plan = plan
        log(f"reference: {len(plan.event_types)} events, {result.reference_seconds:.1f} s "
            f"(cache {plan.cache_seconds:.2f} s, {plan.checkpoint_writes_from.get(0, 0)} checkpoint writes seen)")
        if final_eval and "final_eval" not in plan.event_types:
            raise RuntimeError("the reference run has no final-evaluation events")
        remaining = Counter(phase_plan(kills, rng))
        max_rounds = max_rounds or 2 * kills + 4
        while sum(remaining.values()) > 0 and result.rounds < max_rounds and not result.failures:
            result.rounds += 1
            number = result.rounds
            middle = [p for p in ("train", "checkpoint") if remaining[p] > 0]
            rng.shuffle(middle)
            targets = ["cache"] * (remaining["cache"] > 0) + middle + ["final_eval"] * (remaining["final_eval"] > 0)
            folder = work / f"round{number:02d}"
            run_dir, data_dir = folder / "runs" / "drilled", folder / "data"
            logs = folder / "logs"
            process, launched = launch(run_args(stream, learner, overrides, run_dir.parent, data_dir, "drilled", final_eval),
                                       logs / "0-run")
            kind = "run"
            log(f"round {number}: planned {', '.join(targets)}")
            for target in targets:
                # every second cache kill falls while a task is written into its staging folder
                staging = target == "cache" and sum(k.phase == "cache" for k in result.kills) % 2 == 1
                outcome = supervise(Watched(process, launched, run_dir, data_dir, plan), target, plan, rng, staging)
                if outcome in ("unreachable", "ended"):
                    result.carried_over += 1
                    log(f"  {target}: {'phase passed' if outcome == 'unreachable' else 'the run finished'} "
                        "before the moment; no kill, carried over")
                    if outcome == "ended":
                        break
                    continue
                phase, records, detail, moment = outcome
                if process.returncode != -signal.SIGKILL:
                    raise RuntimeError(f"process {process.pid} was not killed by SIGKILL (exit {process.returncode})")
                kill = Kill(number, phase, kind, time.time() - launched, records, detail, moment)
                result.kills.append(kill)
                remaining[phase] -= 1
                log(f"  kill {len(result.kills)}: {phase}: {detail}; {moment}; {kill.seconds_after_start:.2f} s into the {kind}")
                result.resumes += 1
                process, launched = launch(["resume", str(run_dir)], logs / f"{result.resumes}-resume")
                kind = "resume"
            supervise(Watched(process, launched, run_dir, data_dir, plan), None, plan, rng)
            last_log = logs / (f"{result.resumes}-resume" if kind == "resume" else "0-run")
            if process.returncode != 0:
                result.failures.append(f"round {number}: `{kind}` exited {process.returncode}: {error_tail(last_log)}")
                log(f"  FAILED: {result.failures[-1]}")
                break
            problems = compare(reference_dir, run_dir, reference_data, data_dir)
            result.differences += [f"round {number}: {p}" for p in problems]
            leftovers = leftover_temporaries(run_dir, data_dir)
            superseded = run_dir / "events.superseded.jsonl"
            result.superseded += (superseded.read_bytes().count(b"\n") if superseded.exists() else 0)
            result.leftovers += [f"round {number}: {p}" for p in leftovers]
            log(f"  complete: {len(problems)} differences, {len(leftovers)} temporary files left behind")
        result.drill_seconds = time.time() - started
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


# -- the report ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(result: DrillResult, command: str) -> str:
    counts = Counter(k.phase for k in result.kills)
    lines = [
        "# Fault drill",
        "",
        (f"Produced by `{command}` on {time.strftime('%Y-%m-%d', time.gmtime())}; machine: {cpu_model()}, "
         f"{os.cpu_count()} cores, Python {platform.python_version()}, load average (1 min) when written: "
         f"{os.getloadavg()[0]:.1f}. Issue 13: a run killed with SIGKILL at random moments and resumed each time "
         "must end with the records, summary and predictions of an uninterrupted run."),
        "",
        "| setting | value |",
        "|---|---|",
        f"| stream | `{result.stream}` with `--final-eval` |",
        f"| learner | `{result.learner}` |",
        f"| overrides | {', '.join(f'`{o}`' for o in result.overrides) or 'none'} |",
        f"| seed of the kill moments | {result.seed} |",
        (f"| events per run | {len(result.plan.event_types) if result.plan else '?'} "
         f"({', '.join(result.plan.event_types) if result.plan else ''}) |"),
        f"| reference run (uninterrupted) | {result.reference_seconds:.1f} s wall |",
        (f"| drill, all rounds | {result.drill_seconds:.0f} s wall, {result.rounds} round(s) "
         "(each a fresh run directory and data directory) |"),
        "",
        "| result | value |",
        "|---|---|",
        f"| kills (SIGKILL) asked | {result.kills_asked} |",
        f"| kills done | **{len(result.kills)}** ({', '.join(f'{p}: {counts[p]}' for p in PHASES)}) |",
        f"| resumes (`nevis-bench resume RUN_DIR`) | **{result.resumes}** |",
        f"| planned kills carried over to a later round (their phase passed, or the run finished, first) | {result.carried_over} |",
        f"| failed resumes or runs | {len(result.failures)} |",
        f"| differences from the uninterrupted run (records, summary, predictions, task cache) | **{len(result.differences)}** |",
        f"| temporary files left behind after completion (informational) | {len(result.leftovers)} |",
        f"| records redone after a resume, kept in `events.superseded.jsonl` (informational) | {result.superseded} |",
        "",
        "## Kills",
        "",
        "| # | round | phase | process | seconds after its start | moment | records on disk | what was being done |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, kill in enumerate(result.kills, 1):
        lines.append(f"| {i} | {kill.round} | {kill.phase} | {kill.process} | {kill.seconds_after_start:.2f} | {kill.moment} | "
                     f"{kill.records} | {kill.detail} |")
    lines += ["", "## Differences", ""]
    lines += [f"- {d}" for d in result.differences] or ["None."]
    if result.failures:
        lines += ["", "## Failures", ""] + [f"- {f}" for f in result.failures]
    lines += ["", "## Temporary files left behind", ""]
    lines += [f"- `{p}`" for p in result.leftovers] or ["None."]
    lines += [
        "",
        "## Method",
        "",
        ("A round starts `python -m nevis_bench.cli run` in a fresh run directory with a fresh data directory, so the "
         "run builds the task cache itself. The drill watches the process's files every millisecond and names its "
         "phase: `cache` (running summary written, task cache not complete), `train` (inside a train event, no "
         "checkpoint being written), `checkpoint` (`checkpoints/.latest.pt.tmp-<pid>` exists), `final_eval` (every "
         "in-stream record written, a final-evaluation event in progress). Each kill waits for its phase and then a "
         "seeded random time into it (a fraction of that phase's duration in the reference run; for `checkpoint` the "
         "k-th checkpoint write, k random; every second `cache` kill waits for a task's `.writing-*` staging folder "
         "and then 0-3 ms), freezes the process with SIGSTOP, reads the phase again and sends SIGKILL "
         "only if it is still the planned phase (otherwise SIGCONT and a later try), so each phase above is the state "
         "the process died in. After each kill: `python -m nevis_bench.cli resume RUN_DIR`. A round takes at most one "
         "kill per phase; rounds repeat until all kills happened. Each finished round is compared with the reference: "
         "`events.jsonl` and `summary.json` without `wall_seconds` and `run_id`, every array of `predictions/*.npz`, "
         "and each cached task's manifest (content hashes) without its creation time."),
        "",
        "Reproduce:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="number of SIGKILLs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--stream", default="synthetic-debug")
    parser.add_argument("--learner", default="finetune_prev")
    parser.add_argument("-o", "--override", action="append", default=None, metavar="KEY=VALUE",
                        help=f"run setting or hyperparameter (default: {' '.join(DEFAULT_OVERRIDES)})")
    parser.add_argument("--no-final-eval", action="store_true")
    parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder, removed)")
    parser.add_argument("--output", default=str(REPO / "results" / "benchmarks" / "faults.md"))
    parser.add_argument("--json", default=None, help="also write the result as JSON here")
    options = parser.parse_args(argv)
    if options.kills < 1:
        parser.error("--kills must be at least 1")
    result = drill(options.kills, options.seed, options.stream, options.learner, options.override,
                   not options.no_final_eval, pathlib.Path(options.workdir) if options.workdir else None)
    command = "python scripts/fault_drill.py " + " ".join(
        [f"--kills {options.kills}", f"--seed {options.seed}"]
        + ([f"--stream {options.stream}"] if options.stream != "synthetic-debug" else [])
        + ([f"--learner {options.learner}"] if options.learner != "finetune_prev" else [])
        + [f"-o {o}" for o in (options.override or [])]
        + (["--no-final-eval"] if options.no_final_eval else []))
    output = pathlib.Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report(result, command))
    if options.json:
        data = {
            "kills": [vars(k) for k in result.kills], "resumes": result.resumes, "rounds": result.rounds,
            "differences": result.differences, "failures": result.failures, "leftovers": result.leftovers,
            "carried_over": result.carried_over, "superseded": result.superseded, "ok": result.ok,
        }
        pathlib.Path(options.json).write_text(json.dumps(data, indent=1))
    print(f"{len(result.kills)} kills ({dict(Counter(k.phase for k in result.kills))}), {result.resumes} resumes, "
          f"{len(result.differences)} differences, {len(result.failures)} failures; wrote {output}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
