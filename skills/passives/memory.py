"""Memory: recall from a short list or table given in the prompt."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import common_words

ORD = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
       "tenth", "eleventh", "twelfth"]


@primitive("memory_pair", pairs=4, rank=2000)
def pair(rng: Random, k: dict) -> tuple[str, str]:
    keys = common_words(rng, k["pairs"], k["rank"])
    vals = rng.sample(range(10, 100), k["pairs"])
    table = ", ".join(f"{w}={v}" for w, v in zip(keys, vals, strict=True))
    i = rng.randrange(k["pairs"])
    return f"Remember: {table}. What number goes with {keys[i]}?", str(vals[i])


@primitive("memory_list", items=5, rank=2000)
def position(rng: Random, k: dict) -> tuple[str, str]:
    xs = common_words(rng, k["items"], k["rank"])
    i = rng.randrange(k["items"])
    return f"List: {', '.join(xs)}. Which word is {ORD[i]}?", xs[i]


@primitive("memory_missing", items=5, rank=2000)
def missing(rng: Random, k: dict) -> tuple[str, str]:
    xs = common_words(rng, k["items"], k["rank"])
    gone = rng.randrange(k["items"])
    rest = [x for i, x in enumerate(xs) if i != gone]
    rng.shuffle(rest)
    return (f"First list: {', '.join(xs)}. Second list: {', '.join(rest)}. "
            f"Which word of the first list is missing from the second?", xs[gone])


@primitive("memory_order", items=5, rank=2000)
def order(rng: Random, k: dict) -> tuple[str, str]:
    xs = common_words(rng, k["items"], k["rank"])
    i, j = sorted(rng.sample(range(k["items"]), 2))
    a, b = (xs[i], xs[j]) if rng.random() < 0.5 else (xs[j], xs[i])
    return f"List: {', '.join(xs)}. Which came earlier, {a} or {b}?", xs[i]


@primitive("memory_count", items=7, kinds=3, rank=1000)
def count(rng: Random, k: dict) -> tuple[str, str]:
    kinds = common_words(rng, k["kinds"], k["rank"])
    xs = [rng.choice(kinds) for _ in range(k["items"])]
    w = rng.choice(kinds)
    return f"List: {', '.join(xs)}. How many times does {w} appear?", str(xs.count(w))
