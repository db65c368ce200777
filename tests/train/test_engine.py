"""TrainerEngine on dio-mini for real: steps, canonical checkpoints, sidecars, ledger rows."""

import json
import re

import pytest

import realm_skills as skills
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.callbacks import canonical_name

pytestmark = pytest.mark.slow


def bin_job(paths, count=200, **kw):
    ex = [p.as_example() for p in skills.generate("bin", 1, count, seed=3)]
    return Job(quest_id="q.jsonl", examples=ex, model_path=paths.dio_mini, run_id="run-1",
               training=load_config(paths.home).training, skill="bin", skill_level=1, **kw)


def test_canonical_name():
    from datetime import datetime
    assert canonical_name(1234, datetime(2026, 11, 26, 9, 5)) == "checkpoint-1234-20261126-0905"


def test_run_job_trains_and_records_everything(realm_home):
    led = Ledger(realm_home, "test")
    result = TrainerEngine(realm_home, led).run_job(bin_job(realm_home, step_offset=100))
    assert result.success, result.error_message
    steps = result.global_step - 100
    assert steps == led.scalar("SELECT max(local_step) FROM metrics") > 10
    losses = [r["loss"] for r in led.query(
        "SELECT loss FROM metrics WHERE loss IS NOT NULL ORDER BY step")]
    assert len(losses) == steps and losses[-1] < losses[0]
    assert led.scalar("SELECT min(step) FROM metrics") == 101  # steps continue the hero's XP
    assert led.scalar("SELECT count(*) FROM metrics WHERE val_loss IS NOT NULL") >= 1
    ckpts = led.query("SELECT * FROM checkpoints ORDER BY step")
    assert ckpts[-1]["step"] == result.global_step  # a quest always ends on a checkpoint
    for row in ckpts:
        path = realm_home.checkpoints / row["name"]
        assert re.fullmatch(r"checkpoint-\d+-\d{8}-\d{4}", row["name"])
        sidecar = json.loads((path / ".ledger.json").read_text())
        assert sidecar["step"] == row["step"] and sidecar["skill"] == "bin"
        assert sidecar["training_file"] == "q.jsonl" and sidecar["loss"] == row["loss"]
        assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
    assert result.last_checkpoint_path == str(realm_home.checkpoints / ckpts[-1]["name"])
    assert not list(realm_home.checkpoints.glob(".run-*")), "working dir cleaned up"
    assert result.tokens_per_second and result.tokens_per_second > 0


def test_bad_model_path_fails_cleanly(realm_home):
    led = Ledger(realm_home, "test")
    job = bin_job(realm_home, count=20)
    job.model_path = realm_home.home / "no-such-model"
    result = TrainerEngine(realm_home, led).run_job(job)
    assert not result.success and "no HF model directory" in result.error_message
