"""BIN "Binary Alchemy" generator: binary arithmetic written in circled digits."""

from __future__ import annotations

from random import Random

from .problem import Problem

ZERO, ONE = "\u24ea", "\u2460"  # ⓪ ①
_TO_CIRCLED = str.maketrans({"0": ZERO, "1": ONE})
_FROM_CIRCLED = str.maketrans({ZERO: "0", ONE: "1"})


def to_circled(value: int, bits: int) -> str:
    if value < 0 or value >= 1 << bits:
        raise ValueError(f"{value} does not fit in {bits} bits")
    return format(value, f"0{bits}b").translate(_TO_CIRCLED)


def from_circled(text: str) -> int:
    text = text.strip()
    if not text or set(text) - {ZERO, ONE}:
        raise ValueError(f"not circled binary (only {ZERO} and {ONE} allowed): {text!r}")
    return int(text.translate(_FROM_CIRCLED), 2)


def _add_no_carry(rng: Random, bits: int) -> tuple[int, int, int]:
    # Each bit position goes to a, to b, or to neither: no column ever carries.
    a = b = 0
    for i in range(bits):
        pick = rng.randrange(3)
        a |= (pick == 1) << i
        b |= (pick == 2) << i
    return a, b, a + b


OPERATIONS = {"add_no_carry": (_add_no_carry, "+", "Add without carry")}


def generate_one(params: dict, level: int, rng: Random) -> Problem:
    bits = int(params["bits"])
    op = params["operation"]
    make, symbol, verb = OPERATIONS[op]
    a, b, result = make(rng, bits)
    question = (f"Binary Alchemy, level {level}. {verb}: "
                f"{to_circled(a, bits)} {symbol} {to_circled(b, bits)} = ?")
    return Problem(skill="bin", level=level, primitive_id=params["primitive"],
                   question=question, answer=to_circled(result, bits),
                   metadata={"a": a, "b": b, "bits": bits, "operation": op})
