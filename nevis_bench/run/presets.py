"""Named bundles of run and learner settings: ``nevis-bench run --preset NAME``.

A preset fills in settings the user did not give (a TOML file, a flag or ``-o`` always wins), so
``--preset reference -o max_steps=2`` is the reference's recipe with a two-step budget. Each
setting carries the reference value it reproduces and where the reference sets it, which
``nevis-bench presets describe NAME`` prints.

* ``cpu`` is what runs without a preset (the defaults of :class:`nevis_bench.run.config.RunConfig`
  and of each learner's config): a CPU-sized recipe (small convnet at 32 px, batch 64, at most 400
  steps a task) that is *not* the reference's; it is listed so that both can be described.
* ``reference`` reproduces the NEVIS'22 reference's Independent, Previous and Dynamic recipes
  (``experiments_jax/configs/finetuning_{ind,prev,dknn}.py``): a CIFAR-style ResNet-34 at 64 px from
  a 64 px task cache whose images keep their full frame, 50,000 steps a task, validation every 1,000
  steps, no early stopping, and Dynamic's 16-trial search. A full reference step is about 3.5 TFLOP
  (batch 256): hours a task on a CPU, so on a CPU override the budget (``-o max_steps=2``).

Recipe settings apply to learners built on the shared recipe (:class:`RecipeConfig` fields); a
learner without them is refused with the list of learners the preset applies to. Dynamic's search
settings apply to learners that have them (``dynamic_knn``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nevis_bench.run.config import ConfigError

RUN, RECIPE, SEARCH = "run", "recipe", "search"
MAX_STEPS = "=max_steps"  # a value that follows the (possibly overridden) max_steps


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any
    scope: str  # RUN (a run setting), RECIPE (every recipe learner), SEARCH (learners that have the key)
    reference: str  # what the reference does and where


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    settings: tuple[Setting, ...]


_IND = "experiments_jax/configs/finetuning_ind.py"
_DKNN = "experiments_jax/configs/finetuning_dknn.py"

REFERENCE = Preset(
    "reference",
    "the NEVIS'22 reference's Independent / Previous / Dynamic recipe: CIFAR ResNet-34 at 64 px, 50,000 steps a task",
    (
        Setting("image_size", 64, RUN, f"images at 64 px (IMAGE_SIZE = 64, {_IND}); the task cache is built at this size"),
        Setting("image_framing", "full", RUN,
                "random-resized crops from the full image (random_crop_via_cropped_window_and_resize on the stored "
                "image, experiments_jax/training/augmentations.py); evaluation takes the central square"),
        Setting("backbone", "cifar_resnet34", RECIPE, f"CifarResNet34: 3x3 stem, no max-pool, blocks 3-4-6-3 ({_IND})"),
        Setting("input_size", 64, RECIPE, "crops resized to 64 x 64"),
        Setting("batch_size", 256, RECIPE, f"batch 256 ({_IND}; Dynamic: see adaptive_batch_size)"),
        Setting("learning_rate", 0.1, RECIPE, "peak learning rate 0.1 (init_learning_rate)"),
        Setting("momentum", 0.9, RECIPE, "SGD momentum 0.9 (optimizers.sgdw)"),
        Setting("nesterov", True, RECIPE, "Nesterov momentum"),
        Setting("weight_decay", 1e-4, RECIPE, "weight decay 1e-4 on weights only (default_weight_decay_mask)"),
        Setting("warmup_epochs", 7.0, RECIPE, "linear warm-up over min(max_steps - 1, 7 epochs) (warmup_cosine_decay)"),
        Setting("final_learning_rate", 1e-8, RECIPE, "cosine decay to 1e-8 at max_steps (final_learning_rate)"),
        Setting("min_steps", MAX_STEPS, RECIPE, "every task trains for exactly max_steps (early stopping never fires); "
                                                 "follows an overridden max_steps"),
        Setting("max_steps", 50_000, RECIPE, "max_steps = DEFAULT_MAX_STEPS = 50,000 a task"),
        Setting("eval_every_steps", 1_000, RECIPE, "validation on dev every 1,000 steps, step 0 included "
                                                   "(run_validation_every_n_steps)"),
        Setting("patience", 0, RECIPE, "early stopping off: early_stopping_grace = 50,000 validations never runs out"),
        Setting("label_smoothing", 0.0, RECIPE, "label smoothing 0 (Independent, Previous; Dynamic searches it)"),
        Setting("random_crop", True, RECIPE, "random-resized crop for training"),
        Setting("crop_scale_min", 0.08, RECIPE, "crop area in [0.08, 1], aspect ratio in [3/4, 4/3], 10 attempts"),
        Setting("flip", True, RECIPE, "random horizontal flip"),
        Setting("eval_batch_size", 256, RECIPE, "validation and prediction batch 256"),
        Setting("adaptive_batch_size", True, SEARCH,
                f"Dynamic's batch min(512, max(16, 2^floor(log2(0.0025 N)))) for N training examples "
                f"(BatchSizeStrategy.ADAPTIVE, {_DKNN})"),
        Setting("num_trials", 16, SEARCH, f"16 hyperparameter trials per task (trials_per_task, {_DKNN})"),
        Setting("lr_min", 1e-4, SEARCH, "learning rate log-uniform in [1e-4, 1e-1] (search_space_creator)"),
        Setting("lr_max", 1e-1, SEARCH, "learning rate log-uniform in [1e-4, 1e-1]"),
        Setting("label_smoothing_max", 0.3, SEARCH, "label smoothing uniform in [0, 0.3]"),
        Setting("knn_k", 5, SEARCH, "kNN with k = 5 (sklearn KNeighborsClassifier default)"),
        Setting("knn_max_train", 10_000, SEARCH, "kNN selection embeds at most 10,000 train examples"),
        Setting("knn_max_dev", 5_000, SEARCH, "kNN selection scores at most 5,000 dev examples"),
    ),
)

CPU = Preset(
    "cpu",
    "the CPU-sized defaults (what runs without --preset): small convnet at 32 px, at most 400 steps a task; "
    "not the reference's recipe",
    (
        Setting("image_size", 32, RUN, "reference: 64"),
        Setting("image_framing", "center-square", RUN, "reference: full (crops from the full image)"),
        Setting("backbone", "small_convnet", RECIPE, "reference: cifar_resnet34"),
        Setting("input_size", 32, RECIPE, "reference: 64"),
        Setting("batch_size", 64, RECIPE, "reference: 256"),
        Setting("learning_rate", 0.05, RECIPE, "reference: 0.1"),
        Setting("warmup_epochs", 1.0, RECIPE, "reference: 7"),
        Setting("final_learning_rate", 0.0, RECIPE, "reference: 1e-8"),
        Setting("max_steps", 400, RECIPE, "reference: 50,000 (ours: 12 epochs clipped to [40, 400])"),
        Setting("eval_every_steps", 0, RECIPE, "reference: 1,000 (ours: every epoch)"),
        Setting("patience", 3, RECIPE, "reference: off (0)"),
        Setting("crop_scale_min", 0.35, RECIPE, "reference: 0.08"),
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (CPU, REFERENCE)}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)} (`nevis-bench presets list`)")
    return PRESETS[name]


def apply(values: dict[str, Any], name: str, learner_fields: set[str] | None, learner: str) -> dict[str, Any]:
    """``values`` (run settings with a ``learner_config`` table) with the preset's settings filled in where
    the user gave none. ``learner_fields``: the learner's hyperparameter names (None: unknown learner,
    which validation reports later)."""
    preset = get(name)
    values = {**values, "learner_config": dict(values.get("learner_config", {}))}
    recipe_keys = [s.key for s in preset.settings if s.scope == RECIPE]
    if learner_fields is not None:
        missing = [key for key in recipe_keys if key not in learner_fields]
        if missing:
            raise ConfigError(
                f"preset {name!r} sets the shared training recipe, which learner {learner!r} does not use (it has no "
                f"{', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); it applies to learners built on "
                "the recipe, e.g. independent, finetune_prev, dynamic_knn"
            )
    learner_config = values["learner_config"]
    for setting in preset.settings:
        if setting.scope == RUN:
            values.setdefault(setting.key, setting.value)
        elif setting.scope == RECIPE or (learner_fields is not None and setting.key in learner_fields):
            learner_config.setdefault(setting.key, setting.value)
    for key, value in list(learner_config.items()):
        if value == MAX_STEPS:
            learner_config[key] = learner_config["max_steps"]
    values["preset"] = name
    return values


def describe(name: str, learner_defaults: dict[str, Any] | None = None) -> str:
    """Every setting of a preset with the reference value it reproduces (``presets describe``)."""
    preset = get(name)
    lines = [f"{preset.name}: {preset.summary}", "",
             f"{'setting':<22} {'value':<16} {'applies to':<28} reference", f"{'-' * 22} {'-' * 16} {'-' * 28} {'-' * 9}"]
    scopes = {RUN: "run (-o KEY=VALUE)", RECIPE: "recipe learners", SEARCH: "learners with it (dynamic_knn)"}
    for s in preset.settings:
        lines.append(f"{s.key:<22} {str(s.value):<16} {scopes[s.scope]:<28} {s.reference}")
    lines += ["", "Settings you give (--config, flags, -o) override the preset's; e.g. on a CPU: "
                  f"nevis-bench run --preset {name} -o max_steps=2 -o min_steps=2."]
    return "\n".join(lines)
