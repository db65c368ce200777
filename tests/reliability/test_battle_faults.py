"""A battle that fails as a run fails on a real card, through a real daemon subprocess
training dio-mini: CUDA out of memory (a real torch.cuda.OutOfMemoryError raised by the
realm's fault injection, REALM_FAULT=oom:..., store/faults.py) and a NaN loss
(REALM_FAULT=nan@<step>). See docs/engine.md "What happens when a battle fails"."""

from __future__ import annotations

import json

import pytest

from realm_kernel.store.batch_fit import FILE as BATCH_FIT
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import read_json
from realm_kernel.store.status import DAEMON, read_status

from ..helpers import start_daemon, wait_for
from .harness import FAULT_TOML

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

# No packing and no held-out share: a quest of n examples takes exactly ceil(n / 8) steps.
PLAIN_TOML = FAULT_TOML.replace("[training]\n", "[training]\npacking = false\neval_fraction = 0.0\n")


def quest(paths, name: str, seed: int, count: int = 120) -> str:
    import realm_skills as skills
    # Plain chat examples (no skill meta): no fixed DEF set is held out of them.
    lines = [json.dumps({"messages": p.as_example()["messages"]})
             for p in skills.generate("bin", 1, count, seed=seed)]
    (paths.inbox / name).write_text("\n".join(lines) + "\n")
    return name


def events(led: Ledger, kind: str) -> list[dict]:
    return led.query("SELECT message, data FROM events WHERE kind = ? ORDER BY ts", [kind])


def steps_of(led: Ledger, quest_id: str) -> list[int]:
    return [r["local_step"] for r in led.query(
        "SELECT DISTINCT local_step FROM metrics WHERE quest = ? AND loss IS NOT NULL "
        "ORDER BY local_step", [quest_id])]


def test_out_of_memory_backs_off_resumes_and_is_remembered(realm_home, procs):
    realm_home.config_file.write_text(PLAIN_TOML)
    first = quest(realm_home, "first.jsonl", seed=1)
    # A card that fits 2 rows: from step 8 (past the checkpoint at step 5) the backward of
    # a micro-batch of 8 runs out of memory.
    daemon = start_daemon(procs, realm_home, "daemon-oom", REALM_FAULT="oom:backward@8:2")
    done = realm_home.queue("recently_completed")
    wait_for((done / first).exists, 240, "the quest to complete after backing off")
    led = Ledger(realm_home, "test")
    backoffs = [json.loads(e["data"]) for e in events(led, "oom_backoff")]
    # 8 -> 4 -> 2 (accumulation 1 -> 2 -> 4): 8 examples per step all along.
    assert [(b["from"]["micro_batch"], b["to"]["micro_batch"]) for b in backoffs] == [(8, 4), (4, 2)]
    assert [b["to"]["gradient_accumulation_steps"] for b in backoffs] == [2, 4]
    assert all(b["resume_from"] and "checkpoint-5-" in b["resume_from"] for b in backoffs)
    assert "out of memory in the backward of step 8" in backoffs[0]["error"]
    assert steps_of(led, first) == list(range(1, 16)), "same steps (XP) as 120 examples / 8"
    fit = next(iter(read_json(realm_home.status / BATCH_FIT).values()))
    assert (fit["micro_batch"], fit["gradient_accumulation_steps"]) == (2, 4)

    # The next battle on this card starts at the size that fitted: no new back-off.
    second = quest(realm_home, "second.jsonl", seed=2)
    wait_for((done / second).exists, 240, "the second quest")
    assert len(events(led, "oom_backoff")) == 2 and daemon.poll() is None
    assert not events(led, "setup_fault")


