"""Every passive is real: each of the catalogue's 60 primitives generates
deterministically without repeats, its reference answer scores 1 and near misses 0."""

from __future__ import annotations

import re
from collections import Counter

import pytest

import realm_skills as skills
from realm_skills.catalog import catalog

SEED_TABLE = {"arithmetic": 5, "binary_arithmetic": 10, "code_trace": 6, "combinatorics": 5,
              "counting": 4, "language_basics": 5, "logic": 4, "memory": 5, "sequence": 5,
              "string_craft": 4, "word_puzzles": 7}
ALL = sorted(catalog().primitives)


def test_all_11_passives_and_their_primitives_are_in_the_catalogue():
    got = Counter(p.passive for p in catalog().primitives.values())
    assert dict(got) == SEED_TABLE
    assert len(ALL) == sum(SEED_TABLE.values()) == 60


def near_misses(final: str) -> set[str]:
    """Answers one slip away from the golden one: an extra or lost character, a changed
    case, a number off by one, a swapped pair of characters."""
    out = {final + "x", final + "0", final[:-1], final.swapcase(), final + ".", " ".join(final)}
    if re.fullmatch(r"-?[0-9]+", final):
        out |= {str(int(final) + 1), str(int(final) - 1), str(int(final) * 10)}
    if len(final) > 1:
        out.add(final[1] + final[0] + final[2:])
    return {x for x in out if x.strip() != final}


@pytest.mark.parametrize("pid", ALL)
def test_primitive_generates_and_scores_strictly(pid):
    batch = skills.generate_primitive(pid, 40, seed=7)
    assert len(batch) == 40
    assert [p.question for p in batch] == [p.question for p in skills.generate_primitive(pid, 40, seed=7)]
    assert [p.question for p in skills.generate_primitive(pid, 40, seed=8)] != [p.question for p in batch]
    assert len({p.question for p in batch}) == 40, "repeats in a batch"
    for p in batch:
        assert p.primitive_id == pid and p.final
        assert skills.score(p, p.answer)
        assert skills.score(p, f"Answer: {p.final}")
        for miss in near_misses(p.final):
            assert not skills.score(p, miss), (pid, p.question, p.final, miss)
        assert not skills.score(p, "")


def test_code_trace_answers_are_what_python_prints():
    import contextlib
    import io
    for pid in [p for p in ALL if p.startswith("trace_")]:
        for p in skills.generate_primitive(pid, 10, seed=1):
            code = p.question.split("```\n")[1].rsplit("\n```", 1)[0]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, {})  # noqa: S102 - the test's own generated program
            assert out.getvalue().strip() == p.final


def test_knobs_come_from_yaml_and_calls_and_bad_ones_are_named():
    assert skills.knobs_for("arith_add") == {"digits": 3, "operands": 2}
    big = skills.generate_primitive("arith_add", 5, seed=1, digits=6)
    assert all(len(x) == 6 for p in big for x in p.question[8:-1].split(" + "))
    with pytest.raises(skills.SkillError, match="arith_add.*no knob 'bits'"):
        skills.generate_primitive("arith_add", 1, bits=3)
    with pytest.raises(skills.SkillError, match="knob 'digits' must be int"):
        skills.generate_primitive("arith_add", 1, digits="3")
    with pytest.raises(skills.SkillError, match="unknown primitive 'arith_pow'"):
        skills.generate_primitive("arith_pow", 1)


def test_a_bad_knob_in_the_passives_yaml_names_file_and_key(tmp_path, monkeypatch):
    import realm_skills.catalog as cat
    text = cat.PASSIVES_FILE.read_text(encoding="utf-8").replace(
        "{digits: 3, operands: 2}", "{digits: 3, operandz: 2}")
    bad = tmp_path / "_passives.yaml"
    bad.write_text(text, encoding="utf-8")
    monkeypatch.setattr(cat, "PASSIVES_FILE", bad)
    cat.catalog.cache_clear()
    try:
        key = r"passives\.0\.primitives\.0\.knobs\.operandz"
        with pytest.raises(skills.SkillError, match=rf"_passives\.yaml: {key}: unknown knob"):
            cat.catalog()
    finally:
        monkeypatch.undo()
        cat.catalog.cache_clear()


def test_skill_primitives_come_from_their_lowest_level():
    (p,) = skills.generate_primitive("bin_add", 1, seed=3)
    assert p.skill == "bin" and p.primitive_id == "bin_add"
    (q,) = skills.generate_primitive("sy_split", 1, seed=3)
    assert q.level == 2 and skills.score(q, q.answer)


def test_generate_passive_covers_every_primitive():
    batch = skills.generate_passive("memory", 3, seed=0)
    assert Counter(p.primitive_id for p in batch) == {p: 3 for p in ALL if p.startswith("memory_")}
