import re
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import realm_skills as skills
from realm_skills.generators import binary
from realm_skills.generators.binary import OPS, from_circled, lsb_first, mul_width, to_circled

FAST = settings(max_examples=150, deadline=None)


def test_circled_round_trip():
    for bits in (1, 4, 8):
        for v in range(1 << bits):
            assert from_circled(to_circled(v, bits)) == v
    assert to_circled(5, 4) == "⓪①⓪①"
    with pytest.raises(ValueError):
        to_circled(16, 4)
    with pytest.raises(ValueError):
        from_circled("0101")


@FAST
@given(st.integers(1, 64).flatmap(lambda b: st.tuples(st.just(b), st.integers(0, (1 << b) - 1))))
def test_circled_notation_round_trips_with_one_glyph_per_bit(bv):
    bits, v = bv
    s = to_circled(v, bits)
    assert len(s) == bits and set(s) <= {"⓪", "①"}
    assert from_circled(s) == v
    assert lsb_first(v, bits) == s[::-1]


@FAST
@given(st.text(min_size=1, max_size=12).filter(lambda t: set(t.strip()) - {"⓪", "①"}))
def test_from_circled_rejects_anything_else(text):
    with pytest.raises(ValueError):
        from_circled(text)


def _expected(op: str, operands: list[int], bits: int) -> int | str:
    if op in ("add", "add_no_carry"):
        return sum(operands)
    a, b = (operands + [0])[:2]
    mask = (1 << bits) - 1
    return {"sub": a - b, "mul": a * b, "not": a ^ mask,
            "and": _fold(operands, lambda x, y: x & y), "or": _fold(operands, lambda x, y: x | y),
            "xor": _fold(operands, lambda x, y: x ^ y),
            "compare": "<" if a < b else ">" if a > b else "="}.get(op, 0)


def _fold(values, f):
    out = values[0]
    for v in values[1:]:
        out = f(out, v)
    return out


@FAST
@given(op=st.sampled_from(sorted(OPS)), bits=st.integers(4, 40), n=st.integers(2, 5),
       seed=st.integers(0, 2**32))
def test_every_operation_computes_what_python_computes(op, bits, n, seed):
    s = OPS[op].solve(Random(seed), bits, n)
    # The operands in the question are the ones in the metadata, in circled notation.
    numbers = [from_circled(x) for x in re.findall("[⓪①]+", s.expr)]
    if op == "shift":
        a, k = s.operands
        assert numbers == [a] and f" {k}" in s.expr
        expected = ((a << k) & ((1 << bits) - 1)) if "<<" in s.expr else a >> k
        assert s.value == expected == from_circled(s.answer)
        return
    assert numbers == s.operands
    assert s.value == _expected(op, s.operands, bits)
    if op == "compare":
        assert s.answer == s.value
        return
    assert from_circled(s.answer) == s.value
    width = {"add": bits + (n - 1).bit_length(), "mul": bits + mul_width(bits)}.get(op, bits)
    assert len(s.answer) == width
    if op == "add_no_carry":
        assert _fold(s.operands, lambda x, y: x & y) == 0 and sum(s.operands) < 1 << bits
    if op == "sub":
        assert s.operands[0] >= s.operands[1]


@FAST
@given(bits=st.integers(1, 32), n=st.integers(2, 5), seed=st.integers(0, 2**32))
def test_addition_work_carries_flow_lsb_first_and_spell_the_answer(bits, n, seed):
    s = binary.add(Random(seed), bits, n, "full")
    carry, out = 0, []
    for i, line in enumerate(s.work):
        m = re.fullmatch(r"(\d+): ([⓪①+]+) c(\d+) → ([⓪①]) c(\d+)", line)
        assert m, line
        col = m[2].split("+")
        assert int(m[1]) == i and int(m[3]) == carry and len(col) == n
        total = sum(c == "①" for c in col) + carry
        assert m[4] == "⓪①"[total & 1] and int(m[5]) == total >> 1
        carry = total >> 1
        out.append(m[4])
    assert carry == 0
    assert "".join(reversed(out)) == s.answer
    assert binary.add(Random(seed), bits, n, "brief").work == [f"LSB first: {s.answer[::-1]}"]
    assert binary.add(Random(seed), bits, n).work == []


