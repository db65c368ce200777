"""The page sessions (widgets/pages.py) in the detail the pages show, without a browser,
through the real Realm over a temp home: the Settings form's VRAM estimate for each field
it follows, the Quests page's ETAs, the Scheduler's skill and task switches, the battle
controls, a move's message, and the Oracle page's "ask DIO" probe and load defaults."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.config import load_config
from realm_widgets.pages import OracleSession, QuestSession, SchedulerSession, SettingsSession, TavernSession

from ..helpers import wait_for


@pytest.fixture
def realm(realm_home) -> Realm:
    return Realm(realm_home.home)


def queue_quest(realm: Realm, name: str, examples: int) -> None:
    """A quest as admission leaves it: in the normal queue, its size in the ledger."""
    rows = "".join(json.dumps({"prompt": f"{i}", "completion": "x"}) + "\n" for i in range(examples))
    realm.paths.queue("normal").mkdir(parents=True, exist_ok=True)
    (realm.paths.queue("normal") / name).write_text(rows)
    realm.ledger.append("quests", [{"quest_id": name, "status": "queued", "examples": examples}])


def test_settings_estimate_follows_every_field_it_reads(realm):
    s = SettingsSession(realm)
    toml = realm.paths.config_file.read_text()
    # Before any edit: the realm's own estimate.
    assert s.snapshot()["vram"] == realm.training.vram_estimate()
    changes = {"training.max_length": 64, "training.batch_size": "2", "training.dtype": "float32",
               "training.liger": "on", "training.optimizer": "muon",
               "training.gradient_checkpointing": True}
    assert s.act({"name": "preview", "nonce": 1, "changes": changes})["ok"]
    vram = s.snapshot()["vram"]
    assert vram == realm.training.vram_estimate(seq_len=64, batch_size=2, dtype="float32", liger=True,
                                                optimizer="muon", gradient_checkpointing=True)
    # Each field moves its term: bf16 halves the weights, liger off grows the logits.
    s.act({"name": "preview", "nonce": 2, "changes": {**changes, "training.dtype": "bfloat16",
                                                      "training.liger": "off"}})
    other = s.snapshot()["vram"]
    assert other["weights"] == vram["weights"] / 2 and other["logits"] > vram["logits"]
    assert realm.paths.config_file.read_text() == toml  # a preview writes nothing


def test_settings_save_asks_to_confirm_critical_changes_by_name(realm):
    s = SettingsSession(realm)
    n = s.act({"name": "save", "nonce": 1, "changes": {"hero.base_model": "/elsewhere"}})
    assert n["ok"] and n["message"] == "confirm the critical changes: hero.base_model"
    n = s.act({"name": "save", "nonce": 2, "changes": {"training.batch_size": 0}})
    assert not n["ok"] and n["message"].startswith("not saved: training.batch_size: ")


def test_the_quest_board_shows_each_quests_size_state_and_eta(realm):
    q = QuestSession(realm)
    queue_quest(realm, "ten.jsonl", 10)
    entry = next(e for es in q.snapshot()["queue"].values() for e in es if e["name"] == "ten.jsonl")
    assert entry["examples"] == 10 and "eta_seconds" not in entry  # no pace measured yet
    # 100 steps of batch_size x accumulation examples in 50 s: the pace the ETA uses.
    t0 = dt.datetime(2026, 12, 1, 12, 0, 0)
    realm.ledger.append("metrics", [{"ts": t0 + dt.timedelta(seconds=s / 2), "run_id": "r", "quest": "q",
                                     "step": s, "local_step": s, "loss": 1.0} for s in range(0, 101)])
    pace = realm.training.seconds_per_example()
    assert pace and pace > 0
    q.act({"name": "priority", "nonce": 2, "quest": "ten.jsonl", "priority": "high"})
    entry = next(e for state, es in q.snapshot()["queue"].items() for e in es if e["name"] == "ten.jsonl")
    assert entry["eta_seconds"] == pytest.approx(10 * pace) and entry["state"] in q.snapshot()["queue"]


def test_moves_and_battle_controls_say_what_they_did(realm):
    q = QuestSession(realm)
    for name in ("a.jsonl", "b.jsonl"):
        queue_quest(realm, name, 1)
    assert q.act({"name": "move", "nonce": 3, "quest": "b.jsonl", "position": "0"})["message"] == \
        "b.jsonl moved to position 1"
    t = TavernSession(realm)
    assert t.act({"name": "skip", "nonce": 1}) == {"ok": True, "action": "skip", "message": "skip requested",
                                                   "nonce": 1}
    assert realm.paths.control_file("skip").exists()
    assert t.act({"name": "stop", "nonce": 2})["message"] == "stop requested"


def test_scheduler_switches_a_skill_and_a_task(realm):
    s = SchedulerSession(realm)
    n = s.act({"name": "skill", "nonce": 1, "skill": "bin", "priority": "3", "enabled": False})
    assert n == {"ok": True, "action": "skill", "message": "bin: priority 3, off", "nonce": 1}
    plan = load_config(realm.paths.home).curriculum.skills["bin"]
    assert (plan.priority, plan.enabled) == (3, False)
    on = s.act({"name": "skill", "nonce": 2, "skill": "bin", "enabled": True})
    assert on["message"] == "bin: priority 3, on"
    bad = s.act({"name": "skill", "nonce": 3, "skill": "bin", "priority": -5})
    assert not bad["ok"] and "curriculum.skills" in bad["message"]
    task = s.snapshot()["tasks"][0]["task_id"]
    n = s.act({"name": "set_task", "nonce": 4, "task_id": task, "priority": "7", "cooldown_s": "30"})
    assert n["message"] == f"{task} updated"
    row = next(t for t in s.snapshot()["tasks"] if t["task_id"] == task)
    assert (row["priority"], row["cooldown_s"]) == (7, 30.0)


def test_oracle_loads_on_this_machine_by_default_and_asks_dio(realm):
    s = OracleSession(realm)
    n = s.act({"name": "load", "nonce": 1, "step": 0})
    assert n["message"] == "loading step 0 on local…"
    wait_for(lambda: not s.snapshot()["notice"]["message"].startswith("loading"), 120, "the load to end")
    assert s.snapshot()["notice"]["message"] == "loaded dio-mini on local"
    assert s.act({"name": "probe", "nonce": 2, "skill": "bin", "step": 0})["ok"]
    probe = wait_for(lambda: (p := s.snapshot()["probe"]) and not p["busy"] and p, 120, "the probe's answer")
    assert set(probe) == {"skill", "level", "question", "expected", "content", "correct", "model", "step",
                          "busy"}, probe
    assert (probe["skill"], probe["step"], probe["model"]) == ("bin", 0, "dio-mini")
    assert isinstance(probe["correct"], bool) and probe["question"] and probe["level"] >= 1
    # A probe that cannot be asked says why, with what was asked.
    s.act({"name": "probe", "nonce": 3, "skill": "nope", "step": 0})
    failed = wait_for(lambda: (p := s.snapshot()["probe"]) and not p["busy"] and p, 120, "the refusal")
    assert (failed["skill"], failed["step"]) == ("nope", 0) and "nope" in failed["error"]
