"""The Tavern's Python side without a browser: settings, achievements, hero level-ups,
the page sessions' actions (through the real Realm and a real ledger in a temp home)."""

from __future__ import annotations

import base64

import pytest

import skills
from realm_kernel.api import Realm
from realm_kernel.evals.achievements import award, hero_level_ups
from realm_kernel.store.config import load_config
from skills.evaluation import eval_problems
from widgets.pages import PAGES, GuildSession, QuestSession, Session, SettingsSession, TavernSession


@pytest.fixture
def realm(tmp_path) -> Realm:
    return Realm(tmp_path / "realm")


def test_settings_describe_validate_confirm_and_write(realm):
    fields = {f["key"]: f for f in realm.settings()["fields"]}
    assert fields["training.max_length"]["critical"] and not fields["training.batch_size"]["critical"]
    assert fields["training.batch_size"]["bounds"] == {"ge": 1, "le": 4096}
    assert fields["training.optimizer"]["choices"] == ["adamw", "muon", "paged_adamw_8bit"]

    bad = realm.save_settings({"training.batch_size": 0, "nope.x": 1})
    assert not bad["ok"]
    assert "greater than or equal to 1 (got 0)" in bad["errors"]["training.batch_size"]
    assert bad["errors"]["nope.x"] == "unknown setting"
    assert not realm.paths.config_file.exists()  # nothing written

    assert realm.save_settings({"training.batch_size": "4"}) == {
        "ok": True, "changed": ["training.batch_size"], "path": str(realm.paths.config_file)}
    assert load_config(realm.paths.home).training.batch_size == 4

    ask = realm.save_settings({"training.max_length": 512})
    assert ask == {"ok": False, "needs_confirmation": ["training.max_length"]}
    assert load_config(realm.paths.home).training.max_length == 256
    assert realm.save_settings({"training.max_length": 512}, confirm=True)["ok"]
    cfg = load_config(realm.paths.home)
    assert (cfg.training.max_length, cfg.training.batch_size) == (512, 4)  # earlier edits kept
    assert realm.save_settings({"training.max_length": 512})["ok"]  # unchanged: no question
    assert any(e["kind"] == "settings_changed" for e in realm.events(20))


def test_a_broken_realm_toml_is_reported_and_replaced_by_a_valid_save(realm):
    realm.paths.config_file.write_text("[training\nbatch_size = ")
    assert "not valid TOML" in realm.settings()["error"]
    assert realm.save_settings({"training.batch_size": 2})["ok"]
    assert realm.settings()["error"] is None


def _metrics(realm: Realm, steps: range) -> None:
    realm.ledger.append("metrics", [{"run_id": "r", "quest": "q", "step": s, "local_step": s,
                                     "loss": 1.0} for s in steps])


def test_achievements_are_awarded_once_with_dates(realm):
    assert award(realm.ledger) == []
    _metrics(realm, range(1, 1001))
    realm.ledger.append("quests", [{"quest_id": "q.jsonl", "status": "completed"}])
    new = {a["achievement_id"] for a in award(realm.ledger)}
    assert new == {"quests_1", "steps_1000"}
    assert award(realm.ledger) == []  # once each
    realm.ledger.append("achievements", [{"achievement_id": "quests_1", "name": "First quest",
                                          "description": "", "step": 1}])  # a racing process
    earned = realm.achievements()
    assert [a["achievement_id"] for a in earned].count("quests_1") == 1
    assert all(a["date"][:4].isdigit() for a in earned)
    toasts = realm.notable_events(("achievement",))
    assert {t["message"] for t in toasts} == {"Achievement unlocked: 📜 First quest",
                                              "Achievement unlocked: 👣 1k steps"}


def test_skill_level_and_sparring_milestones(realm):
    problems = eval_problems("bin", 1, size=10)
    for _ in range(3):  # three evals at 100% level BIN up to 2
        realm.record_eval(skills.run_eval("bin", 1, [p.answer for p in problems], problems=problems), 5, "c")
    ids = {a["achievement_id"] for a in award(realm.ledger)}
    assert {"skill_bin_2", "first_eval"} <= ids
    realm.ledger.append("quests", [{"quest_id": "sparring-x.jsonl", "status": "queued", "examples": 300}])
    assert [a["achievement_id"] for a in award(realm.ledger)] == ["sparring_100"]


