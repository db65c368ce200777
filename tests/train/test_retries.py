"""One battle's retries (train/retries.py) alone, on a real realm and ledger: the split a
battle on this card backed off to before, and the rollback count against max_rollbacks.
The runs that reach them: tests/train/test_engine_fast.py and the slow test_rescue.py."""

from __future__ import annotations

import pytest

from realm_kernel.store import batch_fit
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job
from realm_kernel.train.rescue import LossAlarm, SetAside
from realm_kernel.train.retries import Retries


def job_for(paths, **training) -> Job:
    cfg = load_config(paths.home).training.model_copy(update=training)
    return Job(quest_id="q.jsonl", examples=[], model_path=paths.dio_mini, run_id="r", training=cfg)


def test_a_remembered_split_sets_the_micro_batch_and_gradient_checkpointing(realm_home):
    job = job_for(realm_home)
    retries = Retries(realm_home, Ledger(realm_home, "test"), job)
    assert retries.remembered(job) is job, "nothing remembered: the job as it came"
    batch_fit.remember(realm_home, retries.key, micro_batch=2, gradient_accumulation_steps=4,
                       gradient_checkpointing=True)
    fit = retries.remembered(job)
    assert (fit.max_micro, fit.checkpointing) == (2, True)
    batch_fit.remember(realm_home, retries.key, micro_batch=1, gradient_accumulation_steps=8,
                       gradient_checkpointing=False)
    fit = retries.remembered(job)
    assert (fit.max_micro, fit.checkpointing) == (1, False)


def test_the_last_allowed_rollback_goes_on_and_the_next_alarm_sets_the_quest_aside(realm_home):
    led = Ledger(realm_home, "test")
    job = job_for(realm_home, max_rollbacks=2, alarm_lr_factor=0.5)
    retries = Retries(realm_home, led, job)
    alarm = LossAlarm(3, range(3, 4), "loss nan")
    once = retries.roll_back(job, alarm)
    twice = retries.roll_back(once, alarm)  # rollback 2 of 2: still allowed
    assert (once.rollbacks, twice.rollbacks) == (1, 2) and twice.lr_scale == 0.25
    assert twice.skip_steps == frozenset({3})
    with pytest.raises(SetAside, match="set aside after 2 rollbacks: loss alarm at step 3: loss nan"):
        retries.roll_back(twice, alarm)
    kinds = [r["kind"] for r in led.query(
        "SELECT kind FROM events WHERE kind IN ('loss_alarm', 'rollback') ORDER BY ts")]
    assert kinds == ["loss_alarm", "rollback", "loss_alarm", "rollback", "loss_alarm"]
