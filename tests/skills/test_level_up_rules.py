"""The level-up and "mastered" rules the docs state (README, docs/skills.md: >= 80% on each
of the last 3 evals at a level), pinned by behaviour at their edges: a rule loosened in a
skill's YAML or in the curriculum's own copy of it makes one of these fail."""

from __future__ import annotations

import pytest

import realm_skills as skills
from realm_kernel.evals.curriculum import live
from realm_skills.evaluation import SkillState

# The rule the docs promise for every shipped skill, written here and not read from the
# YAML: a test that read it from the YAML would loosen with it.
DOCUMENTED = {"accuracy": 0.8, "consecutive_evals": 3}
SHIPPED = ("bin", "sy")


def test_every_shipped_skill_is_one_this_file_pins():
    assert set(skills.skill_ids()) == set(SHIPPED)


@pytest.mark.parametrize("skill", SHIPPED)
def test_the_yaml_rule_is_the_documented_one(skill):
    rule = skills.skill_def(skill).level_up
    assert {"accuracy": rule.accuracy, "consecutive_evals": rule.consecutive_evals} == DOCUMENTED


@pytest.mark.parametrize("skill", SHIPPED)
def test_three_evals_at_80_percent_level_up_and_nothing_less_does(skill):
    just_under = 0.8 - 1e-9
    assert SkillState.replay(skill, [(1, 0.8)] * 3).level == 2
    assert SkillState.replay(skill, [(1, 0.8)] * 2).level == 1, "two evals are not three"
    assert SkillState.replay(skill, [(1, just_under)] * 3).level == 1, "79.9...% is not 80%"
    assert SkillState.replay(skill, [(1, 1.0), (1, 1.0), (1, just_under)]).level == 1
    assert SkillState.replay(skill, [(1, 0.0)] * 10).level == 1
    # Evals of another level never count toward this one.
    assert SkillState.replay(skill, [(2, 1.0)] * 3 + [(1, 0.8)] * 2).level == 1


def plan(skill: str, level: int, recent: list[float], top: int = 30) -> dict:
    return {"skill": skill, "level": level, "max_level": top, "recent": recent,
            "enabled": True, "priority": 1}


def test_the_curriculum_stops_a_skill_only_once_its_top_level_is_mastered():
    def still_trained(level: int, recent: list[float]) -> bool:
        return [p["skill"] for p in live([plan("sy", level, recent)])] == ["sy"]

    assert not still_trained(30, [0.8, 0.8, 0.8]), "mastered: the top level, 3 evals >= 80%"
    assert not still_trained(30, [1.0, 0.9, 0.8])
    assert still_trained(30, [0.8, 0.8]), "two evals are not three"
    assert still_trained(30, [0.8, 0.8, 0.8 - 1e-9]), "one eval under 80%"
    assert still_trained(30, [0.0, 1.0, 1.0])
    assert still_trained(29, [1.0, 1.0, 1.0]), "a level below the top is not mastered"
    assert still_trained(30, [])
    # The curriculum's rule and SkillState.mastered agree on each case above.
    for level, recent in ((30, [0.8] * 3), (30, [0.8] * 2), (30, [0.8, 0.8, 0.79]), (29, [1.0] * 3)):
        top = skills.skill_def("sy").max_level
        state = SkillState("sy", level=top if level == 30 else top - 1, recent=recent)
        assert state.mastered == (not still_trained(level, recent)), (level, recent)


def test_a_disabled_skill_is_never_trained():
    assert live([{**plan("sy", 1, []), "enabled": False}]) == []
