"""Logic: truth values of Boolean expressions, implication and syllogisms."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import truth

CATEGORIES = ["cats", "dogs", "birds", "fish", "robots", "wizards", "knights", "dragons",
              "poets", "sailors", "bakers", "ghosts", "trees", "stones", "stars", "kings"]


def _expr(rng: Random, depth: int, ops: tuple[str, ...]) -> str:
    if depth == 0:
        return rng.choice(["True", "False"])
    a, b = _expr(rng, depth - 1, ops), _expr(rng, rng.randint(0, depth - 1), ops)
    return f"({a} {rng.choice(ops)} {b})"


def _value(expr: str) -> str:
    return truth(eval(expr, {"__builtins__": {}}))  # noqa: S307 - True/False/and/or/not only


@primitive("logic_and_or", depth=2)
def and_or(rng: Random, k: dict) -> tuple[str, str]:
    e = _expr(rng, k["depth"], ("and", "or"))[1:-1]
    return f"Is this True or False? {e}", _value(e)


@primitive("logic_not", depth=2)
def negation(rng: Random, k: dict) -> tuple[str, str]:
    e = _expr(rng, k["depth"], ("and", "or"))
    nots = rng.randint(1, 3)
    e = "not " * nots + e
    return f"Is this True or False? {e}", _value(e)


@primitive("logic_implication")
def implication(rng: Random, k: dict) -> tuple[str, str]:
    p, q = rng.choice([True, False]), rng.choice([True, False])
    a, b = rng.sample("PQRSTUVWXYZ", 2)
    return (f"{a} is {truth(p)} and {b} is {truth(q)}. Is \"if {a} then {b}\" True or False?",
            truth((not p) or q))


@primitive("logic_syllogism")
def syllogism(rng: Random, k: dict) -> tuple[str, str]:
    a, b, c = rng.sample(CATEGORIES, 3)
    form = rng.randrange(4)
    if form == 0:  # Barbara: valid
        text, valid = f"All {a} are {b}. All {b} are {c}. Therefore all {a} are {c}.", True
    elif form == 1:  # undistributed middle
        text, valid = f"All {a} are {b}. All {c} are {b}. Therefore all {a} are {c}.", False
    elif form == 2:  # Celarent: valid
        text, valid = f"No {b} are {c}. All {a} are {b}. Therefore no {a} are {c}.", True
    else:  # illicit conversion
        text, valid = f"All {a} are {b}. Therefore all {b} are {a}.", False
    return f"Does the conclusion follow? Answer Yes or No. {text}", "Yes" if valid else "No"
