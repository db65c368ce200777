"""SY "Word Weaving": syllacrostic puzzles, recovering words from clues and a syllable bank.

The signal degrades with the level's parameters: rarer words (`rank`), longer words
(`syllables`), more answers sharing one bank (`words`), fewer letters shown in each
answer's pattern (`reveal`), distractor syllables in the bank (`distractors`) and
shorter, partly hidden clues (`clue_words`, `clue_mask`). Answers, syllables and
patterns are all in capitals (clues stay lower case) and the bank is listed
alphabetically (the order tells nothing). Capitals throughout make joining and splitting
a copy of letters rather than a case mapping per syllable: dio-mini's tokenizer keeps one
token per capital letter, and SY L1 fell from ~1,650 steps to the figure in
docs/skills.md ("SY's pace").
Every puzzle is checked to have one answer: distractors never re-spell an answer, and a
pattern-only puzzle reveals letters until one assembly of bank syllables fits.
"""

from __future__ import annotations

from random import Random

from pydantic import Field

from ..loader import LevelBase, PrimitiveDef, SkillError
from ..problem import Problem
from ..registration import register_generator
from ..wordbank import Word, word_bank

MASK = "\u2026"  # …
SEP = " \u00b7 "  # the bank separator " · "


class Level(LevelBase):
    words: int = Field(1, ge=1, le=12)  # answers per puzzle (bank, leftover, acrostic)
    syllables: tuple[int, int] = (2, 2)  # syllables per answer, min and max
    rank: tuple[int, int] = (0, 3000)  # wordfreq rank band of answers (0 = most common)
    reveal: float = Field(0.5, ge=0, le=1)  # share of each answer's letters shown
    distractors: int = Field(0, ge=0, le=24)  # bank syllables that belong to no answer
    clue_words: int = Field(24, ge=2, le=40)  # clues are cut to this many words
    clue_mask: float = Field(0.0, ge=0, lt=1)  # share of clue words hidden as '…'


def check_level(level: Level, ops: list[str]) -> str | None:
    lo, hi = level.syllables
    if not 2 <= lo <= hi <= 5:
        return f"syllables must be 2 <= min <= max <= 5, got {list(level.syllables)}"
    if not 0 <= level.rank[0] < level.rank[1]:
        return f"rank must be [lo, hi) with 0 <= lo < hi, got {list(level.rank)}"
    if "acrostic" in ops and level.words < 3:
        return "acrostic needs words >= 3 (the hidden word's length)"
    if "leftover" in ops and level.distractors < 1:
        return "leftover needs distractors >= 1"
    return None


# -- pieces ----------------------------------------------------------------------------

def _pick_words(rng: Random, level: Level, k: int, initials: str = "") -> list[Word]:
    bank = word_bank()
    chosen: list[Word] = []
    for i in range(k):
        for _ in range(64):
            band = bank.band(rng.randint(*level.syllables), *level.rank,
                             initial=initials[i] if initials else "")
            if band:
                w = band[rng.randrange(len(band))]
                if w not in chosen:
                    chosen.append(w)
                    break
        else:
            raise SkillError(f"SY level: no words with syllables {list(level.syllables)}, rank "
                             f"{list(level.rank)}{' and initial ' + initials[i] if initials else ''}")
    return chosen


def _distractors(rng: Random, level: Level, used: set[str], n: int, avoid: list[str]) -> list[str]:
    """Syllables from other words of the band; none adds a way to spell an answer."""
    out: list[str] = []
    ways: dict[str, int] = {}
    for _ in range(max(64, n * 32)):
        if len(out) == n:
            break
        w = _pick_words(rng, level, 1)[0]
        s = w.syllables[rng.randrange(len(w.syllables))]
        if s in used or s in out:
            continue
        # Only a syllable inside an answer can add a way to spell it.
        risky = [a for a in avoid if s in a]
        for a in risky:
            if a not in ways:
                ways[a] = _segmentations(a, [*used])
        if any(_segmentations(a, [*used, *out, s]) > ways[a] for a in risky):
            continue
        out.append(s)
    return out


def _segmentations(word: str, pieces: list[str]) -> int:
    """How many ways the bank's pieces (each used at most as often as listed) spell word."""
    counts: dict[str, int] = {}
    for p in pieces:
        counts[p] = counts.get(p, 0) + 1

    def walk(i: int) -> int:
        if i == len(word):
            return 1
        total = 0
        for p, c in counts.items():
            if c and word.startswith(p, i):
                counts[p] -= 1
                total += walk(i + len(p))
                counts[p] += 1
        return total
    return walk(0)


