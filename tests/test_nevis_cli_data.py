"""``nevis-bench data status | prepare | verify`` on prepared fake archives (no TFDS data, no network)."""

from __future__ import annotations

import numpy as np
import pytest

from nevis_bench import cli
from tests.nevis_archives import write_sketch, write_usps


def run(*argv) -> int:
    return cli.main(list(argv))


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("NEVIS_BENCH_DATA_DIR", str(tmp_path / "default-data"))
    originals = tmp_path / "originals"
    originals.mkdir()
    return tmp_path / "data", originals


def test_status_lists_states_and_commands(env, capsys):
    data_dir, _ = env
    assert run("data", "status", "--stream", "nevis-short", "--stop-year", "2007", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["year", "dataset", "source", "state"]
    assert any(l.startswith("2004  coil100") and "missing" in l and "nevis-bench data prepare coil100 --download" in l for l in lines)
    assert any("uiuc_cars" in l and "nevis-bench data prepare uiuc_cars --from DIR" in l and "uiuc.tar.gz" in l for l in lines)
    assert "5 datasets: 0 cached, 0 available, 5 missing" in out


def test_status_of_a_synthetic_stream(env, capsys):
    data_dir, _ = env
    assert run("data", "status", "--stream", "synthetic-debug", "--data-dir", str(data_dir)) == 0
    assert "2 datasets: 0 cached, 2 available, 0 missing" in capsys.readouterr().out


def test_prepare_verify_and_status(env, capsys):
    data_dir, originals = env
    write_usps(originals)
    assert run("data", "prepare", "usps", "--from", str(originals), "--data-dir", str(data_dir), "--image-size", "16") == 0
    assert (data_dir / "prepared" / "usps" / "status").read_text().strip() == "ready"
    capsys.readouterr()
    assert run("data", "status", "--stream", "nevis-short", "--data-dir", str(data_dir), "--image-size", "16") == 0
    row = next(l for l in capsys.readouterr().out.splitlines() if " usps " in l)
    assert "cached" in row and "prepared:usps" in row
    assert run("data", "verify", "USPS", "--data-dir", str(data_dir), "--image-size", "16") == 0
    assert "usps: OK" in capsys.readouterr().out
    # the default data dir comes from $NEVIS_BENCH_DATA_DIR
    assert run("data", "prepare", "usps", "--from", str(originals), "--no-cache") == 0
    assert (data_dir.parent / "default-data" / "prepared" / "usps" / "metadata.json").exists()
    # a damaged cache is found
    cache_labels = next((data_dir / "cache" / "usps").glob("*/test.labels.npy"))
    np.save(cache_labels, (np.load(cache_labels) + 1) % 10)
    assert run("data", "verify", "usps", "--data-dir", str(data_dir), "--image-size", "16") == 1
    assert "cache: " in capsys.readouterr().out


def test_prepare_errors(env, capsys):
    data_dir, originals = env
    assert run("data", "prepare", "uspss", "--data-dir", str(data_dir)) == 2
    assert "did you mean usps" in capsys.readouterr().err
    assert run("data", "prepare", "usps", "--data-dir", str(data_dir)) == 2
    assert "nevis-bench data prepare usps --from DIR" in capsys.readouterr().err
    assert run("data", "prepare", "usps", "--from", str(originals), "--data-dir", str(data_dir)) == 2
    assert "usps.bz2" in capsys.readouterr().err
    assert run("data", "prepare", "usps", "--stream", "nevis-tiny", "--data-dir", str(data_dir)) == 2
    assert run("data", "prepare", "mnist", "--data-dir", str(data_dir)) == 2
    assert "nevis-bench data prepare mnist --download" in capsys.readouterr().err
    assert run("data", "verify", "usps", "--data-dir", str(data_dir)) == 2
    assert "nothing to verify for usps" in capsys.readouterr().err


def test_prepare_a_stream_does_what_it_can(env, capsys):
    data_dir, originals = env
    write_usps(originals)
    (originals / "sketch").mkdir()
    write_sketch(originals / "sketch")
    code = run("data", "prepare", "--stream", "nevis-short", "--from", str(originals), "--data-dir", str(data_dir), "--stop-year", "2020")
    assert code == 1
    err = capsys.readouterr().err
    assert "usps: prepared" in err and "sketch_dataset: prepared" in err
    assert "still missing" in err and "nevis-bench data prepare mnist --download" in err
    assert "pascal_voc2005" in err and "voc2005_1.tar.gz" in err
    assert "  - USPS" not in err and "  - sketch dataset" not in err
    capsys.readouterr()
    assert run("data", "status", "--stream", "nevis-short", "--stop-year", "2020", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert "2 cached" in out and "(sketch_dataset, " not in out


def test_data_commands_do_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from nevis_bench import cli\n"
        f"assert cli.main(['data', 'status', '--stream', 'nevis-full', '--data-dir', {str(tmp_path)!r}]) == 0\n"
        "import nevis_bench.data.tfds_source, nevis_bench.data.prepared, nevis_bench.data.handlers\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules, 'TF imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "97 datasets" in result.stdout
