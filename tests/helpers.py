"""Shared values for the tests (fixtures live in conftest.py)."""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

TINY_BUDGET = {"max_steps": 12, "min_steps": 4}


def run_values(tmp_path, data_dir, **extra) -> dict:
    """Run settings for a quick run of the debug stream in ``tmp_path``."""
    values = {
        "stream": "synthetic-debug", "learner": "independent", "runs_dir": str(tmp_path / "runs"),
        "data_dir": str(data_dir), "progress": False, "learner_config": dict(TINY_BUDGET),
    }
    values.update(extra)
    return values
