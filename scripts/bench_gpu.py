#!/usr/bin/env python
"""Training throughput of the reference backbone: images/s, achieved FLOP/s and model FLOP utilisation.

Trains ``cifar_resnet34`` at 64x64 with batch 256 (the reference's NEVIS'22 setup) for a fixed
number of steps with the shared recipe's execution path (:mod:`nevis_bench.learner_kit.training`: bf16
autocast, channels-last, ``torch.compile``, prefetching loader with pinned memory), for fp32 and
bf16, eager and compiled, and reports

* images/s of the timed steps (after warm-up steps, which also absorb compilation),
* achieved FLOP/s = counted FLOPs of a train step (``nevis_bench.learner_kit.flops``, the same count the
  benchmark's compute accounting uses) x steps / time,
* MFU = achieved FLOP/s / the device's bf16 matmul peak, measured here with a large matrix product,
* the loader's images/s alone (task-cache batch -> augmented float batch, one thread).

``--small`` runs a CPU-sized version (small_convnet at 32x32, batch 32, few steps) for smoke tests.

    python scripts/bench_gpu.py --device cuda          # the GPU numbers
    python scripts/bench_gpu.py --device cpu --small   # CPU smoke run
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nevis_bench.data.cache import SplitData
from nevis_bench.data.loader import TrainBatches, step_batches
from nevis_bench.learner_kit.flops import count_train_step
from nevis_bench.learner_kit.models import Classifier, make_backbone
from nevis_bench.learner_kit.training import RecipeConfig, autocast, make_optimizer, prepare_model, to_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def matmul_peak(device: torch.device, size: int, dtype: torch.dtype, repeats: int = 10) -> float:
    """FLOP/s of a ``size`` x ``size`` matrix product in ``dtype`` (2 n^3 FLOPs each)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def synthetic_split(n: int, size: int, classes: int) -> SplitData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    return SplitData(images=images, labels=rng.integers(0, classes, size=n).astype(np.int64))


def loader_throughput(split: SplitData, recipe: RecipeConfig, steps: int) -> float:
    batches = TrainBatches(split, recipe.batch_size, recipe.augment, seed=0)
    batches.batch(0)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        batches.batch(step)
    return steps * batches.batch_size / (time.perf_counter() - start)


def train_throughput(split: SplitData, recipe: RecipeConfig, device: torch.device, classes: int,
                     steps: int, warmup: int) -> tuple[float, float]:
    """(images/s, counted train FLOPs per step) of ``steps`` timed steps after ``warmup`` steps."""
    torch.manual_seed(0)
    backbone = make_backbone(recipe.backbone)
    model = Classifier(backbone, nn.Linear(backbone.feature_dim, classes))
    batch = recipe.batch_size
    step_flops = count_train_step(model, (batch, 3, recipe.input_size, recipe.input_size), (batch,), F.cross_entropy)
    forward = prepare_model(model, recipe, device)
    model.train()
    optimizer = make_optimizer(model, recipe)
    batches = TrainBatches(split, batch, recipe.augment, seed=0)
    feed = step_batches(batches, 0, warmup + steps, recipe.prefetch, device.type == "cuda")
    try:
        start = None
        for step, x, y in feed:
            if step == warmup:
                _sync(device)
                start = time.perf_counter()
            with autocast(recipe, device):
                loss = F.cross_entropy(forward(to_device(x, device, recipe)), y.to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        elapsed = time.perf_counter() - start
    finally:
        feed.close()
    return steps * batch / elapsed, float(step_flops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="CPU-sized run: small_convnet, 32x32, batch 32, few steps")
    parser.add_argument("--backbone")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, help="untimed steps first (compilation happens here)")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--matmul-size", type=int, help="side of the square matrices for the peak")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    parser.add_argument("--prefetch", type=int, default=2)
    args = parser.parse_args(argv)

    small = args.small
    backbone = args.backbone or ("small_convnet" if small else "cifar_resnet34")
    size = args.input_size or (32 if small else 64)
    batch = args.batch_size or (32 if small else 256)
    steps = args.steps or (5 if small else 50)
    warmup = args.warmup if args.warmup is not None else (2 if small else 10)
    matmul_size = args.matmul_size or (1024 if small else 8192)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda but CUDA is not available", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
        torch.backends.cudnn.allow_tf32 = False

    print(f"device: {device_name(device)}")
    print(f"torch {torch.__version__}; backbone {backbone} at {size}x{size}, batch {batch}, "
          f"{steps} timed steps after {warmup} warm-up steps, prefetch {args.prefetch}")
    peak_bf16 = matmul_peak(device, matmul_size, torch.bfloat16)
    peak_fp32 = matmul_peak(device, matmul_size, torch.float32)
    print(f"bf16 matmul peak ({matmul_size}^2): {peak_bf16:.3e} FLOP/s; fp32 matmul: {peak_fp32:.3e} FLOP/s")

    split = synthetic_split(max(batch * 4, 64), size, args.classes)
    base = dict(backbone=backbone, batch_size=batch, input_size=size, prefetch=args.prefetch,
                channels_last=device.type == "cuda", crop_scale_min=0.35)
    print()
    print("| configuration | images/s | FLOP/s | MFU (vs bf16 matmul peak) |")
    print("|---|---:|---:|---:|")
    variants = [("fp32", False), ("bf16", False)]
    if not args.no_compile:
        variants += [("fp32", True), ("bf16", True)]
    for precision, compiled in variants:
        label = f"{precision} {'compiled' if compiled else 'eager'}"
        recipe = RecipeConfig(**base, precision=precision, compile=compiled)
        try:
            images, step_flops = train_throughput(split, recipe, device, args.classes, steps, warmup)
        except Exception as error:  # e.g. torch.compile without a working compiler
            print(f"| {label} | skipped: {type(error).__name__}: {str(error).splitlines()[0][:80]} | | |")
            continue
        achieved = images / batch * step_flops
        print(f"| {label} | {images:.1f} | {achieved:.3e} | {100 * achieved / peak_bf16:.1f}% |")
    loader = loader_throughput(split, RecipeConfig(**base), max(steps, 3))
    print(f"| loader alone (1 thread, cache -> augmented batch) | {loader:.1f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
