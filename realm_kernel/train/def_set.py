"""DEF's fixed held-out set for a skill level (stored by store/heldout.py): made once from
the skill's generator with a fixed seed, distinct problems only, and never more than a
tenth of the distinct problems the level produced, so that a small level (BIN L1 has 81
problems) keeps nine tenths of them to train on."""

from __future__ import annotations

import json

import realm_skills as skills

from ..store.heldout import fixed_set
from ..store.paths import RealmPaths

DEF_SEED = 1_000_003  # far from the small seeds quests are generated with
DEF_SET_SIZE = 32
CANDIDATES = 20 * DEF_SET_SIZE


def make_fixed_set(skill: str, level: int) -> list[dict]:
    distinct: dict[str, dict] = {}
    for problem in skills.generate(skill, level, CANDIDATES, seed=DEF_SEED):
        ex = problem.as_example()
        distinct.setdefault(json.dumps(ex["messages"], sort_keys=True), ex)
    keep = max(1, min(DEF_SET_SIZE, len(distinct) // 10))
    return list(distinct.values())[:keep]


def fixed_heldout(paths: RealmPaths, skill: str | None, level: int | None) -> list[dict] | None:
    """The quest's skill level's fixed held-out set; None for a quest of no known skill."""
    if not skill or level is None:
        return None
    try:
        skills.skill_def(skill)  # a quest's meta may name anything: only a known skill has a set
        return fixed_set(paths, skill, int(level), lambda: make_fixed_set(skill, int(level)))
    except skills.SkillError:
        return None
