"""Fixes of issue 14 in ``curl``: standardised features, steps and learning rate scaled to the task.

Each test fails on the code before the issue: it fed uncentred features (every COIL-100 example at cosine
>= 0.98 with the mean; the shared encoder's output died, q(y|x) at chance) and ran a fixed 600 steps at a
constant learning rate whatever the task's size."""

import dataclasses
import math

import pytest
import torch

from nevis_bench.learner_kit.features import fit_standardiser
from nevis_bench.learners import _curl_core
from nevis_bench.learners._curl_core import CurlConfig, learning_rate_at, task_steps
from nevis_bench.learners.curl import CurlLearner
from tests.test_leo import collinear_task, fit_and_score, patch_features


# one intra-op thread (tests/conftest.py): these loops are many tiny ops, which several threads only slow
# down on a shared machine (measured: a 125-step curl fit took 106 s with 2 threads among other jobs, 16 s
# with one)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_steps_follow_the_task_size_and_the_learning_rate_decays():
    cfg = CurlConfig()
    assert cfg.steps == 0  # scaled by default
    assert task_steps(cfg, 500) == math.ceil(cfg.epochs * 500 / cfg.batch_size)  # COIL-100: 500 examples
    assert task_steps(cfg, 60) == cfg.min_steps and task_steps(cfg, 100_000) == cfg.max_steps
    assert task_steps(cfg, 2000) > task_steps(cfg, 500) > task_steps(cfg, 100)
    assert task_steps(dataclasses.replace(cfg, steps=77), 100_000) == 77  # an explicit budget wins
    lrs = [learning_rate_at(cfg, s, 100) for s in range(101)]
    assert math.isclose(lrs[0], cfg.learning_rate) and math.isclose(lrs[-1], cfg.learning_rate * cfg.final_learning_rate)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_default_curl_standardises_near_collinear_features(monkeypatch):
    config = CurlConfig(hidden=64)
    for seed in (0, 1, 2):
        task, splits = collinear_task(seed)
        patch_features(monkeypatch, _curl_core, splits)
        accuracy, state, usage = fit_and_score(CurlLearner(config), task, splits, seed)
        print(f"seed {seed}: dev accuracy {accuracy:.3f}; {usage.info}")
        assert accuracy >= 0.8
        assert usage.info["steps"] == task_steps(config, len(splits["train"][1]))
        stats, expected = state["standardiser"][task.key], fit_standardiser(splits["train"][0])
        assert torch.allclose(stats["mean"], expected["mean"]) and torch.allclose(stats["std"], expected["std"])
        if seed == 0:  # the code before issue 14: uncentred features
            raw, _, _ = fit_and_score(CurlLearner(dataclasses.replace(config, standardise=False)), task, splits, seed)
            print(f"uncentred: {raw:.3f}")
            assert raw <= accuracy - 0.3
