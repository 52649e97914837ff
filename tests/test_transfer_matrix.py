"""``nevis-bench transfer-matrix``: source-then-target runs, the matrix, its table and heatmap."""

import pandas as pd
import pytest

from nevis_bench.cli import main
from nevis_bench.reports.transfer import long_table, transfer_from_errors

DATASETS = ["coil20", "umist", "butterflies"]  # small synthetic stand-ins


def test_transfer_matrix_on_three_synthetic_datasets(tmp_path, capsys):
    argv = ["transfer-matrix", "--datasets", ",".join(DATASETS), "--stream-family", "synthetic",
            "-o", "max_steps=1", "-o", "min_steps=1", "-o", "image_size=16", "-o", "input_size=16",
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "tm")]
    assert main(argv) == 0
    out = tmp_path / "tm"
    table = pd.read_csv(out / "transfer_matrix.csv")
    assert len(table) == 9 and set(table["source"]) == set(table["target"]) == set(DATASETS)
    errors = pd.read_csv(out / "errors.csv", index_col=0)
    assert list(errors.index) == list(errors.columns) == DATASETS and errors.notna().all().all()
    diagonal = table[table["source"] == table["target"]]
    assert (diagonal["transfer"] == 0).all()
    assert (out / "transfer_matrix.png").read_bytes().startswith(b"\x89PNG")
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 9 and any("coil20--to--umist" in name for name in runs)
    # a pair run trains the source, then the target, and the cell is the target's error
    pair = next((tmp_path / "runs").glob("*coil20--to--umist*"))
    events = (pair / "events.jsonl").read_text().splitlines()
    assert len(events) == 4 and '"task_key": "umist"' in events[-1]
    # a second call reads the complete runs again: same matrix
    assert main(argv) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "errors.csv", index_col=0), errors)


def test_transfer_is_the_error_minus_the_target_trained_alone():
    errors = pd.DataFrame([[0.5, 0.2], [0.4, 0.3]], index=["a", "b"], columns=["a", "b"])
    transfer = transfer_from_errors(errors)
    assert transfer.loc["b", "a"] == pytest.approx(-0.1) and transfer.loc["a", "b"] == pytest.approx(-0.1)
    rows = long_table(errors).set_index(["source", "target"])
    assert rows.loc[("a", "b"), "error_alone"] == 0.3


def test_transfer_matrix_refuses_fewer_than_two_datasets(tmp_path, capsys):
    assert main(["transfer-matrix", "--datasets", "mnist", "--output", str(tmp_path)]) == 2
    assert "at least two" in capsys.readouterr().err
