"""Every milestone at its threshold, once (evals/achievements.py): what the ledger's facts
earn, with each achievement's id, name, description and icon word for word, the hero's
level-up events and the step each is written at."""

from __future__ import annotations

import json
import uuid

from realm_kernel.api import Realm
from realm_kernel.evals import achievements
from realm_kernel.evals.achievements import award, hero_level_ups, hero_progress, reached


def facts(realm: Realm, *, step: int = 0, completed: int = 0, checkpoints: int = 0, champion: bool = False,
          evals: int = 0, sparring: int = 0) -> None:
    led = realm.ledger
    if step:
        led.append("metrics", [{"run_id": "r", "quest": "q", "step": step, "local_step": step, "loss": 1.0}])
    led.append("quests", [{"quest_id": f"q-{uuid.uuid4().hex}.jsonl", "status": "completed"}
                          for _ in range(completed)])
    led.append("checkpoints", [{"step": 10 * (i + 1), "name": f"checkpoint-{10 * (i + 1)}", "path": "/x"}
                               for i in range(checkpoints)])
    if champion:
        led.event("champion", "checkpoint-10 is the champion", "{}", key="champion")
    led.append("evals", [{"skill": "sy", "level": 1, "accuracy": 0.1, "n": 10, "correct": 1}
                         for _ in range(evals)])
    if sparring:
        led.append("quests", [{"quest_id": "sparring-a.jsonl", "status": "queued", "examples": sparring - 3},
                              {"quest_id": "sparring-a.jsonl", "status": "queued", "examples": sparring},
                              {"quest_id": "other.jsonl", "status": "queued", "examples": 10_000}])


def by_id(realm: Realm) -> dict[str, tuple[str, str, str]]:
    return {a.achievement_id: (a.name, a.description, a.icon) for a in reached(realm.ledger)}


def test_nothing_is_earned_on_an_empty_ledger(realm_home):
    realm = Realm(realm_home.home)
    assert reached(realm.ledger) == [] and award(realm.ledger) == []


def test_each_milestone_at_its_threshold_word_for_word(realm_home):
    realm = Realm(realm_home.home)
    facts(realm, step=999, completed=9, checkpoints=1, evals=1, sparring=297)
    got = by_id(realm)
    assert got == {
        "quests_1": ("First quest", "Complete 1 quest", "📜"),
        "first_checkpoint": ("First checkpoint", "Save a checkpoint", "💾"),
        "first_eval": ("First trial", "Evaluate a checkpoint on a skill", "🧪")}
    # One more of each: the next milestones, and the sparring rounds (300 examples = 100).
    facts(realm, step=10_000, completed=1, champion=True, sparring=300)
    got = by_id(realm)
    assert got["quests_10"] == ("10 quests", "Complete 10 quests", "📜")
    assert got["steps_1000"] == ("1k steps", "Train 1,000 steps", "👣")
    assert got["steps_10000"] == ("10k steps", "Train 10,000 steps", "👣")
    assert got["first_champion"] == ("First champion", "Promote a champion", "🏆")
    assert got["sparring_100"] == ("100 sparring rounds", "Spar over 100 wrong answers", "🥊")
    assert "steps_100000" not in got and "quests_100" not in got
    facts(realm, step=100_000, completed=90)
    assert {"steps_100000", "quests_100"} <= set(by_id(realm))


def test_skill_levels_are_milestones_up_to_the_skills_top(realm_home):
    realm = Realm(realm_home.home)
    for level in range(1, 5):  # three evals >= 80% at each of BIN's levels 1-4: level 5
        realm.ledger.append("evals", [{"skill": "bin", "level": level, "accuracy": 0.9, "n": 10,
                                       "correct": 9}] * 3)
    got = by_id(realm)
    name = achievements._skill_levels(realm.ledger)["bin"][0]
    import realm_skills as skills
    assert achievements._skill_levels(realm.ledger)["bin"][1:] == (5, skills.skill_def("bin").max_level)
    assert got["skill_bin_2"] == (f"{name} level 2", f"Reach level 2 in {name}", "⭐")
    assert "skill_bin_5" in got and "skill_bin_10" not in got
    assert not any(k.startswith("skill_sy_") for k in got)


def test_award_writes_each_new_one_once_with_the_step_and_a_toast(realm_home):
    realm = Realm(realm_home.home)
    facts(realm, step=1500, completed=1)
    rows = award(realm.ledger)
    assert rows == [
        {"achievement_id": "quests_1", "name": "First quest", "description": "Complete 1 quest",
         "step": 1500},
        {"achievement_id": "steps_1000", "name": "1k steps", "description": "Train 1,000 steps",
         "step": 1500}]
    assert award(realm.ledger) == []
    toasts = realm.ledger.query("SELECT message, data, key FROM events WHERE kind = 'achievement' "
                                "ORDER BY key")
    assert [(t["message"], json.loads(t["data"]), t["key"]) for t in toasts] == [
        ("Achievement unlocked: 📜 First quest", {"achievement_id": "quests_1", "step": 1500},
         "achievement:quests_1"),
        ("Achievement unlocked: 👣 1k steps", {"achievement_id": "steps_1000", "step": 1500},
         "achievement:steps_1000")]
    earned = achievements.earned(realm.ledger)
    assert [e["achievement_id"] for e in earned] == ["quests_1", "steps_1000"]
    assert all(isinstance(e["ts"], float) and e["date"][10] == "T" for e in earned)


def test_hero_level_ups_name_the_level_and_the_step(realm_home):
    realm = Realm(realm_home.home)
    assert hero_level_ups(realm.ledger, "DIO", 999, 3000) == [1, 2, 3]
    ups = realm.ledger.query("SELECT message, data FROM events WHERE kind = 'hero_level_up' ORDER BY ts")
    assert [u["message"] for u in ups] == [f"Level up! DIO reached Level {n}" for n in (1, 2, 3)]
    assert [json.loads(u["data"]) for u in ups] == [{"level": n, "step": 3000} for n in (1, 2, 3)]
    assert hero_level_ups(realm.ledger, "DIO", 1000, 1999) == []
    flushed = []
    hook = hero_progress(realm.ledger, "ZED")
    hook(1000, 1999, lambda: flushed.append("no"))
    assert flushed == [], "no level crossed: the metrics are not flushed early"
    hook(1999, 2000, lambda: flushed.append("yes"))
    assert flushed == ["yes"]
    last = realm.ledger.query("SELECT message FROM events WHERE kind = 'hero_level_up' ORDER BY ts")[-1]
    assert last["message"] == "Level up! ZED reached Level 2"
