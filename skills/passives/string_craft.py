"""String craft: reverse, sort, delete letters, make acronyms."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import common_words


@primitive("str_reverse", rank=5000, max_len=8)
def reverse(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"], 4, k["max_len"])
    return f"Write \"{w}\" backwards.", w[::-1]


@primitive("str_sort", rank=5000, max_len=8)
def sort(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"], 4, k["max_len"])
    return f"Sort the letters of \"{w}\" alphabetically.", "".join(sorted(w))


@primitive("str_remove", rank=5000, max_len=10)
def remove(rng: Random, k: dict) -> tuple[str, str]:
    (w,) = common_words(rng, 1, k["rank"], 4, k["max_len"])
    c = rng.choice(w)
    return f"Remove every '{c}' from \"{w}\".", w.replace(c, "")


@primitive("str_acronym", words=3, rank=3000)
def acronym(rng: Random, k: dict) -> tuple[str, str]:
    ws = common_words(rng, k["words"], k["rank"])
    return (f"Write the first letters of \"{' '.join(ws)}\" as one word in capitals.",
            "".join(w[0] for w in ws).upper())