def test_hero_level_up_events_for_each_thousand_crossed(realm):
    assert hero_level_ups(realm.ledger, "DIO", 998, 999) == []
    assert hero_level_ups(realm.ledger, "DIO", 999, 2001) == [1, 2]
    msgs = [e["message"] for e in realm.notable_events(("hero_level_up",))]
    assert sorted(msgs) == ["Level up! DIO reached Level 1", "Level up! DIO reached Level 2"]


def test_sessions_act_once_and_show_refusals(realm):
    q = QuestSession(realm)
    bad = base64.b64encode(b'{"x": 1}\n').decode()
    n = q.act({"name": "upload", "nonce": 1, "filename": "bad.jsonl", "content_b64": bad})
    assert not n["ok"] and "REJECTED" in n["detail"] and "line 1" in n["message"]
    assert q.act({"name": "upload", "nonce": 1, "filename": "x.jsonl", "content_b64": bad}) is None
    assert q.act({"name": "launch_missiles", "nonce": 2})["message"] == "unknown action 'launch_missiles'"
    good = base64.b64encode(b'{"prompt": "a", "completion": "b"}\n').decode()
    assert q.act({"name": "upload", "nonce": 3, "filename": "ok.jsonl", "content_b64": good,
                  "priority": "low"})["ok"]
    assert (realm.paths.inbox / "low" / "ok.jsonl").exists()
    assert q.snapshot()["notice"]["nonce"] == 3
    t = TavernSession(realm)
    assert t.act({"name": "pause", "nonce": 1})["ok"] and realm.paths.control_file("pause").exists()
    assert t.act({"name": "resume", "nonce": 2})["ok"] and not realm.paths.control_file("pause").exists()


def test_settings_session_previews_without_writing(realm):
    s = SettingsSession(realm)
    s.act({"name": "preview", "nonce": 1, "changes": {"training.batch_size": -3}})
    assert "training.batch_size" in s.snapshot()["errors"]
    assert not realm.paths.config_file.exists()
    s.act({"name": "save", "nonce": 2, "changes": {"hero.base_model": "/elsewhere"}})
    assert s.snapshot()["confirm"] == ["hero.base_model"]


def test_guild_session_reads_levels_and_the_heatmap(realm):
    problems = eval_problems("bin", 1, size=10)
    answers = [p.answer if i % 2 else "wrong" for i, p in enumerate(problems)]
    realm.record_eval(skills.run_eval("bin", 1, answers, problems=problems), 10, "checkpoint-10")
    bin_ = next(g for g in GuildSession(realm).snapshot()["guild"] if g["skill"] == "bin")
    assert bin_["level"] == 1 and len(bin_["recent"]) == 1
    assert bin_["heatmap"]["steps"] == [10] and bin_["heatmap"]["cells"]
    assert {w["primitive_id"] for w in bin_["weak"]} <= set(bin_["heatmap"]["primitives"])


def test_every_page_has_a_session_or_is_the_oracle():
    assert set(PAGES) == {"tavern", "quests", "oracle", "vault", "settings", "scheduler", "guild"}
    for name, page in PAGES.items():
        assert page.session is None if name == "oracle" else issubclass(page.session, Session)


def test_the_trainer_callback_announces_a_level_up_when_a_thousand_is_crossed(realm):
    from types import SimpleNamespace

    from realm_kernel.evals.achievements import hero_progress
    from realm_kernel.train.callbacks import RealmCallback
    job = SimpleNamespace(step_offset=0, on_progress=hero_progress(realm.ledger, "DIO"))
    cb = RealmCallback(paths=realm.paths, ledger=realm.ledger, job=job)
    cb._progress_step = 998
    cb._progress(999)
    cb._progress(1000)
    cb._progress(1001)
    msgs = [e["message"] for e in realm.notable_events(("hero_level_up",))]
    assert msgs == ["Level up! DIO reached Level 1"]
