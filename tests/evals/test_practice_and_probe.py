"""A skill's quest (`practice.skill_quest`) and "Ask DIO" (`grading.probe`) on a real
realm home, without training: the quest file holds exactly the generated problems under
the name that says skill, level, count and seed; a probe grades the reply it got against
the problem it asked. mutmut found these reached by no fast test (docs/testing.md)."""

from __future__ import annotations

import json

import pytest

import realm_skills as skills
from realm_kernel.evals import grading, practice
from realm_kernel.store.home import Home


def test_skill_quest_publishes_exactly_the_generated_problems_under_its_name(tmp_path):
    home = Home(tmp_path / "home")
    path = practice.skill_quest(home, "bin", 3, 5, seed=7)
    assert path.name == "bin-L3-5-s7.jsonl"
    assert path.parent == home.paths.inbox and path.is_file()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == [p.as_example() for p in skills.generate("bin", 3, 5, 7)]
    assert {r["meta"]["level"] for r in rows} == {3}
    # the same seed twice is the same quest name: refused, nothing overwritten
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="bin-L3-5-s7.jsonl"):
        practice.skill_quest(home, "bin", 3, 5, seed=7)
    assert path.read_bytes() == before


def test_probe_grades_the_reply_to_the_problem_it_asked():
    asked: list[str] = []
    expected = skills.generate("bin", 2, 1, 11)[0]

    def right(question: str) -> str:
        asked.append(question)
        return expected.answer

    got = grading.probe(right, "bin", 2, seed=11)
    assert asked == [expected.question]
    assert got == {"skill": "bin", "level": 2, "seed": 11, "question": expected.question,
                   "primitive_id": expected.primitive_id, "expected": expected.final,
                   "correct": True}
    wrong = grading.probe(lambda q: "Answer: nope", "bin", 2, seed=11)
    assert wrong["correct"] is False and wrong["question"] == expected.question
