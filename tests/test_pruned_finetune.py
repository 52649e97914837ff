"""pruned_finetune's compute-optimal budget (Caccia et al. 2023): the same FLOPs buy a pruned network
more steps, and the reported training FLOPs stay within the budget."""

import pytest

from nevis_bench.learner_kit.training import train_step_flops
from nevis_bench.learners.pruned_finetune import PrunedFinetuneConfig, PrunedFinetuneLearner
from nevis_bench.protocol import TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run.context import event_context
from nevis_bench.stream import StreamData


def _learner(prune_ratio, budget):
    return PrunedFinetuneLearner(PrunedFinetuneConfig(
        encoder="random:tiny_resnet", prune_ratio=prune_ratio, flop_budget=budget, batch_size=16, patience=0,
        eval_every_epochs=100.0))


def _train(data, task, prune_ratio, budget):
    learner = _learner(prune_ratio, budget)
    ctx = event_context(data, TrainEvent(0, task), progress=False)
    return learner.train(TrainEvent(0, task), learner.init(), ctx)


def test_a_flop_budget_buys_a_pruned_network_more_steps_and_is_never_exceeded(data_dir):
    stream = STREAMS.get("synthetic-debug").factory()
    data = StreamData(stream, 2020, data_dir, 32)
    task = stream.entries[1].task  # coil20
    learner, ctx = _learner(0.0, 0.0), event_context(data, TrainEvent(0, task), progress=False)
    per_step_full = train_step_flops(learner._model(task, ctx), task, ctx, learner.config,
                                     len(data.split(task.key, "train")))
    budget = 6.5 * per_step_full
    full_state, unpruned = _train(data, task, 0.0, budget)
    pruned_state, pruned = _train(data, task, 0.5, budget)
    assert unpruned.info["steps"] == 6  # floor(6.5)
    per_step_pruned = pruned.flops_train / pruned.info["steps"]
    assert per_step_pruned < 0.8 * per_step_full  # the pruned network really is cheaper per step
    assert pruned.info["steps"] == int(budget // per_step_pruned) > unpruned.info["steps"]
    for usage in (unpruned, pruned):
        assert budget - usage.flops_train / usage.info["steps"] < usage.flops_train <= budget
    # the pruned model keeps fewer parameters, and its representation width
    assert pruned.peak_parameter_count < unpruned.peak_parameter_count
    head = pruned_state["models"][task.key]["head"]["weight"]
    assert head.shape[1] == full_state["models"][task.key]["head"]["weight"].shape[1]


def test_flop_budget_must_not_be_negative():
    with pytest.raises(ValueError, match="flop_budget"):
        PrunedFinetuneConfig(flop_budget=-1.0)
