"""Arithmetic: number sense on decimal integers."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import number


@primitive("arith_add", digits=3, operands=2)
def add(rng: Random, k: dict) -> tuple[str, str]:
    xs = [number(rng, k["digits"]) for _ in range(k["operands"])]
    return f"What is {' + '.join(map(str, xs))}?", str(sum(xs))


@primitive("arith_sub", digits=3)
def sub(rng: Random, k: dict) -> tuple[str, str]:
    a, b = sorted((number(rng, k["digits"]), number(rng, k["digits"])), reverse=True)
    return f"What is {a} - {b}?", str(a - b)


@primitive("arith_mul", digits=2, digits2=1)
def mul(rng: Random, k: dict) -> tuple[str, str]:
    a, b = number(rng, k["digits"]), number(rng, k["digits2"])
    return f"What is {a} * {b}?", str(a * b)


@primitive("arith_div", quotient_digits=2, divisor_max=12)
def div(rng: Random, k: dict) -> tuple[str, str]:
    q, d = number(rng, k["quotient_digits"]), rng.randint(2, k["divisor_max"])
    return f"What is {q * d} / {d}? (It divides exactly.)", str(q)


@primitive("arith_precedence", digits=1, terms=3)
def precedence(rng: Random, k: dict) -> tuple[str, str]:
    xs = [number(rng, k["digits"]) for _ in range(k["terms"])]
    ops = [rng.choice("+-*") for _ in range(k["terms"] - 1)]
    expr = str(xs[0]) + "".join(f" {o} {x}" for o, x in zip(ops, xs[1:], strict=True))
    return f"Evaluate with the usual operator precedence: {expr}", str(eval(expr))  # noqa: S307 - our own digits and + - *
