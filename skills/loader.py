"""Skill definitions: YAML under skills/defs/ read into validated pydantic models.

A skill file names its generator (`bin`, `sy`); the generator supplies the model for a
level's parameters and the operations a primitive may use, so a typo in a key, a weight
for an undeclared primitive or a work mode an operation cannot show fails at load time
with the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFS = Path(__file__).parent / "defs"


class SkillError(ValueError):
    pass


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WorkMode = Literal["none", "brief", "full"]


class LevelBase(Strict):
    """Fields every level has; generators subclass this with their own parameters."""

    description: str = ""
    # primitive id -> relative weight of that primitive in the level's problems
    primitives: dict[str, float] = Field(min_length=1)
    # How much worked solution precedes the marked answer line in the training target.
    work: WorkMode = "none"

    @field_validator("primitives")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in v.items() if not w > 0]
        if bad:
            raise ValueError(f"weights must be > 0 (check {', '.join(bad)})")
        return v


class PrimitiveDef(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    op: str  # the generator operation that makes this primitive's problems
    description: str = ""


class LevelUp(Strict):
    accuracy: float = Field(0.8, gt=0, le=1)
    consecutive_evals: int = Field(3, ge=1)


class SkillDef(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    icon: str
    generator: str
    passive: str
    description: str = ""
    eval_size: int = Field(50, ge=1, le=100_000)
    level_up: LevelUp = LevelUp()
    primitives: list[PrimitiveDef] = Field(min_length=1)
    levels: dict[int, Any] = Field(min_length=1)
    path: str = ""

    def primitive(self, primitive_id: str) -> PrimitiveDef:
        for p in self.primitives:
            if p.id == primitive_id:
                return p
        raise SkillError(f"skill {self.id!r} has no primitive {primitive_id!r}")

    @property
    def max_level(self) -> int:
        return max(self.levels)


def _where(loc: tuple) -> str:
    return ".".join(str(x) for x in loc) or "(top level)"


def _fail(path: Path, key: str, problem: str) -> SkillError:
    return SkillError(f"{path}: {key}: {problem}")


def _validate(model: type[BaseModel], data: Any, path: Path, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(x for x in (prefix, _where(err["loc"])) if x)
        got = f" (got {err['input']!r})" if not isinstance(err.get("input"), dict | list) else ""
        more = f" [+{len(e.errors()) - 1} more]" if len(e.errors()) > 1 else ""
        raise _fail(path, key or "(top level)", f"{err['msg']}{got}{more}") from None


def parse_skill(path: Path, generators: dict[str, Any]) -> SkillDef:
    """Load and check one skill YAML. Every failure names the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise _fail(path, "(file)", f"not UTF-8 text (byte {e.start}): {e.reason}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise _fail(path, where, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "expected a mapping of keys (id, name, levels, ...)")
    skill = _validate(SkillDef, {**data, "path": str(path)}, path)
    gen = generators.get(skill.generator)
    if gen is None:
        raise _fail(path, "generator", f"unknown generator {skill.generator!r}; known: {sorted(generators)}")
    ids = [p.id for p in skill.primitives]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise _fail(path, "primitives", f"duplicate primitive id(s) {dup}")
    for i, p in enumerate(skill.primitives):
        if p.op not in gen.OPS:
            raise _fail(path, f"primitives.{i}.op", f"unknown op {p.op!r} for generator "
                        f"{skill.generator!r}; known: {sorted(gen.OPS)}")
    numbers = sorted(skill.levels)
    if numbers != list(range(1, len(numbers) + 1)):
        raise _fail(path, "levels", f"levels must be numbered 1..N without gaps, got {numbers}")
    levels = {}
    ops = {p.id: p.op for p in skill.primitives}
    for n in numbers:
        lv = _validate(gen.Level, skill.levels[n], path, f"levels.{n}")
        for pid in lv.primitives:
            if pid not in ops:
                raise _fail(path, f"levels.{n}.primitives.{pid}",
                            f"undeclared primitive; declared: {ids}")
        why = gen.check_level(lv, [ops[p] for p in lv.primitives])
        if why:
            raise _fail(path, f"levels.{n}", why)
        levels[n] = lv
    unused = [i for i in ids if not any(i in lv.primitives for lv in levels.values())]
    if unused:
        raise _fail(path, "primitives", f"declared but used by no level: {unused}")
    return skill.model_copy(update={"levels": levels})
