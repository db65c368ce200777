"""Sequences: continue a number pattern by one term."""

from __future__ import annotations

from random import Random

from ..registration import primitive


def _ask(terms: list[int], shown: int) -> tuple[str, str]:
    return (f"What number comes next: {', '.join(map(str, terms[:shown]))}, ?",
            str(terms[shown]))


@primitive("seq_arithmetic", shown=4, max_start=20, max_step=9)
def arithmetic(rng: Random, k: dict) -> tuple[str, str]:
    a = rng.randint(0, k["max_start"])
    d = rng.choice([x for x in range(-k["max_step"], k["max_step"] + 1) if x])
    return _ask([a + d * i for i in range(k["shown"] + 1)], k["shown"])


@primitive("seq_geometric", shown=4, max_start=9, max_ratio=4)
def geometric(rng: Random, k: dict) -> tuple[str, str]:
    a = rng.randint(1, k["max_start"])
    r = rng.choice([x for x in range(-k["max_ratio"], k["max_ratio"] + 1) if abs(x) > 1])
    return _ask([a * r ** i for i in range(k["shown"] + 1)], k["shown"])


@primitive("seq_fibonacci", shown=5, max_start=9)
def fibonacci(rng: Random, k: dict) -> tuple[str, str]:
    t = [rng.randint(0, k["max_start"]), rng.randint(1, k["max_start"])]
    while len(t) <= k["shown"]:
        t.append(t[-1] + t[-2])
    return _ask(t, k["shown"])


@primitive("seq_squares", shown=4, max_offset=10)
def squares(rng: Random, k: dict) -> tuple[str, str]:
    s, c = rng.randint(1, 6), rng.randint(-k["max_offset"], k["max_offset"])
    return _ask([(s + i) ** 2 + c for i in range(k["shown"] + 1)], k["shown"])


@primitive("seq_alternating", shown=6, max_start=20, max_step=5)
def alternating(rng: Random, k: dict) -> tuple[str, str]:
    a, b = rng.randint(0, k["max_start"]), rng.randint(0, k["max_start"])
    da, db = rng.randint(1, k["max_step"]), rng.randint(1, k["max_step"])
    t = [(a + da * (i // 2)) if i % 2 == 0 else (b + db * (i // 2)) for i in range(k["shown"] + 1)]
    return _ask(t, k["shown"])
