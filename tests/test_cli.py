import re
import subprocess
import sys

import pytest

from nevis_bench.cli import main
from tests.helpers import REPO


def test_streams_list_and_describe(capsys):
    assert main(["streams", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic-full", "synthetic-short", "synthetic-tiny", "synthetic-debug"):
        assert name in out
    assert main(["streams", "describe", "synthetic-tiny"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\s+\d+\s+\d{4}\s", line)]
    assert [row.split()[2] for row in rows] == [
        "mnist", "caltech101", "pascal_2012", "cifar_100", "mnist",
        "isbi_isic_2017_melanoma_classification_challenge", "cub_200",
    ]


def test_learners_list_and_describe(capsys):
    assert main(["learners", "list"]) == 0
    out = capsys.readouterr().out
    assert "independent" in out and "finetune_prev" in out
    assert main(["learners", "describe", "finetune_prev"]) == 0
    assert "learning_rate" in capsys.readouterr().out


def test_bad_input_is_a_usage_error_before_compute(tmp_path, capsys):
    assert main(["run", "--stream", "nope", "--runs-dir", str(tmp_path), "--quiet"]) == 2
    assert "unknown stream 'nope'" in capsys.readouterr().err
    assert main(["run", "-o", "nonsense", "--runs-dir", str(tmp_path)]) == 2
    assert "is not key=value" in capsys.readouterr().err
    assert main(["run", "-o", "colour=blue", "--runs-dir", str(tmp_path)]) == 2
    assert "neither a run setting" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_missing_pretrained_weights_are_a_usage_error_naming_the_file(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    runs = tmp_path / "runs"
    assert main(["run", "--learner", "pruned_finetune", "--stream", "synthetic-debug", "--runs-dir", str(runs), "--quiet"]) == 2
    assert "place the file 'resnet50-11ad3fa6.pth'" in capsys.readouterr().err
    assert not runs.exists() or not list(runs.iterdir())


def test_toml_config_and_overrides(tmp_path, data_dir, capsys):
    config = tmp_path / "run.toml"
    config.write_text('stream = "synthetic-debug"\nlearner = "finetune_prev"\nseed = 4\n[learner_config]\nmax_steps = 6\nmin_steps = 3\n')
    code = main(["run", "--config", str(config), "-o", "learning_rate=0.02", "--runs-dir", str(tmp_path / "runs"),
                 "--data-dir", str(data_dir), "--run-name", "toml", "--quiet"])
    assert code == 0
    import json

    saved = json.loads((tmp_path / "runs" / "toml" / "config.json").read_text())
    assert saved["learner"] == "finetune_prev" and saved["seed"] == 4
    assert saved["learner_config"]["max_steps"] == 6 and saved["learner_config"]["learning_rate"] == 0.02
    out = capsys.readouterr().out
    assert "average error" in out and str(tmp_path / "runs" / "toml") in out
    assert main(["summary", str(tmp_path / "runs" / "toml")]) == 0


def _readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    after = text.split(marker, 1)[1]
    return after.split("```", 2)[1].strip()


def test_readme_example_learner_is_the_example_file_and_runs_as_written(tmp_path, data_dir):
    readme = (REPO / "README.md").read_text()
    example = (REPO / "examples" / "pixel_softmax.py").read_text()
    assert example.strip() in readme
    command = _readme_block("<!-- example-command -->").split()
    assert command[:2] == ["nevis-bench", "run"]
    # run it as written, on the debug stream to keep the test short, with the test's folders
    args = command[2:]
    args[args.index("--stream") + 1] = "synthetic-debug"
    result = subprocess.run(
        [sys.executable, "-m", "nevis_bench.cli", "run", *args, "--runs-dir", str(tmp_path / "runs"),
         "--data-dir", str(data_dir), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "pixel_softmax" in result.stdout and "status:              complete" in result.stdout


def test_readme_commands_match_ci():
    run = _readme_block("<!-- run-command -->")
    test = _readme_block("<!-- test-command -->")
    assert run.endswith("nevis-bench run") and "pip install torch==2.13.0" in run
    assert test.endswith("pytest") and '".[test]"' in test
    assert "test-command" in (REPO / ".ci" / "run").read_text()


HEAVY = ("torch", "tensorflow", "sklearn", "pandas", "matplotlib")
COMMANDS = ("run", "resume", "summary", "streams", "learners", "report", "leaderboard", "data", "pretrain",
            "encoders", "compare-encoders", "sweep", "audit", "presets", "transfer-matrix")


@pytest.mark.parametrize("argv", [["--help"], ["learners", "list"], ["streams", "list"], ["presets", "list"],
                                  ["presets", "describe", "reference"]]
                         + [[command, "--help"] for command in COMMANDS])
def test_help_and_listing_import_none_of_the_heavy_libraries(argv):
    probe = (
        "import sys\nfrom nevis_bench.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def test_learners_list_reads_the_sources_and_matches_the_registry():
    from nevis_bench.registry import LEARNERS, STREAMS

    for registry in (LEARNERS, STREAMS):
        listed = registry.listing()
        assert [name for name, _ in listed] == registry.names()
        assert all(summary == registry.get(name).summary for name, summary in listed)


def test_every_input_error_is_one_line_with_exit_code_2(tmp_path, capsys):
    cases = [
        ["run", "--stream", "nope", "--runs-dir", str(tmp_path)],
        ["summary", str(tmp_path)],
        ["leaderboard", "--runs-dir", str(tmp_path / "none"), "--output", str(tmp_path / "out")],
        ["report", str(tmp_path), "--output", str(tmp_path / "out")],
        ["data", "verify", "no_such_dataset"],
        ["sweep", str(tmp_path / "missing.toml")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
