"""Sparring's "confirm_right" example uses a fresh problem of the same primitive as the
wrong answer, never one of the questions the eval asked (the skills target's sparring
survivors: the fresh problem's primitive and freshness were never checked)."""

from __future__ import annotations

from collections import Counter

import realm_skills as skills
from realm_skills.evaluation import eval_problems
from realm_skills.sparring import sparring_examples

from ..skill_helpers import wrong_answer


def test_confirm_right_is_a_fresh_problem_of_the_wrong_answers_primitive():
    problems = eval_problems("bin", 27, size=40)  # level 27 mixes every BIN operation
    answers = [wrong_answer(p) if i % 2 else p.answer for i, p in enumerate(problems)]
    res = skills.run_eval("bin", 27, answers, problems=problems)
    asked = {p.question for p in problems}
    examples = sparring_examples(res)
    assert len(examples) == 3 * len(res.wrong)
    assert len({w.problem.primitive_id for w in res.wrong}) >= 3
    triples = [examples[i:i + 3] for i in range(0, len(examples), 3)]  # one per wrong answer
    for ident, _, confirm in triples:
        assert confirm["meta"]["sparring"] == "confirm_right"
        assert confirm["meta"]["primitive_id"] == ident["meta"]["primitive_id"]
        question = confirm["messages"][0]["content"].split("\n\nProposed answer:")[0]
        assert question not in asked
    confirms = [t[2] for t in triples]
    # wrong answers of one primitive get different fresh problems while the pool lasts
    by_prim = Counter(w.problem.primitive_id for w in res.wrong)
    pid, n = by_prim.most_common(1)[0]
    fresh = [c["messages"][0]["content"] for c in confirms if c["meta"]["primitive_id"] == pid]
    assert n >= 2 and len(set(fresh)) == n
