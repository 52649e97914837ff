"""User-defined streams: the README's stream file on an image folder, the file's checks, TFDS tasks."""

import json
import re
import shlex

import numpy as np
import pytest

from nevis_bench.cli import main
from nevis_bench.data.image_folder import ImageFolderSource
from nevis_bench.errors import InputError
from nevis_bench.stream_file import StreamFileError, load_stream_file
from tests.helpers import REPO

README = (REPO / "README.md").read_text()


def _block(marker: str) -> str:
    return re.search(re.escape(marker) + r"\n```[a-z]*\n(.*?)```", README, re.S).group(1)


def _photos(root, classes=3, per_class=10):
    """An image folder as users hold them: one subfolder per class, images of several sizes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / "photos" / f"class_{label}"
        folder.mkdir(parents=True)
        colour = np.eye(3)[label % 3] * 200 + 30
        for i in range(per_class):
            height, width = int(rng.integers(20, 50)), int(rng.integers(20, 50))
            pixels = np.clip(colour + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}")


def test_the_readme_stream_file_example_runs(tmp_path, monkeypatch):
    _photos(tmp_path)
    (tmp_path / "my_stream.toml").write_text(_block("<!-- own-stream-file -->"))
    command = shlex.split(_block("<!-- own-stream-command -->").strip())
    assert command[:2] == ["nevis-bench", "run"]
    monkeypatch.chdir(tmp_path)
    argv = command[1:] + ["-o", "max_steps=3", "-o", "min_steps=1", "--runs-dir", "runs", "--data-dir", "data", "--quiet"]
    assert main(argv) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    assert run_dir.name.startswith("my_stream--finetune_prev--")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["task_key"] for e in events if e["event_type"] == "train"] == ["coil20", "photos"]
    photos = [e for e in events if e["event_type"] == "predict" and e["task_key"] == "photos"][0]
    assert photos["num_examples"] == 3  # 10 images a class, a tenth of each in dev_test
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["average_single_label_accuracy"] is not None


def test_image_folder_splits_each_class_by_its_fractions_and_keys_the_cache_on_the_files(tmp_path):
    _photos(tmp_path, classes=2, per_class=10)
    source = ImageFolderSource(str(tmp_path / "photos"),
                               split=(("train", 0.6), ("dev", 0.2), ("dev_test", 0.1), ("test", 0.1)))
    splits = source.build(16)
    sizes = {name: len(arrays[1]) for name, arrays in splits.items()}
    assert sizes == {"train": 12, "dev": 4, "dev_test": 2, "test": 2}
    ids = [i for arrays in splits.values() for i in arrays[2]]
    assert len(set(ids)) == 20 and all(i.startswith("class_") for i in ids)
    assert splits["train"][0].shape == (12, 16, 16, 3) and set(np.unique(splits["dev"][1])) == {0, 1}
    before = source.fingerprint(16)
    (tmp_path / "photos" / "class_0" / "000.jpg").unlink()
    assert source.fingerprint(16) != before  # another set of images: another cache entry
    full = source.build_full(16)
    frames, aspects = full["train"][3], full["train"][4]
    assert frames.shape[1:] == (16, 16, 3) and np.all(aspects > 0) and not np.allclose(aspects, 1.0)


def test_stream_file_mistakes_are_input_errors_that_say_what_to_change(tmp_path, capsys):
    def load(text, **options):
        path = tmp_path / "s.toml"
        path.write_text(text)
        return load_stream_file(str(path), options)

    with pytest.raises(StreamFileError, match="unknown key.*valid keys: catalogue, domain, key, name, year"):
        load('[[tasks]]\nyear = 2000\ncatalogue = "mnist"\nlabel = 3\n')
    with pytest.raises(StreamFileError, match="exactly one source"):
        load('[[tasks]]\nyear = 2000\ncatalogue = "mnist"\nsynthetic = "mnist"\n')
    with pytest.raises(StreamFileError, match="did you mean mnist"):
        load('[[tasks]]\nyear = 2000\nsynthetic = "mnsit"\n')
    with pytest.raises(InputError, match="does not exist"):
        load('[[tasks]]\nyear = 2000\nfolder = "nowhere"\n')
    with pytest.raises(StreamFileError, match="give its rule, num_classes, channels, version"):
        load('[[tasks]]\nyear = 2000\ntfds = "beans"\n')
    with pytest.raises(StreamFileError, match="valid options: data_dir, tfds_data_dir, download"):
        load('[[tasks]]\nyear = 2000\nsynthetic = "mnist"\n', shuffle="none")
    with pytest.raises(StreamFileError, match="lists no tasks"):
        load('name = "empty"\n')
    stream = load('[[tasks]]\nyear = 2000\ncatalogue = "mnist"\n[[tasks]]\nyear = 2001\ntfds = "cifar10"\n'
                  '[[tasks]]\nyear = 2002\ncatalogue = "mnist"\n', tfds_data_dir=str(tmp_path / "tfds"))
    assert [(e.year, e.task.key, e.source.describe()) for e in stream.entries] == [
        (2000, "mnist", "tfds:mnist"), (2001, "cifar10", "tfds:cifar10"), (2002, "mnist", "tfds:mnist")]
    assert stream.entries[0].source is stream.entries[2].source  # a repeat shares its source
    assert main(["run", "--stream", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_tfds_dataset_outside_nevis_is_read_with_the_rule_the_file_gives(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from nevis_bench.data.tfds_source import TFDS_SPECS

    monkeypatch.setenv("NEVIS_BENCH_TFDS_IN_PROCESS", "1")
    monkeypatch.setattr("nevis_bench.data.tfds_source.TFDS_SPECS", dict(TFDS_SPECS))
    (tmp_path / "s.toml").write_text('[[tasks]]\nyear = 2000\ntfds = "beans"\nrule = "train_val_test"\n'
                                     'num_classes = 3\nchannels = 3\nversion = "0.1.0"\n')
    stream = load_stream_file(str(tmp_path / "s.toml"), tfds_data_dir=str(tmp_path / "tfds"))
    entry = stream.entries[0]
    assert (entry.task.key, entry.task.num_classes) == ("beans", 3)
    with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = entry.source.build(8)
        framed = entry.source.build_full(8)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 8, "dev": 2, "dev_test": 10, "test": 10}
    for name in splits:  # framing "full" keeps the same squares and adds frames and aspect ratios
        np.testing.assert_array_equal(framed[name][0], splits[name][0])
        assert framed[name][3].shape == splits[name][0].shape and np.all(framed[name][4] > 0)
