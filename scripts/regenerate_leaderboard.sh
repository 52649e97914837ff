#!/usr/bin/env bash
# Rerun the reference learners on a synthetic stream with three seeds on CPU, then rebuild the
# leaderboard tables and figures from the run records.
#
#   scripts/regenerate_leaderboard.sh                      # independent, finetune_prev + every registered learner
#   scripts/regenerate_leaderboard.sh independent replay   # only these learners
#   LEARNERS="independent finetune_prev" scripts/regenerate_leaderboard.sh
#   LEADERBOARD_ONLY=1 scripts/regenerate_leaderboard.sh   # no runs: rebuild from the records in RUNS_DIR
#
# Settings (environment): STREAM (synthetic-short), SEEDS ("0 1 2"), RUNS_DIR (results/runs),
# OUT_DIR (results), RUN_ARGS (extra arguments for `nevis-bench run`, e.g. "--final-eval"),
# FRESH=1 (delete this script's run directories first instead of reusing them).
#
# Each run goes to RUNS_DIR/<stream>--<learner>--seed<seed>. A complete run there is reused, an
# unfinished or failed one is resumed, so the script can be interrupted and started again. The
# leaderboard is rebuilt from every run under RUNS_DIR: OUT_DIR/leaderboard.{md,csv,tex}, the other
# tables, OUT_DIR/figures/*.png and OUT_DIR/report.html. Runs that fail are listed apart in the
# report and make the script exit with status 1 once the leaderboard is written. When OUT_DIR is results/,
# the table in README.md (between <!-- leaderboard --> markers) is replaced by the new one.
# RUNS_DIR holds raw run records (checkpoints, predictions): do not commit it.
set -euo pipefail

cd "$(dirname "$0")/.."
STREAM=${STREAM:-synthetic-short}
SEEDS=${SEEDS:-"0 1 2"}
RUNS_DIR=${RUNS_DIR:-results/runs}
OUT_DIR=${OUT_DIR:-results}
RUN_ARGS=${RUN_ARGS:-}
PYTHON=${PYTHON:-python}

if [ $# -gt 0 ]; then
    learners="$*"
elif [ -n "${LEARNERS:-}" ]; then
    learners="$LEARNERS"
else
    # `learners list` prints "<name> <summary>" per line; keep the names, references first, no repeats.
    learners=$({ echo independent; echo finetune_prev; nevis-bench learners list | awk 'NF { print $1 }'; } | awk '!seen[$0]++')
fi

status_of() {  # status in RUN_DIR/summary.json, or "none"
    if [ -f "$1/summary.json" ]; then
        "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$1/summary.json"
    else
        echo none
    fi
}

failures=0
if [ -z "${LEADERBOARD_ONLY:-}" ]; then
    mkdir -p "$RUNS_DIR"
    for learner in $learners; do
        for seed in $SEEDS; do
            name="${STREAM}--${learner}--seed${seed}"
            run_dir="$RUNS_DIR/$name"
            if [ -n "${FRESH:-}" ]; then
                rm -rf -- "$run_dir"
            fi
            if [ -d "$run_dir" ]; then
                status=$(status_of "$run_dir")
                if [ "$status" = complete ]; then
                    echo "== $name: complete, reused"
                    continue
                fi
                echo "== $name: $status, resuming"
                command=(nevis-bench resume "$run_dir" --quiet)
            else
                echo "== $name"
                # shellcheck disable=SC2206  # RUN_ARGS is a list of words on purpose
                command=(nevis-bench run --stream "$STREAM" --learner "$learner" --seed "$seed" --device cpu
                         --runs-dir "$RUNS_DIR" --run-name "$name" --quiet $RUN_ARGS)
            fi
            if ! "${command[@]}"; then
                echo "!! $name did not complete; see $run_dir" >&2
                failures=$((failures + 1))
            fi
        done
    done
fi

nevis-bench leaderboard "$RUNS_DIR" -o "$OUT_DIR"
# The README shows the leaderboard table between its markers: keep it in step with what was just built.
if [ -f README.md ] && grep -q '<!-- leaderboard -->' README.md && [ "$(realpath "$OUT_DIR")" = "$(realpath results)" ]; then
    "$PYTHON" - "$OUT_DIR/leaderboard.md" README.md <<'PY'
import pathlib, re, sys
table = pathlib.Path(sys.argv[1]).read_text().strip()
readme = pathlib.Path(sys.argv[2])
pattern = re.compile(r"(<!-- leaderboard -->\n).*?(<!-- /leaderboard -->)", re.S)
readme.write_text(pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), readme.read_text()))
PY
fi
if [ "$failures" -gt 0 ]; then
    echo "$failures run(s) did not complete; they are listed in $OUT_DIR/excluded_runs.md" >&2
    exit 1
fi
