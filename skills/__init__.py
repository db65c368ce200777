"""Skills: procedural curricula defined by YAML under skills/defs/.

API: `generate(skill_id, level, count, seed) -> list[Problem]` (pure, seeded: item i
uses Random(seed * 1_000_003 + i)) and `score(problem, answer) -> bool`, which is
strict after normalisation: surrounding whitespace is dropped, inner whitespace must
match exactly, and only the last non-empty line of the answer counts (so a worked
solution may precede it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from random import Random

import yaml

from . import binary
from .problem import Problem

DEFS = Path(__file__).parent / "defs"
GENERATORS = {"bin": binary.generate_one}

__all__ = ["Problem", "SkillError", "generate", "score", "skill_def", "skill_ids"]


class SkillError(ValueError):
    pass


@cache
def skill_def(skill_id: str) -> dict:
    path = DEFS / f"{skill_id}.yaml"
    if skill_id not in GENERATORS or not path.exists():
        raise SkillError(f"unknown skill {skill_id!r}; known: {sorted(GENERATORS)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SkillError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("levels"), dict):
        raise SkillError(f"{path}: key 'levels' must be a mapping of level -> parameters")
    return data


def skill_ids() -> list[str]:
    return sorted(GENERATORS)


def generate(skill_id: str, level: int, count: int, seed: int = 0) -> list[Problem]:
    d = skill_def(skill_id)
    params = d["levels"].get(level)
    if params is None:
        raise SkillError(f"skill {skill_id!r} has no level {level}; "
                         f"levels: {min(d['levels'])}-{max(d['levels'])}")
    if count < 0:
        raise SkillError(f"count must be >= 0, got {count}")
    make = GENERATORS[skill_id]
    return [make(params, level, Random(seed * 1_000_003 + i)) for i in range(count)]


def final_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def score(problem: Problem, answer: str) -> bool:
    return final_line(answer) == final_line(problem.answer)
