"""An eval with nothing in it is never a perfect score: no problems is refused at every
step of the grading path (nobody is asked), and an empty result or primitive scores 0."""

from __future__ import annotations

import pytest

import realm_skills as skills
from realm_kernel.evals.grading import grade
from realm_skills.evaluation import EvalResult, PrimitiveScore, run_eval, score_all


def test_nothing_to_grade_is_refused_and_nobody_is_asked():
    asked: list = []

    def ask(questions, golden):
        asked.append(list(questions))
        return ["Answer: 1"] * len(questions)

    with pytest.raises(skills.SkillError, match="nothing to grade: no problems"):
        grade([], ask)
    assert asked == [], "an empty eval asks nobody"
    with pytest.raises(skills.SkillError, match="an eval needs at least one problem"):
        score_all([], [])
    with pytest.raises(skills.SkillError, match="an eval needs at least one problem"):
        run_eval("bin", 1, [], problems=[])


def test_an_empty_result_and_an_empty_primitive_score_zero():
    empty = EvalResult("bin", 1, [], {})
    assert (empty.n, empty.correct, empty.accuracy) == (0, 0, 0.0)
    assert empty.summary()["accuracy"] == 0.0 and empty.wrong == []
    assert PrimitiveScore(0, 0).accuracy == 0.0
    assert EvalResult("bin", 1, [], {"b_add": PrimitiveScore(0, 0)}).per_primitive_accuracy == {"b_add": 0.0}


def test_blank_answers_score_zero_on_a_real_eval_batch():
    for skill in skills.skill_ids():
        res = run_eval(skill, 1, [""] * 20)
        assert (res.n, res.correct, res.accuracy) == (20, 0, 0.0), skill
