"""The curriculum's arithmetic (evals/curriculum.py): where each skill stands, which skill
leads the next quest, how a quest is split between skills and between the current level
and review, and what a curriculum quest's file name says."""

from __future__ import annotations

import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.evals import curriculum
from realm_kernel.store.config import CurriculumConfig, SkillPlanConfig


def plan(skill: str, priority: int = 1, level: int = 1, enabled: bool = True, max_level: int = 10,
         recent: tuple = ()) -> dict:
    return {"skill": skill, "priority": priority, "level": level, "enabled": enabled,
            "max_level": max_level, "recent": list(recent)}


def test_review_covers_the_window_below_the_level():
    assert curriculum.review_levels(1, 4) == []
    assert curriculum.review_levels(3, 4) == [1, 2]
    assert curriculum.review_levels(7, 4) == [3, 4, 5, 6]
    assert curriculum.review_levels(7, 0) == []


def test_the_skill_furthest_behind_its_share_leads():
    bin_, sy = plan("bin", 2), plan("sy", 1)
    assert curriculum.pick([bin_, sy], {}) is bin_, "a tie: the higher priority"
    assert curriculum.pick([bin_, sy], {"bin": 2, "sy": 1}) is bin_, "2/2 vs 1/1: a tie again"
    assert curriculum.pick([bin_, sy], {"bin": 3, "sy": 1}) is sy, "3/2 is further ahead than 1/1"
    same = [plan("sy"), plan("bin")]
    assert curriculum.pick(same, {})["skill"] == "bin", "equal in all else: by name"
    assert curriculum.pick([plan("bin", enabled=False), sy], {"sy": 9}) is sy
    assert curriculum.pick([plan("bin", enabled=False)], {}) is None


def test_a_finished_skill_is_no_longer_trained():
    done = plan("bin", level=10, recent=(0.8, 0.9, 1.0))
    assert curriculum.live([done]) == []
    for still in (plan("bin", level=9, recent=(0.9, 0.9, 0.9)),   # not at its last level
                  plan("bin", level=10, recent=(0.9, 0.9)),       # too few evals there
                  plan("bin", level=10, recent=(0.9, 0.79, 1.0))):  # one under 80%
        assert curriculum.live([still]) == [still]


def test_a_quest_is_split_between_skills_by_priority():
    plans = [plan("bin", 3), plan("sy", 1), plan("off", 5, enabled=False)]
    assert curriculum.shares(plans, 100, "bin") == {"sy": 25, "bin": 75}
    assert curriculum.shares(plans, 100, "sy") == {"bin": 75, "sy": 25}
    assert curriculum.shares(plans, 3, "bin") == {"bin": 3}, "a share that rounds to 0 is dropped"
    assert curriculum.shares([plan("bin", 1), plan("sy", 1)], 1, "sy") == {"sy": 1}
    assert curriculum.shares([plan("bin", 1), plan("sy", 100)], 1, "bin") == {"bin": 1}, "the lead gets one"
    assert curriculum.shares([], 10, "bin") == {"bin": 10}
    assert curriculum.shares([plan("sy", 1)], 5, "bin") == {"sy": 5, "bin": 1}, "a lead not live: still one"


def test_review_is_spread_over_the_window_and_the_current_level_leads():
    probs = curriculum.problems("bin", 5, 41, 0.25, 3, seed=4)
    assert len(probs) == 41 and probs[0].level == 5
    levels = [p.level for p in probs]
    assert levels.count(5) == 31, "round(41 * 0.25) = 10 review problems"
    assert [levels.count(lv) for lv in (2, 3, 4)] == [4, 3, 3], "the remainder to the lowest levels"
    assert all(p.skill == "bin" for p in probs)
    assert [p.level for p in curriculum.problems("bin", 1, 8, 0.5, 4, seed=1)] == [1] * 8, "nothing below"
    again = curriculum.problems("bin", 5, 41, 0.25, 3, seed=4)
    assert [p.question for p in again] == [p.question for p in probs], "seeded"
    assert levels[1:] != sorted(levels[1:]), "review is shuffled through the quest"