def test_out_of_memory_at_batch_one_pauses_and_keeps_the_queue(realm_home, procs):
    realm_home.config_file.write_text(PLAIN_TOML)
    names = [quest(realm_home, f"q{i}.jsonl", seed=10 + i, count=40) for i in range(6)]
    daemon = start_daemon(procs, realm_home, "daemon-oom-1", REALM_FAULT="oom:forward@1")
    led = Ledger(realm_home, "test")
    wait_for(lambda: events(led, "setup_fault"), 240, "the setup fault")
    wait_for(lambda: read_status(realm_home, DAEMON).get("state") == "paused", 60, "the pause")
    assert realm_home.control_file("pause").exists()
    queued = {p.name for d in ("high", "normal", "low") for p in realm_home.queue(d).iterdir()}
    assert queued == set(names), "all six quests wait in their queues"
    assert not [p for p in realm_home.queue("failed").iterdir()], "none failed"
    fault = events(led, "setup_fault")
    assert len(fault) == 1 and "gradient checkpointing" in fault[0]["data"]
    assert len(events(led, "battle_stopped")) == 1 and not events(led, "quest_failed")
    assert "max_length" in fault[0]["data"] and "lora" in fault[0]["data"]  # the fix
    sizes = [json.loads(e["data"])["to"] for e in events(led, "oom_backoff")]
    assert sizes[-1] == {"micro_batch": 1, "gradient_checkpointing": True,
                         "gradient_accumulation_steps": 8}
    assert daemon.poll() is None


def test_nan_rolls_back_skips_the_batch_and_lowers_the_rate(realm_home, procs):
    realm_home.config_file.write_text(PLAIN_TOML)
    name = quest(realm_home, "nan.jsonl", seed=3)
    daemon = start_daemon(procs, realm_home, "daemon-nan", REALM_FAULT="nan@7")
    wait_for((realm_home.queue("recently_completed") / name).exists, 240, "the quest")
    led = Ledger(realm_home, "test")
    alarm, = events(led, "loss_alarm")
    assert "step 7" in alarm["message"] and "nan" in alarm["message"]
    rollback, = (json.loads(e["data"]) for e in events(led, "rollback"))
    assert "checkpoint-5-" in rollback["to"] and rollback["skip_steps"] == [7]
    assert steps_of(led, name) == list(range(1, 16)), "the steps 120 examples require"
    final = led.query("SELECT loss FROM metrics WHERE quest = ? AND loss IS NOT NULL "
                      "ORDER BY ts DESC LIMIT 1", [name])[0]["loss"]
    assert final is not None and final < 100
    # Step 6 ran twice: before the alarm and after the rollback, at half the rate.
    lr = [r["learning_rate"] for r in led.query(
        "SELECT learning_rate FROM metrics WHERE quest = ? AND local_step = 6 "
        "AND loss IS NOT NULL ORDER BY ts", [name])]
    assert len(lr) == 2 and lr[1] == pytest.approx(lr[0] * 0.5)
    # The battle plot marks the alarm at its step.
    from realm_kernel.api import Realm
    assert Realm(realm_home.home).tavern_state()["alarms"] == [7]
    assert daemon.poll() is None


def test_a_held_out_pass_out_of_memory_retries_smaller_and_counts_once(realm_home, procs):
    realm_home.config_file.write_text(PLAIN_TOML.replace("eval_fraction = 0.0", "eval_fraction = 0.1"))
    name = quest(realm_home, "eval.jsonl", seed=4)
    # A card whose held-out pass fits 2 rows: the eval batch (8) halves twice, in place.
    daemon = start_daemon(procs, realm_home, "daemon-eval", REALM_FAULT="oom:eval@1:2")
    wait_for((realm_home.queue("recently_completed") / name).exists, 240, "the quest")
    led = Ledger(realm_home, "test")
    retries = [json.loads(e["data"]) for e in events(led, "eval_backoff")]
    assert [(r["from"], r["to"]) for r in retries] == [(8, 4), (4, 2)]
    assert not events(led, "oom_backoff"), "the training itself never backed off"
    saves = [r["step"] for r in led.query("SELECT step FROM checkpoints ORDER BY step")]
    evals = [r["step"] for r in led.query(
        "SELECT step FROM metrics WHERE val_loss IS NOT NULL ORDER BY step")]
    assert evals == saves, "each save's held-out loss, once"
    assert daemon.poll() is None