def _pattern(rng: Random, word: str, reveal: float) -> str:
    shown = set(rng.sample(range(len(word)), round(reveal * len(word))))
    return "".join(c.upper() if i in shown else "_" for i, c in enumerate(word))


def _clue(rng: Random, w: Word, level: Level) -> str:
    words = w.clue.split()
    cut = len(words) > level.clue_words
    words = words[: level.clue_words]
    if level.clue_mask:
        words = [x if i == 0 or rng.random() >= level.clue_mask else MASK
                 for i, x in enumerate(words)]
    return " ".join(words) + (f" {MASK}" if cut else "")


def _clue_line(rng: Random, i: int, w: Word, level: Level) -> str:
    n = len(w.text)
    pat = f", {_pattern(rng, w.text, level.reveal)}" if level.reveal > 0 else ""
    return f"{i}. ({n} letters{pat}) {_clue(rng, w, level)}"


def _bank_line(syllables: list[str]) -> str:
    return "Bank: " + SEP.join(sorted(s.upper() for s in syllables))


def _assembly(w: Word) -> str:
    return "+".join(w.syllables).upper()


# -- operations ------------------------------------------------------------------------
# Each returns (instruction and puzzle text, final answer, work lines by mode, metadata).

Made = tuple[str, str, dict[str, list[str]], dict]


def op_join(rng: Random, level: Level) -> Made:
    (w,) = _pick_words(rng, level, 1)
    text = f"Join the syllables in order into one word: {' + '.join(w.syllables).upper()}"
    work = [f"{_assembly(w)} = {w.text.upper()}"]
    return text, w.text.upper(), {"brief": work, "full": work}, {"words": [w.text]}


def _one_word(rng: Random, level: Level) -> tuple[Word, list[str]]:
    """One answer and a bank of its syllables plus the level's distractors."""
    (w,) = _pick_words(rng, level, 1)
    return w, [*w.syllables, *_distractors(rng, level, set(w.syllables), level.distractors, [w.text])]


def op_split(rng: Random, level: Level) -> Made:
    w, bank = _one_word(rng, level)
    text = (f"Split {w.text.upper()} into syllables from the bank, in order, joined by '-'.\n"
            f"{_bank_line(bank)}")
    work = [f"{w.text.upper()} = {_assembly(w)}"]
    return text, "-".join(w.syllables).upper(), {"brief": work, "full": work}, {"words": [w.text]}


def op_clue(rng: Random, level: Level) -> Made:
    w, bank = _one_word(rng, level)
    text = (f"Rebuild the word from the clue with syllables from the bank; answer in capitals.\n"
            f"{_bank_line(bank)}\n{_clue_line(rng, 1, w, level)}")
    work = [f"1. {_assembly(w)} = {w.text.upper()}"]
    return text, w.text.upper(), {"brief": work, "full": work}, {"words": [w.text]}


def _spellings(pieces: list[str], pattern: str, limit: int = 2) -> set[str]:
    """Words that distinct bank pieces spell into the pattern ('_' = any letter); stops
    once `limit` different ones are found."""
    out: set[str] = set()
    target = pattern.lower()

    def fits(piece: str, at: int) -> bool:
        return all(t == "_" or t == c for t, c in zip(target[at:at + len(piece)], piece, strict=True))

    def walk(prefix: str, left: list[str]) -> None:
        if len(prefix) == len(target):
            out.add(prefix)
            return
        for i, p in enumerate(left):
            if len(out) >= limit:
                return
            if (len(prefix) + len(p) <= len(target) and p not in left[:i]
                    and fits(p, len(prefix))):
                walk(prefix + p, left[:i] + left[i + 1:])
    walk("", pieces)
    return out


def op_pattern(rng: Random, level: Level) -> Made:
    words = _pick_words(rng, level, max(2, level.words))
    w = words[0]
    used = {s for x in words for s in x.syllables}
    bank = [s for x in words for s in x.syllables]
    bank += _distractors(rng, level, used, level.distractors, [x.text for x in words])
    order = rng.sample(range(len(w.text)), len(w.text))
    shown = max(1, round(level.reveal * len(w.text)))
    while True:  # reveal more letters until only the answer fits
        keep = set(order[:shown])
        pat = "".join(c.upper() if j in keep else "_" for j, c in enumerate(w.text))
        if shown >= len(w.text) or len(_spellings(bank, pat)) == 1:
            break
        shown += 1
    text = (f"Fill the pattern with syllables from the bank; answer in capitals.\n"
            f"{_bank_line(bank)}\nPattern: {pat}")
    work = [f"{pat} = {_assembly(w)} = {w.text.upper()}"]
    return text, w.text.upper(), {"brief": work, "full": work}, {"words": [w.text], "pattern": pat}