def test_each_seed_draws_its_own_review():
    def review(seed: int) -> list[str]:
        probs = curriculum.problems("bin", 5, 41, 0.25, 3, seed=seed)
        return sorted(p.question for p in probs if p.level < 5)
    assert len(review(4)) == 10 and review(4) == review(4)
    assert review(4) != review(5), "another quest, other review problems"


def test_a_mixed_quest_is_led_by_its_skill_and_holds_every_share():
    plans = [plan("bin", 1, level=2), plan("sy", 1, level=1)]
    probs = curriculum.mixed_problems(plans, plans[0], 40, 0.0, 4, seed=2)
    assert len(probs) == 40 and (probs[0].skill, probs[0].level) == ("bin", 2)
    assert sum(p.skill == "sy" for p in probs) == 20 and all(p.level == 1 for p in probs if p.skill == "sy")
    assert [p.skill for p in probs[1:21]] != ["bin"] * 20, "the shares are shuffled together"


def test_a_curriculum_quest_name_says_its_skill_and_level():
    name = curriculum.quest_name("sy", 12, 7)
    assert name.startswith("curriculum-sy-L12-") and name.endswith("-s7.jsonl")
    assert curriculum.parse_name(name) == ("sy", 12)
    assert curriculum.parse_name(f"/somewhere/queue/high/{name}") == ("sy", 12)
    for other in ("sy-L12-3-s1.jsonl", "curriculum-SY-L1-x.jsonl", "curriculum-sy-12-x.jsonl",
                  "xcurriculum-sy-L1-x.jsonl", "curriculum-sy-L1"):
        assert curriculum.parse_name(other) is None, other


def test_the_plan_reads_the_ledger_and_the_settings(realm_home):
    realm = Realm(realm_home.home)
    cfg = CurriculumConfig(skills={"bin": SkillPlanConfig(priority=3), "sy": SkillPlanConfig(enabled=False)},
                           review_window=2)
    for _ in range(3):  # three evals at 90% on BIN L1: BIN is at level 2
        realm.ledger.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.9, "n": 10, "correct": 9}])
    rows = {p["skill"]: p for p in curriculum.plan(realm.ledger, cfg)}
    b, s = rows["bin"], rows["sy"]
    assert (b["level"], b["priority"], b["enabled"], b["review_levels"]) == (2, 3, True, [1])
    assert b["name"] and b["icon"] and b["max_level"] >= 2 and b["recent"] == []
    assert (s["level"], s["priority"], s["enabled"]) == (1, 1, False)
    cfg.skills["sy"] = SkillPlanConfig(priority=0)
    assert not {p["skill"]: p for p in curriculum.plan(realm.ledger, cfg)}["sy"]["enabled"], "priority 0: off"
    del cfg.skills["sy"]
    unset = {p["skill"]: p for p in curriculum.plan(realm.ledger, cfg)}["sy"]
    assert (unset["priority"], unset["enabled"]) == (0, False), "not in the settings: off"


def test_generated_quests_are_counted_per_skill(realm_home):
    realm = Realm(realm_home.home)
    assert curriculum.generated_counts(realm.ledger) == {}
    for skill in ("bin", "bin", "sy", None):
        realm.ledger.event("quest_generated", "New quest", json.dumps({"skill": skill} if skill else {}))
    realm.ledger.event("quest_queued", "not generated", json.dumps({"skill": "sy"}))
    assert curriculum.generated_counts(realm.ledger) == {"bin": 2, "sy": 1}


@pytest.mark.parametrize("level", [1, 2])
def test_plan_of_uses_the_realms_own_settings(realm_home, level):
    realm = Realm(realm_home.home)
    if level == 2:
        for _ in range(3):
            realm.ledger.append("evals", [{"skill": "sy", "level": 1, "accuracy": 1.0, "n": 4, "correct": 4}])
    plans = {p["skill"]: p for p in curriculum.plan_of(realm.home)}
    assert plans["sy"]["level"] == level and plans["bin"]["enabled"] and plans["sy"]["enabled"]
