"""Scoring an eval, exactly: which answers count, the per-primitive table in order, the
summary the ledger stores, the refusals, and the level-up state as the API shows it.
Fast unit tests (the ledger and CLI paths are in test_skills_eval.py)."""

from __future__ import annotations

import pytest

import realm_skills as skills
from realm_skills.evaluation import EVAL_SEED, PrimitiveScore, SkillState, eval_problems, run_eval, score_all
from realm_skills.problem import Problem


def prob(prim: str, final: str, level: int = 1, skill: str = "bin") -> Problem:
    return Problem(skill, level, prim, f"q {prim}?", f"work\nAnswer: {final}")


PROBLEMS = [prob("b_add", "10"), prob("a_and", "1"), prob("b_add", "11"), prob("b_add", "0")]


def test_score_all_counts_each_answer_and_each_primitive_in_name_order():
    res = score_all(PROBLEMS, ["Answer: 10", "0", "steps\n11\n", "1"])
    assert [i.correct for i in res.items] == [True, False, True, False]
    assert [i.answer for i in res.items] == ["Answer: 10", "0", "steps\n11\n", "1"]
    assert [i.problem for i in res.items] == PROBLEMS
    assert (res.skill, res.level, res.n, res.correct) == ("bin", 1, 4, 2)
    assert res.accuracy == 0.5
    assert list(res.per_primitive) == ["a_and", "b_add"]  # sorted, not first seen
    assert res.per_primitive == {"a_and": PrimitiveScore(1, 0), "b_add": PrimitiveScore(3, 2)}
    assert res.per_primitive_accuracy == {"a_and": 0.0, "b_add": pytest.approx(2 / 3)}
    assert [w.problem.final for w in res.wrong] == ["1", "0"]
    assert res.summary() == {
        "skill": "bin", "level": 1, "n": 4, "correct": 2, "accuracy": 0.5,
        "per_primitive": {"a_and": {"n": 1, "correct": 0, "accuracy": 0.0},
                          "b_add": {"n": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}}}
    assert score_all(PROBLEMS[:1], ["10"]).accuracy == 1.0
    assert PrimitiveScore(0, 0).accuracy == 0.0


def test_score_all_and_run_eval_refuse_what_cannot_be_scored():
    with pytest.raises(skills.SkillError, match="^3 answers for 4 problems$"):
        score_all(PROBLEMS, ["1"] * 3)
    with pytest.raises(skills.SkillError, match="^an eval needs at least one problem$"):
        score_all([], [])
    with pytest.raises(skills.SkillError, match="^problem of bin level 2 in an eval of bin level 1$"):
        run_eval("bin", 1, ["1", "1"], problems=[prob("b_add", "1"), prob("b_add", "1", level=2)])
    with pytest.raises(skills.SkillError, match="^problem of sy level 1 in an eval of bin level 1$"):
        run_eval("bin", 1, ["1"], problems=[prob("b_add", "1", skill="sy")])
    assert run_eval("bin", 1, ["10", "1", "11", "0"], problems=PROBLEMS).accuracy == 1.0


def test_eval_problems_are_the_levels_own_batch_at_the_eval_seed():
    batch = eval_problems("bin", 1)
    assert len(batch) == skills.skill_def("bin").eval_size
    assert batch == eval_problems("bin", 1, EVAL_SEED) == skills.generate("bin", 1, len(batch), EVAL_SEED)
    assert eval_problems("bin", 1, size=3) == skills.generate("bin", 1, 3, EVAL_SEED)
    assert eval_problems("bin", 1, seed=7, size=5) == skills.generate("bin", 1, 5, 7)
    assert eval_problems("bin", 1, seed=7, size=5) != eval_problems("bin", 1, size=5)
    assert all((p.skill, p.level) == ("bin", 1) for p in batch)
    # run_eval draws the batch by the number of answers given, at the eval seed.
    golden = [p.answer for p in eval_problems("bin", 2, size=6)]
    res = run_eval("bin", 2, golden)
    assert (res.n, res.correct, res.level) == (6, 6, 2)
    assert run_eval("bin", 2, golden, seed=EVAL_SEED + 1).correct < 6


def test_skill_state_records_results_and_shows_its_rule():
    s = SkillState("bin")
    full = score_all(PROBLEMS, ["10", "1", "11", "0"])
    assert not s.record_result(full) and not s.record_result(full)
    assert s.recent == [1.0, 1.0]
    assert s.as_dict() == {"skill": "bin", "level": 1, "recent": [1.0, 1.0], "max_level": 30,
                           "mastered": False, "rule": {"accuracy": 0.8, "consecutive_evals": 3}}
    assert s.as_dict()["recent"] is not s.recent  # a copy: the caller cannot edit the state
    assert s.record_result(full) and (s.level, s.recent) == (2, [])
    assert not s.record_result(full)  # a level-1 result after the level-up does not count
    assert s.recent == []
    half = score_all(PROBLEMS, ["10", "x", "11", "x"])
    assert SkillState.replay("bin", [(1, half.accuracy)] * 5).level == 1
    assert SkillState.replay("bin", [(1, 0.8)] * 3).level == 2  # 80% is enough
    assert SkillState.replay("bin", [(1, 0.8)] * 6).level == 2  # level 1's evals stop counting at 2
    assert SkillState.replay("bin", [(1, 0.8)] * 3 + [(2, 0.9)] * 3).level == 3
    assert SkillState.replay("bin", [(1, 1.0), (1, 1.0), (1, 0.5), (1, 1.0), (1, 1.0)]).level == 1
    top = SkillState("bin", level=30)
    for _ in range(2):
        top.record(30, 1.0)
    assert not top.mastered  # two of three
    top.record(30, 1.0)
    assert top.level == 30 and top.mastered and top.as_dict()["mastered"] is True
    top.record(30, 0.5)
    assert not top.mastered
