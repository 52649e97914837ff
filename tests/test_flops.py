import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nevis_bench.learner_kit._torchvision_compat import ensure_torchvision
from nevis_bench.learner_kit.flops import FlopCounter, count_forward, count_train_step
from nevis_bench.learner_kit.models import Classifier, make_backbone
from nevis_bench.learner_kit.training import RecipeConfig, fit
from nevis_bench.protocol import TrainEvent
from nevis_bench.registry import STREAMS
from nevis_bench.run.context import event_context
from nevis_bench.stream import StreamData


def test_resnet18_forward_matches_torchvision_documented_macs():
    model = ensure_torchvision().models.resnet18()
    flops = count_forward(model, (1, 3, 224, 224))
    assert abs(flops - 2 * 1.814e9) / (2 * 1.814e9) < 0.01


def test_linear_counted_by_hand():
    layer = nn.Linear(10, 3)
    # forward: 4 x 10 x 3 MACs; backward: weight gradient only (the input needs no gradient)
    assert count_forward(layer, (4, 10)) == 2 * 4 * 10 * 3
    assert count_train_step(layer, (4, 10), (4,), F.cross_entropy) == 2 * (4 * 10 * 3) * 2
    # the reference's unit test: nn.Linear(10, 1), batch 2, forward + backward = 80 FLOPs
    assert count_train_step(nn.Linear(10, 1), (2, 10), (2, 1), F.mse_loss, torch.float32) == 80


def test_meta_count_equals_a_real_step_and_leaves_the_model_untouched():
    model = Classifier(make_backbone("small_convnet"), nn.Linear(256, 7))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    counter = FlopCounter()
    counted = counter.train_step(model, (8, 3, 32, 32), (8,), F.cross_entropy, loss_key="ce")
    assert counter.train_step(model, (8, 3, 32, 32), (8,), F.cross_entropy, loss_key="ce") == counted
    assert counter.counts_made == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with FlopCounterMode(display=False) as real:
        F.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.zeros(8, dtype=torch.long)).backward()
    assert real.get_total_flops() == counted


def test_training_run_flops_equal_steps_times_step_flops(data_dir):
    stream = STREAMS.get("synthetic-debug").factory()
    data = StreamData(stream, 2020, data_dir, 32)
    task = stream.entries[1].task  # coil20, single-label
    recipe = RecipeConfig(max_steps=9, min_steps=9, patience=0, eval_every_epochs=3.0)
    ctx = event_context(data, TrainEvent(0, task), progress=False)
    model = Classifier(make_backbone("small_convnet"), nn.Linear(256, task.num_classes))
    result = fit(model, task, ctx, recipe)
    train = data.split(task.key, "train")
    batch = min(recipe.batch_size, len(train))
    per_step = count_train_step(model, (batch, 3, 32, 32), (batch,), F.cross_entropy)
    dev = len(data.split(task.key, "dev"))
    per_validation = count_forward(model, (dev, 3, 32, 32))
    assert result.steps == 9
    assert result.flops_train == result.steps * per_step
    assert result.flops_validation == result.validations * per_validation > 0
