"""The daemon's side of a battle over several ranks (services/battle_group.py): the job
travels to the ranks whole through its file, the ranks learn that the daemon is gone,
and the battle's game hooks write the hero's progress. Real 2-rank battles are the slow
tests of tests/train/test_ranks.py."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from realm_kernel.services import battle_group
from realm_kernel.services.battle_group import PARENT_ENV, group_dir, read_job, write_job
from realm_kernel.store.config import RetentionConfig, TrainingConfig
from realm_kernel.store.ledger import Ledger
from realm_kernel.train.trainer import Job


def test_a_job_travels_to_the_ranks_whole_without_its_hooks(tmp_path):
    job = Job(quest_id="q.jsonl", examples=[{"messages": [{"role": "user", "content": "1+1"}]}],
              model_path=tmp_path / "ck-10", run_id="r-1", step_offset=10,
              training=TrainingConfig(batch_size=6, max_steps=4, learning_rate=2e-4),
              skill="bin", skill_level=3, resume_from=tmp_path / "ck-10",
              on_progress=lambda *a: None, on_checkpoint=lambda *a: None, callbacks=[object()],
              retention=RetentionConfig(keep_latest=5), base_model="dio-mini", max_micro=2,
              checkpointing=True, lr_scale=0.5, skip_steps=frozenset({7, 3}))
    write_job(job, tmp_path / "job.json")
    back = read_job(tmp_path / "job.json")
    hooks = ("on_progress", "on_checkpoint", "callbacks")
    for f in fields(Job):
        if f.name not in hooks:
            assert getattr(back, f.name) == getattr(job, f.name), f.name
    assert isinstance(back.model_path, Path) and isinstance(back.training, TrainingConfig)
    assert back.skip_steps == frozenset({3, 7}) and isinstance(back.skip_steps, frozenset)
    assert (back.on_progress, back.on_checkpoint, back.callbacks) == (None, None, [])
    plain = Job(quest_id="p", examples=[], model_path=tmp_path, run_id="r-2")
    write_job(plain, tmp_path / "plain.json")
    again = read_job(tmp_path / "plain.json")
    assert again.resume_from is None and again.retention is None and again.skip_steps == frozenset()


def test_ranks_outliving_the_daemon_stop(realm_home, monkeypatch):
    assert group_dir(realm_home, "r-9") == realm_home.logs / "ranks-r-9"
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert not battle_group._parent_gone(), "not started by a daemon: nothing to outlive"
    monkeypatch.setenv(PARENT_ENV, str(os.getpid()))
    assert not battle_group._parent_gone()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    monkeypatch.setenv(PARENT_ENV, str(dead.pid))
    assert battle_group._parent_gone()


def test_the_battle_hooks_write_the_heros_progress(realm_home):
    ledger = Ledger(realm_home, "daemon")
    hooks = battle_group.battle_hooks(ledger, "DIO")
    assert set(hooks) == {"on_progress", "on_checkpoint"}
    flushed = []
    hooks["on_progress"](990, 1010, lambda: flushed.append(1))
    ups = ledger.query("SELECT message FROM events WHERE kind = 'hero_level_up'")
    assert [u["message"] for u in ups] == ["Level up! DIO reached Level 1"] and flushed == [1]
    ledger.append("metrics", [{"step": 1010, "loss": 0.5}])
    hooks["on_checkpoint"](1010, realm_home.checkpoints / "checkpoint-1010")  # the achievements
    assert ledger.query("SELECT count(*) AS n FROM achievements")[0]["n"] >= 1
