"""Acceptance tests of the ``warpgrad`` learner (WarpGrad on frozen features)."""

import torch
from nevis_bench.learners.warpgrad import _body_names, _forward, _task_loss, _warp_names

from nevis_bench.run import runner
from nevis_bench.run.checkpoint import load as load_checkpoint

LAYERS = 2  # the default
OFF = {"warp_weight": 0.0, "past_weight": 0.0, "init_weight": 0.0}


def _run(tmp_path, data_dir, name, config, stream="synthetic-class-incremental", options=None, seed=0):
    values = {
        "stream": stream, "learner": "warpgrad", "runs_dir": str(tmp_path / "runs"), "data_dir": str(data_dir),
        "progress": False, "final_eval": True, "run_name": f"{name}-{seed}", "learner_config": config, "seed": seed,
    }
    if options:
        values["stream_options"] = options
    run_dir, evaluator = runner.start(values)
    assert evaluator.run() == "complete"
    return run_dir.read_events(), load_checkpoint(run_dir.checkpoint_path)["learner_state"]


def _train_infos(events):
    return [e["learner_info"] for e in events if e["event_type"] == "train"]


def _is_identity(omega) -> bool:
    return all(torch.equal(omega[f"warp{i}.weight"], torch.eye(omega[f"warp{i}.weight"].shape[0]))
               and torch.equal(omega[f"warp{i}.bias"], torch.zeros_like(omega[f"warp{i}.bias"]))
               for i in range(LAYERS))


def test_meta_learned_warps_speed_up_adaptation_on_new_tasks_and_zero_weights_freeze_them(tmp_path):
    # 8 class-incremental tasks of 4 pet classes each (the base has 37 classes: a small task cache)
    options = {"base": "oxford_iiit_pets", "tasks": 8, "classes_per_task": 4}
    data = tmp_path / "data"
    # the init objective is off in both runs, so theta0 is the same and only the warps differ
    learned_events, learned = _run(tmp_path, data, "warp", {"init_weight": 0.0}, options=options)
    fixed_events, fixed = _run(tmp_path, data, "identity", OFF, options=options)
    _, no_past = _run(tmp_path, data, "no-past", {"init_weight": 0.0, "past_weight": 0.0}, options=options)
    learned_probe = [i["probe_loss"] for i in _train_infos(learned_events)]
    fixed_probe = [i["probe_loss"] for i in _train_infos(fixed_events)]
    print("loss at inner step 20, learned warps:", [round(v, 3) for v in learned_probe])
    print("loss at inner step 20, identity warps:", [round(v, 3) for v in fixed_probe])
    # task 1 is adapted before any meta-update: identical start in both runs
    assert learned_probe[0] == fixed_probe[0]
    # new tasks after 4 tasks of meta-training: >= 10% lower training loss at inner step 20
    new_learned, new_fixed = sum(learned_probe[4:]) / 4, sum(fixed_probe[4:]) / 4
    print(f"tasks 5-8 mean: learned {new_learned:.3f}, identity {new_fixed:.3f}, ratio {new_learned / new_fixed:.3f}")
    assert new_learned <= 0.9 * new_fixed
    # both meta-objectives off: the warps are bit-identical to their (identity) initialisation and no
    # meta-step ran; init objective off: theta0 is untouched (the same in both runs)
    assert _is_identity(fixed["omega"]) and not _is_identity(learned["omega"])
    assert all(i["meta_steps"] == 0 for i in _train_infos(fixed_events))
    assert all(i["meta_steps"] == 30 for i in _train_infos(learned_events))
    assert all(torch.equal(learned["theta0"][k], fixed["theta0"][k]) for k in _body_names(LAYERS))
    # meta-updates are charged as train FLOPs; the tasks are learned (4 classes: chance 0.25)
    learned_train = [e for e in learned_events if e["event_type"] == "train"]
    fixed_train = [e for e in fixed_events if e["event_type"] == "train"]
    assert all(a["flops_train"] > b["flops_train"] > 0 for a, b in zip(learned_train, fixed_train))
    accuracy = [e["top1_accuracy"] for e in learned_events if e["event_type"] == "predict" and not e["final_eval"]]
    assert sum(accuracy) / len(accuracy) > 0.4
    # The stale-parameter claim (the past-task term keeps the stored parameters fitting their data under
    # the moving warps) held on raw features (0.00213 vs 0.00242 summed) but not on standardised ones
    # (0.047 with the term vs 0.0035 without, 2 threads): both runs keep 5 stored tasks, and the claim is
    # recorded as not reproduced in docs/learners/warpgrad.md rather than asserted.
    with_past, without_past = _stale_losses(learned), _stale_losses(no_past)
    assert len(with_past) == len(without_past) == 5


def _stale_losses(state):
    """Loss of every stored task's final parameters on its memory under the *current* warps."""
    omega = [state["omega"][k] for k in _warp_names(LAYERS)]
    losses = []
    for m in state["memory"]:
        task = state["tasks"][m["key"]]
        theta = [task["theta"][k] for k in _body_names(LAYERS) + ["head.weight", "head.bias"]]
        losses.append(float(_task_loss(_forward(m["x"], theta, omega), m["y"], task["multi"])))
    return losses


def test_freezing_the_warps_after_warm_up_keeps_stored_task_parameters_valid(tmp_path, data_dir):
    # synthetic-debug: a 20-label multi-label task, then a 20-class task
    events, state = _run(tmp_path, data_dir, "freeze", {"steps": 100, "meta_points": 10, "freeze_after": 1},
                         "synthetic-debug")
    # no meta-step after task 1, so every final evaluation equals the evaluation right after training
    assert [i["meta_steps"] for i in _train_infos(events)] == [10, 0]
    assert [i["warps_frozen"] for i in _train_infos(events)] == [False, True]
    metric = lambda e: e.get("top1_accuracy") if e["task_kind"] == "single_label" else e["mean_average_precision"]
    predicts = [e for e in events if e["event_type"] == "predict"]
    first = {e["task_key"]: metric(e) for e in predicts if not e["final_eval"]}
    final = {e["task_key"]: metric(e) for e in predicts if e["final_eval"]}
    assert first == final and len(final) == 2
    assert not _is_identity(state["omega"]) and len(state["memory"]) == 2
    assert all(e["flops_train"] > 0 for e in events if e["event_type"] == "train")
    assert all(e["flops_inference"] > 0 for e in predicts)
