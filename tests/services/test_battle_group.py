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

import pytest

from realm_kernel.services import battle_group
from realm_kernel.services.battle_group import PARENT_ENV, group_dir, read_job, write_job
from realm_kernel.store.config import RetentionConfig, TrainingConfig
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import ranks
from realm_kernel.train.trainer import Job

REAL_LAUNCH = ranks.launch_command


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


# Its waits are bounded at 20 s: a mutation run's per-test time limit must see a mutant
# that never ships or aborts fail at the wait, not time out.
# A stand-in for `accelerate launch` of the ranks (the real 2-rank battles are slow tests
# in tests/train/test_ranks.py): one plain process that reads the job file the daemon
# wrote, checks what the daemon told it, and answers as rank 0 does, or dies talking.
RANKS = r"""
import json, os, sys, time
from pathlib import Path

import pytest
where = Path(sys.argv[1])
job = json.loads((where / "job.json").read_text())
assert os.environ["REALM_RANKS_PARENT"] == str(os.getppid()), "the daemon's pid reaches the ranks"
assert os.environ["REALM_HOME"] == str(where.parent.parent), "the realm reaches the ranks"
mode = job["quest_id"].split(".")[0]
print("rank 0 took", mode, flush=True)
if mode == "die":
    sys.stderr.write("the ranks' last words\n")
    sys.exit(3)
if mode == "publish":  # rank 0 publishes a checkpoint; the daemon must ship it while the ranks run
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.store.paths import RealmPaths
    Ledger(RealmPaths.at(where.parent.parent), "daemon").append("checkpoints", [{
        "step": 12, "name": "checkpoint-12", "path": str(where / "checkpoint-12"), "run_id": job["run_id"]}])
    deadline = time.monotonic() + 20
    while not (where / "shipped").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # sleep-ok: the stand-in rank polls for the daemon's file, bounded by its deadline
    if not (where / "shipped").exists():
        sys.exit(4)
stopped = False
if mode == "abort":  # waits, bounded, for the daemon's abort file
    deadline = time.monotonic() + 20
    while not (where / "abort").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # sleep-ok: the stand-in rank polls for the daemon's file, bounded by its deadline
    stopped = (where / "abort").exists()
(where / "result.json").write_text(json.dumps({
    "success": True, "global_step": job["step_offset"] + 4, "world_size": 2, "stopped": stopped,
    "final_loss": 0.25}))
"""


def stand_in_ranks(monkeypatch) -> None:
    """`accelerate launch` of the ranks replaced by RANKS, its command line checked."""
    def launch(nproc, parallel, module, args, *, port, cuda):
        cmd = REAL_LAUNCH(nproc, parallel, module, args, port=port, cuda=cuda)
        assert cmd[-2 - len(args):] == ["-m", "realm_kernel.services.battle_group", *args]
        return [sys.executable, "-c", RANKS, *args]

    monkeypatch.setattr(ranks, "launch_command", launch)
    monkeypatch.delenv(PARENT_ENV, raising=False)


def _battle(realm_home, monkeypatch, mode: str, should_abort=lambda: False, parallel: str = "ddp"):
    stand_in_ranks(monkeypatch)
    job = Job(quest_id=f"{mode}.jsonl", examples=[], model_path=realm_home.home, run_id="r-7",
              step_offset=10)
    polls = []
    result = battle_group.fight_in_ranks(realm_home, job, 2, parallel, should_abort, poll_s=0.05,
                                         on_poll=lambda: polls.append(1))
    return result, polls


def test_the_daemon_launches_the_ranks_and_takes_rank_zeros_result(realm_home, monkeypatch):
    where = group_dir(realm_home, "r-7")
    where.mkdir(parents=True)
    (where / "ranks.log").write_text("an older battle's log")
    done, _ = _battle(realm_home, monkeypatch, "ok")
    assert (done.success, done.global_step, done.world_size, done.stopped) == (True, 14, 2, False)
    assert not (where / "job.json").exists(), "the job file goes once the ranks are done"
    assert (where / "ranks.log").read_text() == "rank 0 took ok\n", "a fresh folder for each battle"
    stopped, polls = _battle(realm_home, monkeypatch, "abort", should_abort=lambda: True)
    assert stopped.success and stopped.stopped, "the daemon's abort reached the ranks"
    assert polls, "on_poll runs while the ranks train"


def test_ranks_that_die_without_a_result_fail_the_battle_with_their_log(realm_home, monkeypatch):
    failed, _ = _battle(realm_home, monkeypatch, "die")
    log = group_dir(realm_home, "r-7") / "ranks.log"
    assert (failed.success, failed.global_step, failed.world_size) == (False, 10, 2)
    assert failed.error_message == (f"the 2 training processes exited with 3 and no result (log: {log}):\n"
                                    "rank 0 took die\nthe ranks' last words\n")


def test_fsdp_on_a_cpu_is_a_setup_fault_and_launches_nothing(realm_home, monkeypatch):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine may train with FSDP")
    refused, _ = _battle(realm_home, monkeypatch, "ok", parallel="fsdp")
    assert (refused.success, refused.setup_fault, refused.global_step) == (False, True, 10)
    assert "needs CUDA GPUs" in refused.error_message
    assert not group_dir(realm_home, "r-7").exists()


def test_each_checkpoint_rank_zero_publishes_is_shipped_once_as_it_appears(realm_home):
    ledger = Ledger(realm_home, "daemon")

    def publish(step: int, run_id: str) -> None:
        name = f"checkpoint-{step}-20260101-1200"
        ledger.append("checkpoints", [{"step": step, "name": name, "run_id": run_id,
                                       "path": str(realm_home.checkpoints / name)}])

    shipped = []
    watch = battle_group.PublishedWatch(ledger, "r-1", lambda step, path: shipped.append((step, path.name)))
    watch()
    assert shipped == []
    publish(20, "r-1")
    publish(10, "r-1")
    publish(30, "another run")
    watch()
    watch()
    assert shipped == [(10, "checkpoint-10-20260101-1200"), (20, "checkpoint-20-20260101-1200")]
    publish(40, "r-1")
    watch()
    assert [s for s, _ in shipped] == [10, 20, 40]
