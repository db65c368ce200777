"""Counting: letters, vowels, words and lengths."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import common_words

VOWELS = "aeiou"


@primitive("count_letters", rank=5000)
def letters(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"])
    c = rng.choice(w) if rng.random() < 0.8 else rng.choice("abcdefghijklmnopqrstuvwxyz")
    return f"How many times does the letter '{c}' appear in \"{w}\"?", str(w.count(c))


@primitive("count_words", min_words=3, max_words=9, rank=3000)
def words(rng: Random, k: dict) -> tuple[str, str]:
    n = rng.randint(k["min_words"], k["max_words"])
    return f"How many words are in: \"{' '.join(common_words(rng, n, k['rank']))}\"?", str(n)


@primitive("count_vowels", rank=5000)
def vowels(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"])
    return (f"How many vowels (a, e, i, o, u) are in \"{w}\"?",
            str(sum(c in VOWELS for c in w)))


@primitive("count_length", rank=5000)
def length(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"])
    return f"How many letters are in \"{w}\"?", str(len(w))
