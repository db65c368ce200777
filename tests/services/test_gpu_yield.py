"""Evals never starve on a busy GPU: with NVML reporting 95% (a stand-in pynvml) while the
daemon trains, the eval queue asks for the GPU, the daemon lends it at its next quest
boundary, the eval runs, and training goes on (services/gpu_yield.py)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from realm_kernel.api import Realm
from realm_kernel.services import gpu_yield
from realm_kernel.services.daemon import Daemon
from realm_kernel.services.taskmaster import TaskMaster
from realm_kernel.store.status import TRAINING, read_status, write_status

from ..helpers import TEST_TOML, child_env, wait_for
from .test_taskmaster import fake_nvml

BUSY = [(95, 20 * 2**30, 24 * 2**30)]  # one 24 GiB card, 95% busy

# The same stand-in as a module file, for the daemon and Task Master subprocesses.
PYNVML = '''"""pynvml stand-in: one 24 GiB GPU, always 95% busy."""
from collections import namedtuple
_U, _M = namedtuple("Util", "gpu memory"), namedtuple("Mem", "used total free")
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetUtilizationRates(h): return _U(95, 50)
def nvmlDeviceGetMemoryInfo(h): return _M(20 << 30, 24 << 30, 4 << 30)
'''


def events(realm: Realm, kind: str) -> list[dict]:
    return realm.ledger.query("SELECT * FROM events WHERE kind = ? ORDER BY ts", [kind])


def test_the_busy_gpu_is_lent_to_the_waiting_eval_and_taken_back(realm_home, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(BUSY))
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true"))
    realm, tm, daemon = Realm(realm_home.home), TaskMaster(realm_home.home), Daemon(realm_home.home)
    tm.reload_config()
    daemon.reload_config()
    realm.ledger.event("eval_requested", "Evaluate checkpoint-5", json.dumps(
        {"checkpoint": "checkpoint-5-20260101-0000", "step": 5, "path": "/nowhere", "skill": "bin",
         "level": 1}))
    write_status(realm_home, TRAINING, state="training")  # mid-quest
    # The eval has work but the GPU is busy: it asks for the GPU and waits.
    assert tm.pick() != ("process_eval_queue", "1 checkpoint(s) await their eval")
    loan = gpu_yield.current(realm_home)
    assert loan and loan["task"] == "process_eval_queue" and loan["until"] > time.time() + 200
    assert len(events(realm, "gpu_yield_asked")) == 1
    assert realm.sql("SELECT data FROM events WHERE kind = 'gpu_yield_asked'") == [
        {"data": json.dumps({"task": "process_eval_queue"})}]
    assert (tm.pick() or ("",))[0] != "process_eval_queue"  # not lent yet: still waits, asks once
    assert len(events(realm, "gpu_yield_asked")) == 1
    # The daemon's quest boundary: no quest starts, it says it lends the GPU.
    (realm_home.queue("normal") / "next.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "1+1"},
                                 {"role": "assistant", "content": "2"}]}) + "\n")
    assert daemon.tick() is False
    assert read_status(realm_home, TRAINING)["state"] == gpu_yield.YIELDING
    assert len(events(realm, "gpu_lent")) == 1 and (realm_home.queue("normal") / "next.jsonl").exists()
    # Lent: the eval may run now, on the "busy" GPU.
    assert tm.pick()[0] == "process_eval_queue"
    # Answered: nothing left to evaluate, so the loan ends and the quest may start.
    realm.ledger.append("evals", [{"step": 5, "checkpoint": "checkpoint-5-20260101-0000", "skill": "bin",
                                   "level": 1, "accuracy": 0.5, "n": 2, "correct": 1}])
    tm.pick()
    assert gpu_yield.current(realm_home) is None
    # A request past its deadline is void: a Task Master that died holds nothing up.
    asked = gpu_yield.request(realm_home, "process_eval_queue", 0.05)
    assert gpu_yield.current(realm_home) == asked, "live until its deadline"
    wait_for(lambda: gpu_yield.current(realm_home) is None, 30, "the request to pass its deadline")
    assert not gpu_yield.granted(realm_home)


@pytest.mark.slow
def test_evals_keep_pace_with_training_on_a_busy_gpu(realm_home, procs, tmp_path):
    """`realm play --headless` from an empty realm, the curriculum on, NVML at 95% for the
    whole run: no checkpoint waits for its eval while more than one further quest starts
    (counted from the ledger, not timed), and training goes on after each loan."""
    (tmp_path / "nvml").mkdir()
    (tmp_path / "nvml" / "pynvml.py").write_text(PYNVML)
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true")
                                      + "\n[curriculum]\nquest_examples = 1000\n")
    env = {**child_env(realm_home.home),
           "PYTHONPATH": f"{tmp_path / 'nvml'}:{child_env(realm_home.home).get('PYTHONPATH', '')}"}
    procs.start("play", [sys.executable, "-m", "realm_kernel.cli", "play", "--headless"], env)
    realm = Realm(realm_home.home)
    q = realm.ledger.query
    wait_for(lambda: q("SELECT count(DISTINCT checkpoint) AS n FROM evals")[0]["n"] >= 4
             and q("SELECT count(*) AS n FROM runs WHERE status = 'completed'")[0]["n"] >= 2,
             480, "4 checkpoints evaluated and 2 quests trained under a busy GPU")
    assert events(realm, "gpu_yield_asked") and events(realm, "gpu_lent")
    runs = q("SELECT run_id, max(ts) FILTER (WHERE status = 'completed') AS t1 FROM runs "
             "GROUP BY run_id HAVING t1 IS NOT NULL")
    quest_starts = [r["ts"] for r in q("SELECT ts FROM runs WHERE status IN ('started', 'resumed')")]
    starts = [r["ts"] for r in q("SELECT ts FROM tasks WHERE task_id = 'process_eval_queue' "
                                 "AND status = 'running' ORDER BY ts")]
    # For each evaluated checkpoint: the quests that started between its save and the start
    # of the eval run that answered it. 0 when the Task Master asked for the GPU before the
    # quest ended; 1 when it was still busy with another task at that boundary (it asks at
    # its next pick, the daemon lends at the next boundary). 2 would be an eval left behind.
    between = []
    for e in q("SELECT c.ts AS saved, min(e.ts) AS evaluated FROM evals e JOIN checkpoints c "
               "ON e.checkpoint = c.name GROUP BY c.name, c.ts"):
        start = max(s for s in starts if s <= e["evaluated"])
        between.append(sum(e["saved"] < s < start for s in quest_starts))
    print(f"quests started between a save and its eval: {sorted(between)}")
    assert max(between) <= 1, between
    # Training went on after the loans: a quest completed after the first eval.
    assert max(r["t1"] for r in runs) > min(starts)
