"""BIN's bitwise, shift and compare operations checked against plain integer arithmetic,
in every work mode: the answer, and each line of the worked solution (column by column,
LSB first, for the bitwise ops). The bitwise ops are built by a factory at import time,
so the factory is also called here, as a new op would be (mutmut: its mutants survived
because no test built an op)."""

from __future__ import annotations

import operator
from random import Random

import pytest

from realm_skills.generators import binary as b

FOLDS = {"&": (operator.and_, b.bit_and), "|": (operator.or_, b.bit_or), "^": (operator.xor, b.bit_xor)}


def _bit(value: int, i: int) -> str:
    return b.BIT[(value >> i) & 1]


def _check_bitwise(op, sym: str, fold, bits: int, n: int, mode: str, seed: int) -> None:
    s = op(Random(seed), bits, n, mode)
    assert s.operands[0] == Random(seed).getrandbits(bits) and len(s.operands) == n
    want = s.operands[0]
    for v in s.operands[1:]:
        want = fold(want, v)
    assert s.value == want and s.answer == b.to_circled(want, bits)
    assert s.expr == f" {sym} ".join(b.to_circled(v, bits) for v in s.operands)
    if mode == "none":
        assert s.work == []
    elif mode == "brief":
        assert s.work == [f"LSB first: {''.join(_bit(want, i) for i in range(bits))}"]
    else:
        assert s.work == [f"{i}: {sym.join(_bit(v, i) for v in s.operands)} {b.ARROW} {_bit(want, i)}"
                          for i in range(bits)]


@pytest.mark.parametrize("sym", FOLDS)
@pytest.mark.parametrize("mode", ["none", "brief", "full"])
@pytest.mark.parametrize("n", [2, 3])
def test_bitwise_ops_answer_and_work_match_integer_arithmetic(sym, mode, n):
    fold, op = FOLDS[sym]
    for seed in range(6):
        _check_bitwise(op, sym, fold, 6, n, mode, seed)


def test_the_bitwise_factory_builds_an_op_that_folds_and_shows_columns():
    built_or = b._bitwise("|", lambda x, y: x | y, any)
    for mode in ("none", "brief", "full"):
        _check_bitwise(built_or, "|", operator.or_, 5, 3, mode, seed=4)


@pytest.mark.parametrize("mode", ["none", "brief", "full"])
def test_shift_steps_and_answer(mode):
    for seed in range(20):
        s = b.shift(Random(seed), 8, 2, mode)
        a, k = s.operands
        assert 1 <= k < 8
        left = " << " in s.expr
        want = (a << k) & 0xFF if left else a >> k
        assert s.value == want and s.answer == b.to_circled(want, 8)
        assert s.expr == f"{b.to_circled(a, 8)} {'<<' if left else '>>'} {k}"
        steps = [b.to_circled(((a << j) & 0xFF) if left else a >> j, 8) for j in range(1, k + 1)]
        circled = b.to_circled(a, 8)
        dropped = circled[:k] if left else circled[8 - k:]
        assert s.work == {"none": [], "full": [f"{j + 1}: {x}" for j, x in enumerate(steps)],
                          "brief": [f"drop {dropped}, fill {b.ZERO * k}"]}[mode]


def test_compare_sign_first_difference_and_its_share_of_equal_pairs():
    equal = 0
    for seed in range(400):
        s = b.compare(Random(seed), 8, 2, "brief")
        x, y = s.operands
        sign = "<" if x < y else ">" if x > y else "="
        assert s.answer == s.value == sign
        sx, sy = b.to_circled(x, 8), b.to_circled(y, 8)
        assert s.expr == f"{sx} ? {sy}"
        if x == y:
            equal += 1
            assert s.work == ["all bits equal"]
            full = b.compare(Random(seed), 8, 2, "full").work
            assert full == [f"{7 - i}: {sx[i]} {sy[i]}" for i in range(8)]
        else:
            i = next(i for i in range(8) if sx[i] != sy[i])
            assert s.work == [f"first difference at {7 - i}: {sx[i]} {sign} {sy[i]}"]
            assert b.compare(Random(seed), 8, 2, "full").work[-1] == f"{7 - i}: {sx[i]} {sy[i]}"
    # an eighth of the problems are equal pairs by design; by chance it would be 1 in 256
    assert 20 <= equal <= 90
