"""The rules a failing battle follows (train/rescue.py), the fault hooks that drive them
(store/faults.py) and the remembered batch split (store/batch_fit.py), alone. The real
runs through the daemon are in tests/reliability/test_battle_faults.py."""

from __future__ import annotations

import pytest
import torch

from realm_kernel.store import batch_fit, faults
from realm_kernel.store.config import ConfigError, TrainingConfig, load_config
from realm_kernel.train.rescue import LossAlarm, LossWatch, alarm_reason, is_oom, smaller, split

CFG = TrainingConfig(loss_spike_factor=3.0, loss_spike_window=4, loss_spike_warmup=3)


def test_non_finite_loss_or_gradient_norm_is_an_alarm():
    assert "nan" in alarm_reason(float("nan"), 1.0, [], CFG)
    assert "inf" in alarm_reason(float("inf"), None, [1.0] * 10, CFG)
    assert "gradient norm" in alarm_reason(1.0, float("nan"), [], CFG)
    assert alarm_reason(1.0, 2.0, [], CFG) is None


def test_spike_rule_factor_times_the_median_of_the_window_after_warm_up():
    assert alarm_reason(100.0, 1.0, [1.0, 1.0], CFG) is None, "two losses: still warming up"
    assert alarm_reason(3.1, 1.0, [1.0, 1.0, 1.0], CFG) is not None
    assert alarm_reason(2.9, 1.0, [1.0, 1.0, 1.0], CFG) is None
    # Only the last 4 count: the early high losses are out of the window.
    assert alarm_reason(3.5, 1.0, [9.0, 9.0, 9.0, 1.0, 1.0, 1.0, 1.0], CFG) is not None
    off = CFG.model_copy(update={"loss_spike_factor": 0.0})
    assert alarm_reason(1e6, 1.0, [1.0] * 10, off) is None


def test_a_skipped_step_is_not_judged_and_leaves_the_window_alone():
    """The replayed bad step logs a zero (or NaN) loss: no second alarm, no zero in the
    median; the next real step is judged as before."""
    from types import SimpleNamespace
    watch = LossWatch(CFG, skip_steps=frozenset({5}))
    state = SimpleNamespace(global_step=0)
    watch.on_train_begin(None, state, None)
    for step in range(1, 5):
        state.global_step = step
        watch.on_log(None, state, None, logs={"loss": 1.0, "grad_norm": 1.0})
    state.global_step = 5
    watch.on_log(None, state, None, logs={"loss": float("nan"), "grad_norm": float("nan")})
    assert list(watch.history) == [1.0] * 4
    state.global_step = 6
    with pytest.raises(LossAlarm):
        watch.on_log(None, state, None, logs={"loss": 3.5, "grad_norm": 1.0})


def test_split_keeps_the_examples_per_step_and_back_off_ends_at_batch_one_checkpointed():
    assert split(8, 0) == (8, 1) and split(8, 4) == (4, 2) and split(8, 1) == (1, 8)
    assert split(3, 1) == (1, 3) and split(6, 4) == (3, 2)
    assert smaller(8, False) == (4, False) and smaller(1, False) == (1, True)
    assert smaller(1, True) is None


def test_oom_fault_raises_a_real_out_of_memory_error_in_its_phase(monkeypatch):
    monkeypatch.setenv(faults.FAULT_ENV, "oom:backward@3:2")
    faults.out_of_memory("forward", 5, 8)  # another phase
    faults.out_of_memory("backward", 2, 8)  # before its step
    faults.out_of_memory("backward", 5, 2)  # a micro-batch the card fits
    with pytest.raises(torch.cuda.OutOfMemoryError) as e:
        faults.out_of_memory("backward", 3, 4)
    assert is_oom(e.value) and not is_oom(RuntimeError("not memory"))
    monkeypatch.setenv(faults.FAULT_ENV, "nan@4")
    assert faults.nan_step(4) and not faults.nan_step(3)
    faults.out_of_memory("backward", 3, 4)  # no oom fault configured


