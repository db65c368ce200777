"""BIN "Binary Alchemy": binary arithmetic written in circled digits, one glyph per bit.

Numbers are fixed width (zero-padded): an n-operand sum of `bits`-wide numbers is
written `bits + (n-1).bit_length()` wide, a product `bits + bits2` wide, everything else
`bits` wide, so every column of the worked solution exists and the top carry is a bit.

Worked solutions run least-significant bit first, so a carry or borrow is written
before the column that uses it: the measured difference for a tiny model is 0% (8-bit
addition written MSB-first, 2,000 steps) against 100% (LSB-first scratch, 834 steps).
`work: full` shows one line per column, `brief` the result LSB-first (or the partial
products, or the first differing bit), `none` the answer alone. With work shown, the
answer is on a last line marked `Answer:`, which scoring reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from pydantic import Field

from ..loader import LevelBase, PrimitiveDef
from ..problem import Problem
from ..registration import register_generator

ZERO, ONE = "\u24ea", "\u2460"  # ⓪ ①
_TO_CIRCLED = str.maketrans({"0": ZERO, "1": ONE})
_FROM_CIRCLED = str.maketrans({ZERO: "0", ONE: "1"})
BIT = (ZERO, ONE)
ARROW = "\u2192"  # →


class Level(LevelBase):
    bits: int = Field(ge=1, le=64)
    # operand count for the n-ary operations (add, add_no_carry, and, or, xor)
    operands: int = Field(2, ge=2, le=8)


def to_circled(value: int, bits: int) -> str:
    if value < 0 or value >= 1 << bits:
        raise ValueError(f"{value} does not fit in {bits} bits")
    return format(value, f"0{bits}b").translate(_TO_CIRCLED)


def from_circled(text: str) -> int:
    text = text.strip()
    if not text or set(text) - {ZERO, ONE}:
        raise ValueError(f"not circled binary (only {ZERO} and {ONE} allowed): {text!r}")
    return int(text.translate(_FROM_CIRCLED), 2)


def lsb_first(value: int, bits: int) -> str:
    return to_circled(value, bits)[::-1]


@dataclass(frozen=True)
class Solved:
    operands: list[int]
    expr: str  # the question's expression, e.g. "⓪①①⓪ + ⓪⓪①① = ?"
    answer: str  # the final answer (circled number or a comparison sign)
    value: int | str
    work: list[str]  # lines before the answer line (only those of the asked mode)


# -- operations ------------------------------------------------------------------------

def _columns(values: list[int], width: int) -> list[list[str]]:
    """Per column, LSB first: the circled bit of every value."""
    strs = [lsb_first(v, width) for v in values]
    return [[s[i] for s in strs] for i in range(width)]


def _nary_expr(values: list[int], bits: int, sym: str) -> str:
    return f" {sym} ".join(to_circled(v, bits) for v in values)


def _brief(result: int, width: int) -> list[str]:
    return [f"LSB first: {lsb_first(result, width)}"]


def _add_lines(values: list[int], width: int, result: int, mode: str) -> list[str]:
    if mode != "full":
        return _brief(result, width) if mode == "brief" else []
    full, carry = [], 0
    for i, col in enumerate(_columns(values, width)):
        s = sum(c == ONE for c in col) + carry
        full.append(f"{i}: {'+'.join(col)} c{carry} {ARROW} {BIT[s & 1]} c{s >> 1}")
        carry = s >> 1
    return full


def add_no_carry(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    # Each bit position goes to at most one operand: no column ever carries.
    values = [0] * n
    for i in range(bits):
        pick = rng.randrange(n + 1)
        if pick:
            values[pick - 1] |= 1 << i
    result = sum(values)
    return Solved(values, _nary_expr(values, bits, "+"), to_circled(result, bits), result,
                  _add_lines(values, bits, result, mode))


def add(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    values = [rng.getrandbits(bits) for _ in range(n)]
    width = bits + (n - 1).bit_length()
    result = sum(values)
    return Solved(values, _nary_expr(values, bits, "+"), to_circled(result, width), result,
                  _add_lines(values, width, result, mode))


def sub(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    a, b = rng.getrandbits(bits), rng.getrandbits(bits)
    a, b = max(a, b), min(a, b)
    result = a - b
    work = _brief(result, bits) if mode == "brief" else []
    if mode == "full":
        borrow = 0
        for i, (x, y) in enumerate(_columns([a, b], bits)):
            d = (x == ONE) - (y == ONE) - borrow
            work.append(f"{i}: {x}-{y} b{borrow} {ARROW} {BIT[d & 1]} b{int(d < 0)}")
            borrow = int(d < 0)
    return Solved([a, b], _nary_expr([a, b], bits, "-"), to_circled(result, bits), result, work)


def mul_width(bits: int) -> int:
    return max(2, bits // 2)


def mul(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    bits2 = mul_width(bits)
    a, b = rng.getrandbits(bits), rng.getrandbits(bits2)
    width = bits + bits2
    work, running = [], 0
    for i in range(bits2 if mode != "none" else 0):
        bit = (b >> i) & 1
        partial = (a << i) if bit else 0
        running += partial
        line = f"{i}: {BIT[bit]} {ARROW} {to_circled(partial, width)}"
        work.append(f"{line} = {to_circled(running, width)}" if mode == "full" else line)
    expr = f"{to_circled(a, bits)} \u00d7 {to_circled(b, bits2)}"
    return Solved([a, b], expr, to_circled(a * b, width), a * b, work)


def _bitwise(sym: str, fold: Callable[[int, int], int], bit: Callable[[list[bool]], bool]):
    def op(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
        values = [rng.getrandbits(bits) for _ in range(n)]
        result = values[0]
        for v in values[1:]:
            result = fold(result, v)
        work = _brief(result, bits) if mode == "brief" else []
        if mode == "full":
            work = [f"{i}: {sym.join(col)} {ARROW} {BIT[bit([c == ONE for c in col])]}"
                    for i, col in enumerate(_columns(values, bits))]
        return Solved(values, _nary_expr(values, bits, sym), to_circled(result, bits), result, work)
    return op


bit_and = _bitwise("&", lambda x, y: x & y, all)
bit_or = _bitwise("|", lambda x, y: x | y, any)
bit_xor = _bitwise("^", lambda x, y: x ^ y, lambda col: sum(col) % 2 == 1)


def bit_not(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    a = rng.getrandbits(bits)
    result = a ^ ((1 << bits) - 1)
    work = _brief(result, bits) if mode == "brief" else []
    if mode == "full":
        work = [f"{i}: ~{x} {ARROW} {BIT[x == ZERO]}" for i, (x,) in enumerate(_columns([a], bits))]
    return Solved([a], f"~{to_circled(a, bits)}", to_circled(result, bits), result, work)


def shift(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    a = rng.getrandbits(bits)
    k = rng.randrange(1, max(2, bits))
    left = rng.random() < 0.5
    mask = (1 << bits) - 1
    steps, v = [], a
    for _ in range(k):
        v = ((v << 1) & mask) if left else (v >> 1)
        steps.append(to_circled(v, bits))
    s = to_circled(a, bits)
    dropped = s[:k] if left else s[bits - k:]
    work = {"full": [f"{i + 1}: {x}" for i, x in enumerate(steps)],
            "brief": [f"drop {dropped}, fill {ZERO * k}"]}.get(mode, [])
    sym = "<<" if left else ">>"
    return Solved([a, k], f"{s} {sym} {k}", steps[-1], v, work)


def compare(rng: Random, bits: int, n: int, mode: str = "none") -> Solved:
    a = rng.getrandbits(bits)
    # Equal operands are rare by chance; give them an eighth of the problems.
    b = a if rng.random() < 0.125 else rng.getrandbits(bits)
    sa, sb = to_circled(a, bits), to_circled(b, bits)
    sign = "<" if a < b else ">" if a > b else "="
    full, first = [], "all bits equal"
    for i in range(bits):  # most significant first: the first difference decides
        pos = bits - 1 - i
        full.append(f"{pos}: {sa[i]} {sb[i]}")
        if sa[i] != sb[i]:
            first = f"first difference at {pos}: {sa[i]} {sign} {sb[i]}"
            break
    work = {"full": full, "brief": [first]}.get(mode, [])
    return Solved([a, b], f"{sa} ? {sb}", sign, sign, work)


@dataclass(frozen=True)
class Op:
    solve: Callable[[Random, int, int, str], Solved]
    verb: str
    ask: str = " = ?"


OPS: dict[str, Op] = {
    "add_no_carry": Op(add_no_carry, "Add without carry"),
    "add": Op(add, "Add"),
    "sub": Op(sub, "Subtract"),
    "mul": Op(mul, "Multiply"),
    "and": Op(bit_and, "AND"),
    "or": Op(bit_or, "OR"),
    "xor": Op(bit_xor, "XOR"),
    "not": Op(bit_not, "NOT"),
    "shift": Op(shift, "Shift"),
    "compare": Op(compare, "Compare, answering <, > or =", ask=""),
}

WORK_PROMPT = {
    "none": "",
    "brief": "\nShow brief work, then the answer on a last line 'Answer: ...'.",
    "full": "\nShow every step, then the answer on a last line 'Answer: ...'.",
}


def check_level(level: Level, ops: list[str]) -> str | None:
    if "shift" in ops and level.bits < 2:
        return "shift needs bits >= 2"
    if "not" in ops and level.bits < 4:
        return "not needs bits >= 4 (fewer bits leave too few distinct problems)"
    return None


@register_generator("bin")
def make(level: Level, number: int, prim: PrimitiveDef, rng: Random, skill: str = "bin") -> Problem:
    op = OPS[prim.op]
    s = op.solve(rng, level.bits, level.operands, level.work)
    question = f"Binary Alchemy, level {number}. {op.verb}: {s.expr}{op.ask}{WORK_PROMPT[level.work]}"
    if level.work == "none":
        answer = s.answer
    else:
        answer = "\n".join([*s.work, f"Answer: {s.answer}"])
    return Problem(skill=skill, level=number, primitive_id=prim.id, question=question,
                   answer=answer, final=s.answer,
                   metadata={"op": prim.op, "bits": level.bits, "operands": s.operands,
                             "result": s.value, "work": level.work})