@FAST
@given(bits=st.integers(1, 32), seed=st.integers(0, 2**32))
def test_subtraction_work_borrows_flow_lsb_first(bits, seed):
    s = binary.sub(Random(seed), bits, 2, "full")
    borrow, out = 0, []
    for line in s.work:
        m = re.fullmatch(r"\d+: ([⓪①])-([⓪①]) b(\d) → ([⓪①]) b(\d)", line)
        assert m and int(m[3]) == borrow, line
        d = (m[1] == "①") - (m[2] == "①") - borrow
        assert m[4] == "⓪①"[d & 1]
        borrow = int(m[5])
        assert borrow == int(d < 0)
        out.append(m[4])
    assert borrow == 0 and "".join(reversed(out)) == s.answer


@FAST
@given(bits=st.integers(2, 24), seed=st.integers(0, 2**32))
def test_multiplication_work_sums_partial_products(bits, seed):
    s = binary.mul(Random(seed), bits, 2, "full")
    a, b = s.operands
    running = 0
    for i, line in enumerate(s.work):
        bit, partial, total = re.fullmatch(r"\d+: ([⓪①]) → ([⓪①]+) = ([⓪①]+)", line).groups()
        assert from_circled(partial) == (a << i if bit == "①" else 0)
        running += from_circled(partial)
        assert from_circled(total) == running
    assert running == a * b


@FAST
@given(seed=st.integers(0, 2**32), level=st.integers(1, 30))
def test_scoring_rejects_any_single_flipped_bit(seed, level):
    p = skills.generate("bin", level, 1, seed=seed)[0]
    assert skills.score(p, p.answer)
    if p.final in "<>=":
        assert not any(skills.score(p, s) for s in "<>=" if s != p.final)
        return
    i = seed % len(p.final)
    flipped = p.final[:i] + ("⓪" if p.final[i] == "①" else "①") + p.final[i + 1:]
    assert not skills.score(p, flipped)
    assert not skills.score(p, "⓪" + p.final)


def test_level1_is_addition_without_carry_and_deterministic():
    ps = skills.generate("bin", 1, 50, seed=7)
    assert ps == skills.generate("bin", 1, 50, seed=7)
    assert ps != skills.generate("bin", 1, 50, seed=8)
    for p in ps:
        a, b = p.metadata["operands"]
        assert a & b == 0, "level 1 never carries"
        assert from_circled(p.answer) == a + b and len(p.answer) == 4
        assert p.primitive_id == "bin_add_no_carry" and p.level == 1
        assert p.question.startswith("Binary Alchemy, level 1. Add without carry: ")


def test_carry_levels_show_lsb_first_work_and_top_levels_hide_it():
    assert skills.level_def("bin", 1).work == "none"
    first_carry = min(lv for lv, d in skills.skill_def("bin").levels.items() if "bin_add" in d.primitives)
    assert skills.level_def("bin", first_carry).work == "full"
    p = skills.generate("bin", 13, 1, seed=4)[0]  # 8-bit addition
    assert p.answer.splitlines()[0].startswith("0: ") and p.answer.splitlines()[-1].startswith("Answer: ")
    assert skills.level_def("bin", 30).work == "none" and skills.level_def("bin", 30).bits == 32


def test_score_is_strict_and_reads_the_last_line():
    p = skills.generate("bin", 1, 1, seed=1)[0]
    assert skills.score(p, p.answer)
    assert skills.score(p, f"working...\n{p.answer}\n")
    assert skills.score(p, f"working...\nAnswer: {p.answer}")
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
    with pytest.raises(skills.SkillError, match="unknown skill"):
        skills.generate("_template", 1, 1)
