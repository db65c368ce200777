"""The skill registry: the YAML definitions, their generators, `generate` and `score`
(re-exported by the package; see its docstring)."""

from __future__ import annotations

from bisect import bisect
from functools import cache
from pathlib import Path
from random import Random
from types import ModuleType

from .loader import DEFS, LevelBase, PrimitiveDef, SkillDef, SkillError, parse_skill
from .problem import Problem, final_answer
from .registration import SKILL_GENERATORS, discover

discover()  # skills/generators/*.py and skills/passives/*.py register themselves
# skill YAML `generator:` name -> module (Level, OPS, check_level, make)
GENERATORS: dict[str, ModuleType] = SKILL_GENERATORS
MAX_DRAWS = 32  # draws per item before a level counts as out of fresh problems


def load_skill_file(path: str | Path) -> SkillDef:
    return parse_skill(Path(path), GENERATORS)


def skill_ids() -> list[str]:
    """Every skill YAML in skills/defs/ (files starting with '_' are not skills)."""
    return sorted(p.stem for p in DEFS.glob("*.yaml") if not p.name.startswith("_"))


@cache
def skill_def(skill_id: str) -> SkillDef:
    path = DEFS / f"{skill_id}.yaml"
    if skill_id.startswith("_") or not path.is_file():
        raise SkillError(f"unknown skill {skill_id!r}; known: {skill_ids()}")
    skill = load_skill_file(path)
    if skill.id != skill_id:
        raise SkillError(f"{path}: id: {skill.id!r} must match the file name {skill_id!r}")
    return skill


def level_def(skill_id: str, level: int) -> LevelBase:
    d = skill_def(skill_id)
    if level not in d.levels:
        raise SkillError(f"skill {skill_id!r} has no level {level}; levels: 1-{d.max_level}")
    return d.levels[level]


def _mix(skill: SkillDef, level: LevelBase, weights: dict[str, float] | None
         ) -> tuple[list[PrimitiveDef], list[float]]:
    w = level.primitives if weights is None else weights
    unknown = set(w) - set(level.primitives)
    if unknown:
        raise SkillError(f"primitive(s) {sorted(unknown)} are not part of this level; "
                         f"it has {sorted(level.primitives)}")
    prims = [skill.primitive(pid) for pid, x in w.items() if x > 0]
    if not prims:
        raise SkillError("no primitive has a weight > 0")
    cum, total = [], 0.0
    for x in w.values():
        if x > 0:
            total += x
            cum.append(total)
    return prims, cum


def generate(skill_id: str | SkillDef, level: int, count: int, seed: int = 0,
             weights: dict[str, float] | None = None) -> list[Problem]:
    """`count` problems of a level. `weights` (primitive id -> weight) replaces the
    level's own mix, e.g. to aim practice at weak primitives. A loaded `SkillDef` may
    stand for the id (a skill file outside skills/defs/)."""
    if count < 0:
        raise SkillError(f"count must be >= 0, got {count}")
    skill = skill_id if isinstance(skill_id, SkillDef) else skill_def(skill_id)
    lv = skill.levels.get(level)
    if lv is None:
        raise SkillError(f"skill {skill.id!r} has no level {level}; levels: 1-{skill.max_level}")
    prims, cum = _mix(skill, lv, weights)
    make = GENERATORS[skill.generator].make
    rng = Random(seed)
    seen: set[str] = set()
    out: list[Problem] = []
    fresh = True  # False once the level ran out of distinct problems
    for _ in range(count):
        for _ in range(MAX_DRAWS):
            prim = prims[0] if len(prims) == 1 else prims[bisect(cum, rng.random() * cum[-1])]
            p = make(lv, level, prim, rng, skill.id)
            if p.question not in seen or not fresh:
                break
        else:
            fresh = False
        seen.add(p.question)
        out.append(p)
    return out


def score(problem: Problem, answer: str) -> bool:
    return final_answer(answer) == problem.final