def test_batch_fit_is_remembered_per_card_model_and_max_length(realm_home):
    key = batch_fit.fit_key("NVIDIA RTX 4090", "Qwen/Qwen3-0.6B", 2048)
    assert batch_fit.remembered(realm_home, key) is None
    batch_fit.remember(realm_home, key, micro_batch=2, gradient_accumulation_steps=8,
                       gradient_checkpointing=False)
    fit = batch_fit.remembered(realm_home, key)
    assert (fit["micro_batch"], fit["gradient_accumulation_steps"]) == (2, 8) and fit["measured"]
    assert batch_fit.remembered(realm_home, batch_fit.fit_key("cpu", "Qwen/Qwen3-0.6B", 2048)) is None
    (realm_home.status / batch_fit.FILE).write_text("{broken")
    assert batch_fit.remembered(realm_home, key) is None  # unreadable: nothing remembered


def test_alarm_settings_are_validated(realm_home):
    realm_home.config_file.write_text("[training]\nalarm_lr_factor = 2.0\n")
    with pytest.raises(ConfigError, match="alarm_lr_factor"):
        load_config(realm_home.home)


def test_the_tavern_toasts_announce_a_failing_battles_rescues():
    from realm_widgets.pages import TOAST_KINDS
    assert {"oom_backoff", "loss_alarm", "rollback", "setup_fault", "eval_backoff"} <= set(TOAST_KINDS)


def test_hero_profile_shows_the_remembered_split_as_measured(realm_home):
    """`realm hero profile` prints resolved_profile.text() (the test realm: max_length 128)."""
    batch_fit.remember(realm_home, batch_fit.fit_key("cpu", "dio-mini", 128), micro_batch=4,
                       gradient_accumulation_steps=4, gradient_checkpointing=True)
    batch_fit.remember(realm_home, batch_fit.fit_key("cpu", "dio-mini", 512), micro_batch=1,
                       gradient_accumulation_steps=16, gradient_checkpointing=True)
    res = load_config(realm_home.home).resolved_profile
    assert [(m["card"], m["micro_batch"]) for m in res.measured] == [("cpu", 4)]
    assert "Measured on cpu: micro-batch 4 x accumulation 4 with gradient checkpointing" in res.text()
    assert res.as_dict()["measured"][0]["gradient_accumulation_steps"] == 4


@pytest.mark.slow
def test_a_quest_whose_alarms_keep_firing_is_set_aside_after_max_rollbacks(realm_home):
    """A spike rule every loss trips (factor 0.5: any loss above half the median) fires at
    each step after the warm-up; after max_rollbacks the quest fails with the reason."""
    import realm_skills as skills
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.train import Job, TrainerEngine
    cfg = load_config(realm_home.home).training.model_copy(update={
        "loss_spike_factor": 0.5, "loss_spike_warmup": 2, "max_rollbacks": 2, "save_steps": 2,
        "eval_fraction": 0.0, "packing": False, "batch_size": 8})
    examples = [{"messages": p.as_example()["messages"]} for p in skills.generate("bin", 1, 120, seed=6)]
    led = Ledger(realm_home, "test")
    result = TrainerEngine(realm_home, led).run_job(Job(
        quest_id="spiky.jsonl", examples=examples, model_path=realm_home.dio_mini,
        run_id="run-spiky", training=cfg))
    assert not result.success and not result.setup_fault
    assert result.error_message.startswith("SetAside: set aside after 2 rollbacks")
    kinds = [r["kind"] for r in led.query(
        "SELECT kind FROM events WHERE kind IN ('loss_alarm', 'rollback') ORDER BY ts")]
    assert kinds == ["loss_alarm", "rollback", "loss_alarm", "rollback", "loss_alarm"]


def test_out_of_memory_before_a_batch_was_chosen_blames_the_model_not_the_batch(realm_home):
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.train import Job
    from realm_kernel.train.rescue import OutOfMemoryAtBatchOne
    from realm_kernel.train.retries import Retries
    job = Job(quest_id="q.jsonl", examples=[], model_path=realm_home.dio_mini, run_id="r")
    retries = Retries(realm_home, Ledger(realm_home, "test"), job)
    assert retries.tried == {}  # the engine ran out of memory before it chose a split
    with pytest.raises(OutOfMemoryAtBatchOne, match="loading the model.*qlora"):
        retries.back_off(job, torch.cuda.OutOfMemoryError("CUDA out of memory"))