def _multi(rng: Random, level: Level, words: list[Word], distractors: int, ask: str) -> tuple[str, list[str]]:
    used = {s for w in words for s in w.syllables}
    bank = [s for w in words for s in w.syllables]
    extra = _distractors(rng, level, used, distractors, [w.text for w in words])
    lines = [_clue_line(rng, i + 1, w, level) for i, w in enumerate(words)]
    return "\n".join([ask, _bank_line(bank + extra), *lines]), extra


def _solved(words: list[Word]) -> tuple[list[str], list[str]]:
    brief = [f"{i + 1}. {w.text.upper()}" for i, w in enumerate(words)]
    full = [f"{i + 1}. {_assembly(w)} = {w.text.upper()}" for i, w in enumerate(words)]
    return brief, full


def op_bank(rng: Random, level: Level) -> Made:
    words = _pick_words(rng, level, level.words)
    ask = (f"Rebuild the {len(words)} word(s) from their clues; each bank syllable is used at "
           f"most once. Answer with the words in capitals, in clue order, separated by ', '.")
    text, _ = _multi(rng, level, words, level.distractors, ask)
    brief, full = _solved(words)
    answer = ", ".join(w.text.upper() for w in words)
    return text, answer, {"brief": brief, "full": full}, {"words": [w.text for w in words]}


def op_leftover(rng: Random, level: Level) -> Made:
    for _ in range(16):  # rarely, no syllable of the band is a safe distractor: new words
        words = _pick_words(rng, level, level.words)
        ask = (f"Rebuild the {len(words)} word(s) from their clues; some bank syllables belong to "
               f"no word. Answer with those left-over syllables, alphabetically, separated by ', '.")
        text, extra = _multi(rng, level, words, level.distractors, ask)
        if extra:
            break
    else:
        raise SkillError(f"SY level: no distractor syllables found for rank {list(level.rank)}")
    brief, full = _solved(words)
    answer = ", ".join(sorted(x.upper() for x in extra))
    return text, answer, {"brief": brief, "full": full}, {"words": [w.text for w in words]}


def op_acrostic(rng: Random, level: Level) -> Made:
    candidates = word_bank().hidden_upto(level.words)
    for _ in range(64):
        hidden = candidates[rng.randrange(len(candidates))]
        try:
            words = _pick_words(rng, level, len(hidden), initials=hidden)
            break
        except SkillError:  # a letter with no word in the band: pick another hidden word
            continue
    else:
        raise SkillError(f"SY level: no acrostic fits syllables {list(level.syllables)}, "
                         f"rank {list(level.rank)}, words {level.words}")
    ask = (f"Rebuild the {len(words)} words from their clues with the bank syllables; their "
           f"first letters spell a hidden word. Answer with the hidden word in capitals.")
    text, _ = _multi(rng, level, words, level.distractors, ask)
    brief, full = _solved(words)
    initials = f"Initials: {'-'.join(w.text[0].upper() for w in words)}"
    return text, hidden.upper(), {"brief": [*brief, initials], "full": [*full, initials]}, {
        "words": [w.text for w in words], "hidden": hidden}


OPS = {"join": op_join, "split": op_split, "clue": op_clue, "pattern": op_pattern,
       "bank": op_bank, "leftover": op_leftover, "acrostic": op_acrostic}

WORK_PROMPT = {
    "none": "",
    "brief": "\nList your words first, then the answer on a last line 'Answer: ...'.",
    "full": "\nShow how each word is built, then the answer on a last line 'Answer: ...'.",
}


@register_generator("sy")
def make(level: Level, number: int, prim: PrimitiveDef, rng: Random, skill: str = "sy") -> Problem:
    text, final, work, meta = OPS[prim.op](rng, level)
    question = f"Word Weaving, level {number}. {text}{WORK_PROMPT[level.work]}"
    answer = final if level.work == "none" else "\n".join([*work[level.work], f"Answer: {final}"])
    return Problem(skill=skill, level=number, primitive_id=prim.id, question=question,
                   answer=answer, final=final, metadata={"op": prim.op, "work": level.work, **meta})

