"""A complete learner outside the package: softmax regression on 16x16 grey pixels.

Run it with:
    nevis-bench run --learner-module examples/pixel_softmax.py --learner pixel_softmax --stream synthetic-tiny
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nevis_bench.protocol import MULTI_LABEL, Predictions, ResourceUsage
from nevis_bench.registry import LEARNERS


@dataclass
class PixelSoftmaxConfig:
    steps: int = 200
    learning_rate: float = 0.5
    batch_size: int = 128


def features(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) -> grey 16x16 pixels in [0, 1], flattened."""
    x = torch.from_numpy(np.asarray(images)).float().div(255).mean(dim=3, keepdim=True).permute(0, 3, 1, 2)
    return F.adaptive_avg_pool2d(x, 16).flatten(1)


class PixelSoftmax:
    checkpoints_within_event = False  # a 200-step loop: nothing to resume inside an event

    def __init__(self, config: PixelSoftmaxConfig):
        self.config = config

    def init(self):
        return {"heads": {}}  # plain data: task key -> {"weight": tensor, "bias": tensor}

    def train(self, event, state, ctx):
        task = event.task
        split = ctx.data.split(task.key, event.train_split)
        with ctx.seeded("init"):
            model = torch.nn.Linear(256, task.num_classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.config.learning_rate)
        loss_fn = F.binary_cross_entropy_with_logits if task.kind == MULTI_LABEL else F.cross_entropy
        rng = np.random.default_rng(ctx.rng_seed("batches"))
        batch = min(self.config.batch_size, len(split))
        for _ in range(self.config.steps):
            images, labels = split.take(np.sort(rng.choice(len(split), batch, replace=False)))
            loss = loss_fn(model(features(images)), torch.from_numpy(labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        target_dtype = torch.float32 if task.kind == MULTI_LABEL else torch.int64
        target_shape = (batch, task.num_classes) if task.kind == MULTI_LABEL else (batch,)
        step_flops = ctx.flops.train_step(model, (batch, 256), target_shape, loss_fn, target_dtype, task.kind)
        heads = {**state["heads"], task.key: {k: v.detach().clone() for k, v in model.state_dict().items()}}
        usage = ResourceUsage(flops_train=float(self.config.steps * step_flops),
                              peak_parameter_count=sum(p.numel() for p in model.parameters()))
        return {"heads": heads}, usage

    def predict(self, event, state, ctx):
        task = event.task
        model = torch.nn.Linear(256, task.num_classes)
        model.load_state_dict(state["heads"][task.key])
        split = ctx.data.split(task.key, event.split)

        def batches():
            for start in range(0, len(split), 256):
                indices = np.arange(start, min(start + 256, len(split)))
                images, _ = split.take(indices)
                with torch.no_grad():
                    logits = model(features(images))
                scores = torch.sigmoid(logits) if task.kind == MULTI_LABEL else torch.softmax(logits, 1)
                yield Predictions(indices=indices, scores=scores.numpy())

        flops = ctx.flops.forward_examples(model, (256,), len(split), 256)
        return batches(), ResourceUsage(flops_inference=float(flops),
                                        peak_parameter_count=sum(p.numel() for p in model.parameters()))


@LEARNERS.register("pixel_softmax", PixelSoftmaxConfig)
def make_pixel_softmax(config: PixelSoftmaxConfig) -> PixelSoftmax:
    """Softmax regression on 16x16 grey pixels, one head per task (an example learner)."""
    return PixelSoftmax(config)
