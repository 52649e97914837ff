"""``independent``: a fresh model per task (the reference's Independent baseline).

Every train event initialises a new backbone and head and trains them with the shared recipe
(:mod:`nevis_bench.learner_kit.training`). The trained model of each task key is kept; prediction uses the
model trained on that task, so there is no forgetting and no transfer. A repeated task is trained
again from scratch and replaces the earlier model.

Measured numbers and the full notes: docs/learners/independent.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from nevis_bench.registry import LEARNERS
from nevis_bench.learner_kit.training import RecipeConfig, fit
from nevis_bench.learners._finetuning import build_classifier, plain_state_dict, predict_saved


@dataclass
class IndependentConfig(RecipeConfig):
    pass


class IndependentLearner:
    def __init__(self, config: IndependentConfig):
        self.config = config

    def init(self):
        return {"models": {}}

    def train(self, event, state, ctx):
        model = build_classifier(self.config, event.task, ctx)
        result = fit(model, event.task, ctx, self.config)
        models = {**state["models"], event.task.key: {
            "backbone": plain_state_dict(model.backbone), "head": plain_state_dict(model.head),
        }}
        return {"models": models}, result.usage(models)  # every stored model counts

    def predict(self, event, state, ctx):
        return predict_saved("independent", self.config, event, state, ctx)


@LEARNERS.register("independent", IndependentConfig, test_overrides={"max_steps": 12, "min_steps": 4})
def make_independent(config: IndependentConfig) -> IndependentLearner:
    """A fresh model per task (the reference's Independent)."""
    return IndependentLearner(config)
