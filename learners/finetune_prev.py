"""``finetune_prev``: fine-tune from the previous task's parameters (the reference's Previous).

The backbone carries over from task to task; each task key has its own linear head, created fresh
for a new task and reused when a task repeats. Training uses the shared recipe with a new optimiser
per task. Prediction uses the *current* backbone with the task's head, so the final evaluation of
earlier tasks shows forgetting (unlike the reference, which kept a per-task model zoo).

Measured numbers and the full notes: docs/learners/finetune_prev.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from nevis_bench.registry import LEARNERS
from nevis_bench.learner_kit.training import RecipeConfig, fit
from nevis_bench.learners._finetuning import build_classifier, plain_state_dict, predict_with


@dataclass
class FinetunePrevConfig(RecipeConfig):
    pass


class FinetunePrevLearner:
    def __init__(self, config: FinetunePrevConfig):
        self.config = config

    def init(self):
        return {"backbone": None, "heads": {}}

    def train(self, event, state, ctx):
        task = event.task
        model = build_classifier(self.config, task, ctx, state["backbone"], state["heads"].get(task.key))
        result = fit(model, task, ctx, self.config)
        backbone = plain_state_dict(model.backbone)
        heads = {**state["heads"], task.key: plain_state_dict(model.head)}
        return {"backbone": backbone, "heads": heads}, result.usage(backbone, heads)

    def predict(self, event, state, ctx):
        head = state["heads"].get(event.task.key)
        if head is None or state["backbone"] is None:
            raise RuntimeError(f"finetune_prev: task {event.task.key!r} was never trained")
        model = build_classifier(self.config, event.task, ctx, state["backbone"], head)
        others = [h for key, h in state["heads"].items() if key != event.task.key]
        return predict_with(model, self.config, event, ctx, held=tuple(others))


@LEARNERS.register("finetune_prev", FinetunePrevConfig, test_overrides={"max_steps": 12, "min_steps": 4})
def make_finetune_prev(config: FinetunePrevConfig) -> FinetunePrevLearner:
    """Initialise from the previous task's parameters; one head per task key (the reference's Previous)."""
    return FinetunePrevLearner(config)
