"""Encoder registry, feature cache and the learners on frozen features (issue 5)."""

import numpy as np
import pytest
import torch

from nevis_bench.learner_kit.encoders import (
    ENCODERS, EncoderWeightsMissing, encode, load_encoder, save_encoder_checkpoint,
)
from nevis_bench.learner_kit.flops import FlopCounter
from nevis_bench.protocol import TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run import runner
from nevis_bench.run.context import event_context
from nevis_bench.stream import StreamData


def _Ctx(data):
    """A context of a train event of coil20 (the task whose features the tests encode)."""
    task = next(e.task for e in data.stream.entries if e.task.key == "coil20")
    return event_context(data, TrainEvent(0, task))


def test_registry_names_and_missing_weights_error_names_the_file(monkeypatch, tmp_path):
    for name in ("resnet18", "resnet50", "vit_b_16", "convnext_tiny", "efficientnet_b0", "random:small_convnet"):
        assert name in ENCODERS
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(EncoderWeightsMissing, match=r"resnet50-11ad3fa6\.pth.*hub/checkpoints"):
        load_encoder("resnet50")
    encoder = load_encoder("random:resnet18", input_size=32)
    assert encoder.feature_dim == 512 and encoder.module(torch.zeros(2, 3, 32, 32)).shape == (2, 512)
    assert not any(p.requires_grad for p in encoder.module.parameters()) and not encoder.module.training
    # torchvision weights from a given file (here: the random model's own state dict)
    path = tmp_path / "r18.pth"
    torch.save({**encoder.module.backbone.state_dict(), "fc.weight": torch.zeros(1000, 512),
                "fc.bias": torch.zeros(1000)}, path)
    loaded = load_encoder("resnet18", weights=str(path), input_size=32)
    assert loaded.mean == (0.485, 0.456, 0.406) and loaded.weights_hash != encoder.weights_hash
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.module.backbone(x), encoder.module.backbone(x))


def test_feature_cache_is_reused_and_flops_are_charged_every_time(data_dir, tmp_path):
    data = StreamData(STREAMS.get("synthetic-debug").factory(), 2020, data_dir, 32)
    ckpt = tmp_path / "enc.pt"
    with torch.random.fork_rng():
        torch.manual_seed(3)
        from nevis_bench.learner_kit.models import make_backbone
        save_encoder_checkpoint(ckpt, "small_convnet", make_backbone("small_convnet"), 32)
    encoder = load_encoder(f"file:{ckpt}")
    ctx = _Ctx(data)
    first, flops1 = encode(encoder, ("coil20", "train"), ctx)
    files = list((data_dir / "features").rglob("*.npy"))
    assert any("coil20" in str(f) for f in files)
    ctx2 = _Ctx(data)  # a new run: the cache is reused, the FLOPs are charged again
    second, flops2 = encode(encoder, ("coil20", "train"), ctx2)
    torch.testing.assert_close(first, second)
    assert flops1 == flops2 == ctx.flops.forward_examples(encoder.module, (3, 32, 32), 100, 256) > 0
    # the cached file is what is read: tamper with it and the tampered values come back
    cached = [f for f in (data_dir / "features").rglob("train-*.npy") if encoder.weights_hash[:24] in str(f)][0]
    np.save(cached, np.zeros(first.shape, np.float32))
    third, flops3 = encode(encoder, ("coil20", "train"), _Ctx(data))
    assert float(third.abs().sum()) == 0.0 and flops3 == flops1
    # another encoder (other weights hash) gets its own entry
    other, _ = encode(load_encoder("random:small_convnet"), ("coil20", "train"), _Ctx(data))
    assert not torch.equal(other, first)


def _final_accuracy(tmp_path, data_dir, learner, config, options, name):
    values = {"stream": "synthetic-class-incremental", "learner": learner, "runs_dir": str(tmp_path / "runs"),
              "data_dir": str(data_dir), "progress": False, "final_eval": True, "run_name": name,
              "learner_config": config, "stream_options": options}
    run_dir, evaluator = runner.start(values)
    evaluator.run()
    return 1.0 - run_dir.read_summary()["final_eval"]["final_average_error"], run_dir


def test_latent_replay_buffer_beats_no_buffer_class_incremental(tmp_path, data_dir):
    options = {"base": "coil20", "tasks": 5, "classes_per_task": 4, "train_per_class": 20, "eval_per_class": 5}
    config = {"encoder": "random:small_convnet", "encoder_input_size": 32, "epochs": 20, "mode": "task_agnostic"}
    replay, run_dir = _final_accuracy(tmp_path, data_dir, "latent_replay", {**config, "buffer_per_class": 20},
                                      options, "replay")
    empty, _ = _final_accuracy(tmp_path, data_dir, "latent_replay", {**config, "buffer_per_class": 0}, options, "empty")
    print(f"latent_replay final average accuracy: buffer 20/class {replay:.3f}, empty buffer {empty:.3f}")
    # the features are good enough: the head with replay learns all 20 classes
    assert replay >= 0.5  # chance is 0.05
    assert replay - empty >= 0.10
    train = [e for e in run_dir.read_events() if e["event_type"] == "train"]
    assert train[-1]["learner_info"]["buffer_size"] == 5 * 4 * 20
    # encoder FLOPs dominate the head's
    assert all(e["learner_info"]["encoder_flops"] > e["learner_info"]["head_flops"] for e in train)


