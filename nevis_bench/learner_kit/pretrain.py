"""Project-trained encoders: train a backbone on a source stream, save a checkpoint for the registry.

:func:`pretrain` trains one backbone (``small_convnet`` by default) with one linear head per task
on every task of a stream before its stop year (or only the tasks given), cycling through the tasks
step by step (multi-task supervised pre-training; cross-entropy or BCE for multi-label tasks), with
the shared recipe's augmentation, SGD + Nesterov momentum and a cosine schedule. The backbone is
saved with :func:`nevis_bench.learner_kit.encoders.save_encoder_checkpoint`; load it as ``file:PATH``.
Deterministic for a given seed.
"""

from __future__ import annotations

import math
import pathlib
import time

import torch
from torch import nn

from nevis_bench.data.loader import AugmentConfig, TrainBatches
from nevis_bench.learner_kit.encoders import save_encoder_checkpoint
from nevis_bench.learner_kit.models import make_backbone
from nevis_bench.learner_kit.tasks import task_kind
from nevis_bench.learner_kit.training import learning_rate_at, make_optimizer, RecipeConfig
from nevis_bench.registry import STREAMS
from nevis_bench.stream import StreamData


def pretrain(
    stream: str, output: str | pathlib.Path, data_dir: str | pathlib.Path, steps: int = 300,
    backbone: str = "small_convnet", input_size: int = 32, image_size: int = 32, batch_size: int = 64,
    learning_rate: float = 0.05, seed: int = 0, stream_options: dict | None = None,
    tasks: list[str] | None = None, stop_year: int | None = None, progress: bool = False,
) -> dict:
    """Train and save; returns a summary dict (tasks, steps, final loss, seconds, output)."""
    started = time.time()
    stream_obj = STREAMS.get(stream).factory(**(stream_options or {}))
    year = stop_year or stream_obj.default_stop_year or 2020
    data = StreamData(stream_obj, year, data_dir, image_size)
    data.check_available()
    data.prepare(progress=progress)
    infos = {key: info for key, (info, _) in stream_obj.sources(year).items()}
    keys = [k for k in infos if tasks is None or k in tasks]
    if not keys:
        raise ValueError(f"no task of stream {stream!r} to pretrain on (asked for {tasks})")
    augment = AugmentConfig(input_size=input_size, crop_scale=(0.35, 1.0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_backbone(backbone)
        heads = nn.ModuleDict({str(i): nn.Linear(model.feature_dim, infos[k].num_classes) for i, k in enumerate(keys)})
    batches = [TrainBatches(data.split(k, "train"), batch_size, augment, seed=seed * 1000 + i) for i, k in enumerate(keys)]
    kinds = [task_kind(infos[k]) for k in keys]
    optimizer = make_optimizer(nn.ModuleList([model, heads]), RecipeConfig(learning_rate=learning_rate))
    model.train()
    last = math.nan
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, steps, 0, learning_rate)
        t = step % len(keys)
        x, y = batches[t].batch(step // len(keys))
        loss = kinds[t].loss(heads[str(t)](model(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = float(loss.detach())
    model.eval()
    info = {"stream": stream, "tasks": keys, "steps": steps, "final_loss": last, "seed": seed,
            "backbone": backbone, "seconds": round(time.time() - started, 2)}
    save_encoder_checkpoint(output, backbone, model, input_size, extra=info)
    return {**info, "output": str(output)}
