import pytest

import skills
from skills.binary import from_circled, to_circled


def test_circled_round_trip():
    for bits in (1, 4, 8):
        for v in range(1 << bits):
            assert from_circled(to_circled(v, bits)) == v
    assert to_circled(5, 4) == "⓪①⓪①"
    with pytest.raises(ValueError):
        to_circled(16, 4)
    with pytest.raises(ValueError):
        from_circled("0101")


def test_level1_is_addition_without_carry_and_deterministic():
    ps = skills.generate("bin", 1, 200, seed=7)
    assert ps == skills.generate("bin", 1, 200, seed=7)
    assert ps != skills.generate("bin", 1, 200, seed=8)
    for p in ps:
        a, b = p.metadata["operands"]
        assert a & b == 0, "level 1 never carries"
        assert from_circled(p.answer) == a + b
        assert p.primitive_id == "bin_add_no_carry" and p.level == 1


def test_score_is_strict_and_reads_the_last_line():
    p = skills.generate("bin", 1, 1, seed=1)[0]
    assert skills.score(p, p.answer)
    assert skills.score(p, f"working...\n{p.answer}\n")
    wrong = p.answer[:-1] + ("⓪" if p.answer[-1] == "①" else "①")
    assert not skills.score(p, wrong)
    assert not skills.score(p, "")
    assert not skills.score(p, p.answer + "⓪")


def test_problem_becomes_a_chat_example():
    p = skills.generate("bin", 1, 1, seed=1)[0]
    ex = p.as_example()
    assert ex["messages"][-1] == {"role": "assistant", "content": p.answer}
    assert ex["meta"]["skill"] == "bin"


def test_unknown_skill_or_level():
    with pytest.raises(skills.SkillError, match="unknown skill"):
        skills.generate("nope", 1, 1)
    with pytest.raises(skills.SkillError, match="no level 99"):
        skills.generate("bin", 99, 1)
