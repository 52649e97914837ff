"""Encoder comparison: one run per (encoder, learner), then a table and an error-vs-FLOPs figure.

The runs are named and reused exactly as ``nevis-bench run`` and ``nevis-bench sweep`` name and reuse
them (:func:`nevis_bench.run.config.run_name`, :func:`nevis_bench.run.sweep.execute_run`).
"""

from __future__ import annotations

import pathlib

import pandas as pd


def compare_encoders(encoders: list[str], learners: list[str], stream: str, out_dir, runs_dir, data_dir,
                     stream_options: dict | None = None, learner_config: dict | None = None,
                     encoder_weights: str | None = None, seed: int = 0, progress: bool = False,
                     stop_year: int | None = None) -> pd.DataFrame:
    """Run every (encoder, learner) pair and write the table and figure; returns the table.

    ``stop_year`` keeps the tasks before that year (e.g. only the target tasks of a stream whose later
    tasks served as the pre-training source)."""
    from nevis_bench.records.reader import read_run
    from nevis_bench.reports.formatting import write_table
    from nevis_bench.reports.tables import runs_table
    from nevis_bench.run import runner
    from nevis_bench.run.config import run_name
    from nevis_bench.run.sweep import execute_run, run_status

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for encoder in encoders:
        for learner in learners:
            config = {**(learner_config or {}), "encoder": encoder}
            if encoder_weights:
                config["encoder_weights"] = encoder_weights
            values = {
                "stream": stream, "learner": learner, "runs_dir": str(runs_dir), "data_dir": str(data_dir),
                "progress": progress, "seed": seed, "learner_config": config,
                "stream_options": dict(stream_options or {}),
                **({"stop_year": stop_year} if stop_year is not None else {}),
            }
            name = run_name(runner.validate(values).config)
            run_path = pathlib.Path(runs_dir) / name
            if run_status(run_path) != "complete":  # new, or interrupted/failed earlier: start or continue
                execute_run({**values, "run_name": name})
            run = read_run(run_path)
            row = runs_table([run], {run.path: name}).iloc[0]
            rows.append({"encoder": encoder, "learner": learner, "average_error": row["average_error"],
                         "headline_flops": row["headline_flops"], "inference_flops": row["inference_flops"],
                         "run": name})
    table = pd.DataFrame(rows)
    write_table(table, out, "compare_encoders")
    (out / "compare_encoders.png").write_bytes(_figure(table, stream))
    return table


def _figure(table: pd.DataFrame, stream: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nevis_bench.reports.figures import series_colours

    colours = series_colours(sorted(table["encoder"].unique()))
    markers = dict(zip(sorted(table["learner"].unique()), "osD^v<>pP*X"))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for _, r in table.iterrows():
        ax.scatter(r["headline_flops"], r["average_error"], color=colours[r["encoder"]],
                   marker=markers[r["learner"]], s=50)
    for enc, c in colours.items():
        ax.scatter([], [], color=c, label=f"encoder {enc}")
    for lrn, m in markers.items():
        ax.scatter([], [], color="grey", marker=m, label=f"learner {lrn}")
    ax.set_xscale("log")
    ax.set_xlabel("headline FLOPs (train + search + selection)")
    ax.set_ylabel("average error")
    ax.set_title(f"encoders x learners on {stream}")
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
