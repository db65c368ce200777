"""Helpers the passive generators share: numbers of a digit count, common words."""

from __future__ import annotations

from functools import cache
from random import Random

from ..wordbank import word_bank


def number(rng: Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1)


def common_words(rng: Random, k: int, rank: int, min_len: int = 4, max_len: int = 12) -> list[str]:
    """k distinct words among the `rank` most common of the word bank (wordfreq, offline)."""
    return rng.sample(_pool(rank, min_len, max_len), k)


@cache
def _pool(rank: int, min_len: int, max_len: int) -> list[str]:
    return [w.text for w in word_bank().words[:rank] if min_len <= len(w.text) <= max_len]


def truth(value: bool) -> str:
    return "True" if value else "False"
