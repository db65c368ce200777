"""Combinatorics: counting arrangements and selections."""

from __future__ import annotations

from collections import Counter
from math import comb, factorial, perm
from random import Random

from ..registration import primitive
from ._common import common_words


@primitive("comb_permutations", max_n=8)
def permutations(rng: Random, k: dict) -> tuple[str, str]:
    n = rng.randint(2, k["max_n"])
    r = rng.randint(1, n)
    things = rng.choice(["books", "flags", "cups", "stones", "cards"])
    return (f"In how many ways can {r} of {n} different {things} be placed in a row "
            f"(order matters)?", str(perm(n, r)))


@primitive("comb_combinations", max_n=10)
def combinations(rng: Random, k: dict) -> tuple[str, str]:
    n = rng.randint(2, k["max_n"])
    r = rng.randint(1, n)
    return f"In how many ways can a team of {r} be chosen from {n} people?", str(comb(n, r))


@primitive("comb_factorial", max_n=8)
def factorials(rng: Random, k: dict) -> tuple[str, str]:
    n = rng.randint(1, k["max_n"])
    who = rng.choice(["runners", "horses", "swimmers", "cyclists", "snails", "robots", "knights", "cars"])
    return f"In how many different orders can {n} {who} finish a race (no ties)?", str(factorial(n))


@primitive("comb_product", choices=3, max_options=6)
def product(rng: Random, k: dict) -> tuple[str, str]:
    kinds = rng.sample(["shirts", "hats", "scarves", "shoes", "belts", "coats"], k["choices"])
    counts = [rng.randint(2, k["max_options"]) for _ in kinds]
    have = ", ".join(f"{c} {x}" for c, x in zip(counts, kinds, strict=True))
    total = 1
    for c in counts:
        total *= c
    return f"You have {have}. How many outfits take one of each?", str(total)


@primitive("comb_anagrams", rank=3000, max_len=7)
def anagrams(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"], 4, k["max_len"])
    n = factorial(len(w))
    for c in Counter(w).values():
        n //= factorial(c)
    return f"How many distinct arrangements of the letters of {w.upper()} are there?", str(n)
