"""``--preset reference``: the reference's recipe, its description, the pixel check and full-frame crops."""

import json
import math
import pathlib

import numpy as np
import pytest
import torch

from nevis_bench.cli import main
from nevis_bench.data.loader import _sample_crops
from nevis_bench.run import presets, runner
from nevis_bench.run.config import ConfigError

ACCEPTANCE = ["--stream", "synthetic-debug", "--preset", "reference", "-o", "max_steps=2", "-o", "batch_size=16"]


def _values(argv):
    from nevis_bench.cli import build_parser
    from nevis_bench.cli.run import run_values

    return run_values(build_parser().parse_args(["run", *argv]))


def test_presets_describe_prints_every_setting_with_the_reference_value(capsys):
    assert main(["presets", "describe", "reference"]) == 0
    out = capsys.readouterr().out
    for setting in presets.REFERENCE.settings:
        assert f"{setting.key:<22} {str(setting.value):<16}" in out, setting.key
    assert "min(max_steps - 1, 7 epochs)" in out and "1e-08" in out and "10,000" in out
    assert main(["presets", "list"]) == 0
    assert "cpu" in capsys.readouterr().out


def test_the_acceptance_command_sets_the_reference_recipe_and_the_cache_it_needs():
    prepared = runner.validate(_values(ACCEPTANCE))
    config, recipe = prepared.config, prepared.learner_config
    assert (config.image_size, config.image_framing, config.preset) == (64, "full", "reference")
    assert (recipe.backbone, recipe.input_size, recipe.batch_size) == ("cifar_resnet34", 64, 16)  # -o wins
    assert (recipe.min_steps, recipe.max_steps) == (2, 2)  # exactly max_steps, following the override
    assert (recipe.learning_rate, recipe.momentum, recipe.nesterov, recipe.weight_decay) == (0.1, 0.9, True, 1e-4)
    assert (recipe.warmup_epochs, recipe.final_learning_rate, recipe.eval_every_steps) == (7.0, 1e-8, 1000)
    assert (recipe.patience, recipe.crop_scale_min, recipe.random_crop, recipe.flip) == (0, 0.08, True, True)

    dynamic = runner.validate(_values(["--learner", "dynamic_knn", *ACCEPTANCE])).learner_config
    assert (dynamic.num_trials, dynamic.lr_min, dynamic.lr_max, dynamic.label_smoothing_max) == (16, 1e-4, 0.1, 0.3)
    assert (dynamic.knn_max_train, dynamic.knn_max_dev, dynamic.adaptive_batch_size) == (10_000, 5_000, True)
    assert dynamic.backbone == "cifar_resnet34"
    # without the preset, the CPU-sized defaults
    default = runner.validate(_values(["--stream", "synthetic-debug"]))
    assert (default.config.image_size, default.learner_config.backbone, default.learner_config.max_steps) == (
        32, "small_convnet", 400)


def test_a_learner_without_the_recipe_and_an_input_larger_than_the_cache_are_refused(capsys):
    with pytest.raises(ConfigError, match="applies to learners built on the recipe"):
        runner.validate(_values(["--learner", "knn", "--stream", "synthetic-debug", "--preset", "reference"]))
    # 64 px crops from a 32 px cache would upsample: one line, exit 2
    assert main(["run", "--stream", "synthetic-debug", "-o", "input_size=64", "--runs-dir", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "image_size=64" in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="unknown preset"):
        runner.validate(_values(["--stream", "synthetic-debug", "--preset", "referense"]))


def test_crops_from_the_full_frame_have_the_reference_area_and_aspect_in_original_pixels():
    n = 4000
    aspects = torch.full((n,), 2.0)  # originals twice as wide as high, stretched into a square frame
    boxes = _sample_crops(n, torch.Generator().manual_seed(0), (0.08, 1.0), (3 / 4, 4 / 3), image_aspects=aspects)
    w, h = boxes[:, 0], boxes[:, 1]
    fallback = (w == 0.5) & (h == 1.0)  # the largest central square of a 2:1 image
    sampled = ~fallback
    assert sampled.float().mean() > 0.9
    area, ratio = (w * h)[sampled], (w / h * 2.0)[sampled]  # in original pixels
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    assert (w <= 1).all() and (h <= 1).all()
    square = _sample_crops(8, torch.Generator().manual_seed(1), (0.08, 1.0), (3 / 4, 4 / 3))
    same = _sample_crops(8, torch.Generator().manual_seed(1), (0.08, 1.0), (3 / 4, 4 / 3), image_aspects=torch.ones(8))
    assert torch.allclose(square, same)  # square images: unchanged behaviour


def _image_folder(root: pathlib.Path) -> pathlib.Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in enumerate([(220, 30, 30), (30, 30, 220)]):
        folder = root / "shapes" / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (24, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")  # 48 x 24: not square
    stream = root / "wide.toml"
    stream.write_text('name = "wide"\n[[tasks]]\nyear = 2001\nfolder = "shapes"\n'
                      "split = { train = 0.5, dev = 0.17, dev_test = 0.17, test = 0.16 }\n")
    return stream


def test_reference_preset_trains_a_resnet34_at_64px_on_full_frames(tmp_path):
    stream = _image_folder(tmp_path)
    argv = ["run", "--stream", str(stream), "--preset", "reference", "-o", "max_steps=1", "-o", "batch_size=2",
            "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--quiet"]
    assert main(argv) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    train = events[0]
    assert train["learner_info"]["steps"] == 1
    assert 21_000_000 < train["peak_parameter_count"] < 22_000_000  # CIFAR ResNet-34 with a 2-way head
    entry = next((tmp_path / "data" / "cache").glob("shapes/*"))
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["image_size"] == 64 and manifest["image_framing"] == "full"
    aspects = np.load(entry / "train.aspects.npy")
    assert np.allclose(aspects, 2.0) and np.load(entry / "train.frames.npy").shape[1:] == (64, 64, 3)


@pytest.mark.slow
def test_the_acceptance_command_runs_on_cpu(tmp_path):
    # about 4 minutes on 2 loaded cores: a ResNet-34 forward at 64 px is ~9 GFLOPs an image
    assert main(["run", *ACCEPTANCE, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"),
                 "--quiet"]) == 0
    summary = json.loads(next((tmp_path / "runs").glob("*/summary.json")).read_text())
    assert summary["status"] == "complete" and not math.isnan(summary["average_error"])
