"""Code tracing: read a short Python program and say what it prints. The golden answer
is what the program really prints (run here on our own generated code)."""

from __future__ import annotations

import contextlib
import io
from random import Random

from ..registration import primitive
from ._common import common_words

NAMES = "abcdefghjkmnpqrstuvwxyz"


def _run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__builtins__": {"print": print, "range": range, "len": len}})  # noqa: S102 - generated here
    return out.getvalue().strip()


def _ask(code: str) -> tuple[str, str]:
    return f"What does this Python program print?\n```\n{code}\n```", _run(code)


@primitive("trace_assign", statements=3, max_value=9)
def assign(rng: Random, k: dict) -> tuple[str, str]:
    names = rng.sample(NAMES, 3)
    lines = [f"{n} = {rng.randint(0, k['max_value'])}" for n in names]
    for _ in range(k["statements"]):
        t, a, b = rng.choice(names), rng.choice(names), rng.choice(names)
        lines.append(f"{t} = {a} {rng.choice('+-')} {b}")
    lines.append(f"print({rng.choice(names)})")
    return _ask("\n".join(lines))


@primitive("trace_branch", max_value=20)
def branch(rng: Random, k: dict) -> tuple[str, str]:
    x, t = rng.randint(0, k["max_value"]), rng.randint(0, k["max_value"])
    a, b = rng.sample(range(1, 10), 2)
    op = rng.choice(["<", ">", "<=", ">=", "=="])
    code = f"x = {x}\nif x {op} {t}:\n    x = x + {a}\nelse:\n    x = x - {b}\nprint(x)"
    return _ask(code)


@primitive("trace_loop", max_iterations=5, max_value=5)
def loop(rng: Random, k: dict) -> tuple[str, str]:
    n = rng.randint(1, k["max_iterations"])
    s, d = rng.randint(0, k["max_value"]), rng.randint(1, k["max_value"])
    body = rng.choice([f"s = s + {d}", "s = s + i", f"s = s * {min(d, 3)}"])
    return _ask(f"s = {s}\nfor i in range({n}):\n    {body}\nprint(s)")


@primitive("trace_function", max_value=9)
def function(rng: Random, k: dict) -> tuple[str, str]:
    a, b, x = (rng.randint(0, k["max_value"]) for _ in range(3))
    body = rng.choice([f"n * {a} + {b}", f"n + {a} - {b}", f"(n - {b}) * {a}"])
    return _ask(f"def f(n):\n    return {body}\nprint(f({x}))")


@primitive("trace_list", length=4, max_value=9)
def lists(rng: Random, k: dict) -> tuple[str, str]:
    xs = [rng.randint(0, k["max_value"]) for _ in range(k["length"])]
    v, i = rng.randint(0, k["max_value"]), rng.randrange(-k["length"], k["length"] + 1)
    return _ask(f"xs = {xs}\nxs.append({v})\nprint(xs[{i}])")


@primitive("trace_string", rank=2000)
def strings(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"])
    expr = rng.choice([f"s[{rng.randint(0, 2)}]", "s[::-1]", "len(s)", f"s[:{rng.randint(1, 3)}]",
                       f"s[-{rng.randint(1, 3)}:]", "s + s[0]"])
    return _ask(f"s = \"{w}\"\nprint({expr})")
