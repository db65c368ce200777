"""SY's levels, as the loader reads skills/defs/sy.yaml, get harder step by step, as its
header says ("at higher levels the signal degrades"): never fewer answers, syllables or
distractors, never a more common rank band, fewer letters revealed at every level, clues
never longer or less masked. A number moved in the YAML (the blind-spot mutation step,
bench/mutation_blind.py) that breaks the ladder fails here, with the level named."""

from __future__ import annotations

import pytest

from realm_skills.registry import skill_def

LEVELS = skill_def("sy").levels
PAIRS = [(n, LEVELS[n], LEVELS[n + 1]) for n in sorted(LEVELS)[:-1]]

# field -> (how to read it, how level n+1 must compare with level n)
LADDER = {
    "words": (lambda lv: lv.words, "no fewer"),
    "fewest syllables": (lambda lv: lv.syllables[0], "no fewer"),
    "most syllables": (lambda lv: lv.syllables[1], "no fewer"),
    "rank band start": (lambda lv: lv.rank[0], "no fewer"),
    "rank band end": (lambda lv: lv.rank[1], "more"),
    "share revealed": (lambda lv: lv.reveal, "less"),
    "distractors": (lambda lv: lv.distractors, "no fewer"),
    "clue words": (lambda lv: lv.clue_words, "no more"),
    "clue words hidden": (lambda lv: lv.clue_mask, "no fewer"),
}
HOLDS = {"no fewer": lambda a, b: b >= a, "more": lambda a, b: b > a,
         "less": lambda a, b: b < a, "no more": lambda a, b: b <= a}


@pytest.mark.parametrize("field", LADDER)
def test_each_sy_level_is_no_easier_than_the_one_before(field):
    read, rule = LADDER[field]
    broken = [f"level {n + 1} {field} {read(b)} vs level {n} {read(a)}" for n, a, b in PAIRS
              if not HOLDS[rule](read(a), read(b))]
    assert not broken, f"{field} must be {rule} at each next level: {broken}"


def test_the_ladder_spans_every_level_and_the_bands_are_well_formed():
    assert sorted(LEVELS) == list(range(1, len(LEVELS) + 1)) and len(LEVELS) >= 30
    for n, lv in LEVELS.items():
        assert lv.syllables[0] <= lv.syllables[1] and lv.rank[0] < lv.rank[1], n
        assert 0 <= lv.reveal < 1 and 0 <= lv.clue_mask < 1, n