def test_pruned_resnet_p0_identical_and_p05_flops_match_analytic():
    from nevis_bench.learners.pruned_finetune import analytic_resnet_forward_flops, prune_resnet

    results = {}
    backbones = {}
    for arch, size in (("resnet50", 32), ("tiny_resnet", 32)):
        encoder = load_encoder(f"random:{arch}", input_size=size)
        full = backbones[arch] = encoder.module.backbone.eval()
        x = torch.rand(2, 3, size, size) * 2 - 1
        same = prune_resnet(full, 0.0).eval()
        with torch.no_grad():
            assert torch.equal(same(x), full(x))  # p=0: bit-identical features (so logits)
        half = prune_resnet(full, 0.5).eval()
        with torch.no_grad():
            assert half(x).shape == full(x).shape == (2, encoder.feature_dim)  # width unchanged
        measured = FlopCounter().forward(half, (2, 3, size, size))
        analytic = analytic_resnet_forward_flops(half, size, batch=2)
        assert abs(measured - analytic) <= 0.01 * analytic
        full_flops = FlopCounter().forward(full, (2, 3, size, size))
        assert measured < full_flops
        assert sum(p.numel() for p in half.parameters()) < sum(p.numel() for p in full.parameters())
        results[arch] = (measured / full_flops, measured, analytic)
    print("pruned/unpruned FLOPs at p=0.5:", results)
    # bottleneck: inner convs pruned; conv3 output (2048) kept
    block = prune_resnet(backbones["resnet50"], 0.5).layer4[0]
    assert (block.conv1.out_channels, block.conv2.in_channels, block.conv2.out_channels,
            block.conv3.in_channels, block.conv3.out_channels) == (256, 256, 256, 256, 2048)


def test_pruned_finetune_p0_logits_equal_unpruned_classifier():
    from nevis_bench.learners.pruned_finetune import PrunedFinetuneConfig, PrunedFinetuneLearner

    from nevis_bench.learner_kit.models import Classifier

    learner = PrunedFinetuneLearner(PrunedFinetuneConfig(encoder="random:tiny_resnet", prune_ratio=0.0))
    encoder = load_encoder("random:tiny_resnet", input_size=32)
    head = torch.nn.Linear(encoder.feature_dim, 5)
    pruned = Classifier(learner.pruned_backbone(), head).eval()
    full = Classifier(encoder.module, head).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(pruned(x), full(x))


def test_compare_encoders_cli_writes_table_and_figure(tmp_path, data_dir):
    from nevis_bench.cli import main

    out = tmp_path / "cmp"
    code = main(["compare-encoders", "--encoders", "random:small_convnet,random:tiny_resnet", "--learners", "knn,ncm",
                 "--stream", "synthetic-debug", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir),
                 "--output", str(out), "--quiet"])
    assert code == 0
    import pandas as pd

    table = pd.read_csv(out / "compare_encoders.csv")
    assert len(table) == 4 and set(table["encoder"]) == {"random:small_convnet", "random:tiny_resnet"}
    assert (table["headline_flops"] > 0).all() and table["average_error"].between(0, 1).all()
    assert (out / "compare_encoders.md").exists() and (out / "compare_encoders.png").stat().st_size > 1000
    # a run left unfinished (here: marked interrupted) is resumed to the end, not tabulated as it is
    import json

    from nevis_bench.run.sweep import run_status

    name = table[(table["learner"] == "knn") & (table["encoder"] == "random:small_convnet")]["run"].item()
    summary_path = tmp_path / "runs" / name / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "status": "interrupted"}))
    assert main(["compare-encoders", "--encoders", "random:small_convnet,random:tiny_resnet", "--learners", "knn,ncm",
                 "--stream", "synthetic-debug", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir),
                 "--output", str(out), "--quiet"]) == 0
    assert run_status(summary_path.parent) == "complete"
    assert pd.read_csv(out / "compare_encoders.csv").equals(table)


def test_pretrained_encoder_beats_random_init_with_linear_probe_on_a_related_stream(tmp_path):
    # Source and target: two disjoint groups of 20 identities of the synthetic Olivetti faces. The face
    # generator's identities share one family-level geometry and rendering (the bank), so features
    # learned on identities 20-39 are relevant to telling identities 0-19 apart; random conv features
    # separate identities poorly (about 0.5 accuracy with 10 training images per identity).
    from nevis_bench.learner_kit.pretrain import pretrain

    options = {"base": "olivetti_face", "tasks": 2, "classes_per_task": 20, "train_per_class": 10, "eval_per_class": 10}
    stream = STREAMS.get("synthetic-class-incremental").factory(**options)
    source_key, target_key = stream.entries[1].task.key, stream.entries[0].task.key
    checkpoint = tmp_path / "faces.pt"
    summary = pretrain("synthetic-class-incremental", checkpoint, tmp_path / "data", steps=60, stream_options=options,
                       tasks=[source_key], stop_year=2100, seed=0)
    assert summary["tasks"] == [source_key]

    def probe_accuracy(encoder: str, name: str) -> float:
        values = {"stream": "synthetic-class-incremental", "learner": "linear_probe",
                  "runs_dir": str(tmp_path / "runs"), "data_dir": str(tmp_path / "data"), "progress": False,
                  "run_name": name, "stop_year": 2001, "stream_options": options,
                  "learner_config": {"encoder": encoder, "encoder_input_size": 32}}
        run_dir, evaluator = runner.start(values)
        assert evaluator.run() == "complete"
        (record,) = [e for e in run_dir.read_events() if e["event_type"] == "predict"]
        assert record["task_key"] == target_key  # only the target identities are probed
        return record["top1_accuracy"]

    pretrained = probe_accuracy(f"file:{checkpoint}", "pretrained")
    random_init = probe_accuracy("random:small_convnet", "random")
    print(f"linear_probe on identities 0-19: pretrained encoder {pretrained:.3f}, random init {random_init:.3f}")
    assert pretrained >= random_init + 0.10  # measured: 0.745 vs 0.520
