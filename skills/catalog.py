"""The primitive catalogue: 11 passives in tracks, each primitive declared once.

skills/defs/_passives.yaml lists the passives; a passive tied to a skill takes its
primitives from that skill's YAML, so BIN's and SY's primitives live only there. Every
other primitive must have a registered generator (skills/passives/, `@primitive`), and
its `knobs:` in the YAML must be knobs that generator has, of the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml
from pydantic import Field

from .loader import DEFS, SkillError, Strict, _fail, _validate

PASSIVES_FILE = DEFS / "_passives.yaml"


class PassivePrimitive(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    knobs: dict[str, Any] = {}  # difficulty knobs over the generator's defaults


class PassiveDef(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    track: str
    skill: str | None = None
    primitives: list[PassivePrimitive] = []


class PassivesFile(Strict):
    tracks: dict[str, str] = Field(min_length=1)
    passives: list[PassiveDef] = Field(min_length=1)


@dataclass(frozen=True)
class CatalogPrimitive:
    id: str
    name: str
    passive: str
    track: str
    skill: str | None


@dataclass(frozen=True)
class Catalog:
    tracks: dict[str, str]
    passives: list[PassiveDef]
    primitives: dict[str, CatalogPrimitive]
    knobs: dict[str, dict]  # primitive id -> its YAML knobs (passives without a skill)

    def by_track(self) -> dict[str, list[CatalogPrimitive]]:
        out: dict[str, list[CatalogPrimitive]] = {t: [] for t in self.tracks}
        for p in self.primitives.values():
            out[p.track].append(p)
        return out

    def primitive(self, primitive_id: str) -> CatalogPrimitive:
        try:
            return self.primitives[primitive_id]
        except KeyError:
            raise SkillError(f"unknown primitive {primitive_id!r}") from None


@cache
def catalog() -> Catalog:
    from .registration import PRIMITIVES, discover
    from .registry import skill_def, skill_ids

    discover()

    path = PASSIVES_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise _fail(path, "(file)", f"invalid YAML: {e}") from None
    f = _validate(PassivesFile, data, path)
    prims: dict[str, CatalogPrimitive] = {}
    knobs: dict[str, dict] = {}
    for i, p in enumerate(f.passives):
        where = f"passives.{i}"
        if p.track not in f.tracks:
            raise _fail(path, f"{where}.track", f"unknown track {p.track!r}; tracks: {sorted(f.tracks)}")
        if p.skill is not None:
            if p.primitives:
                raise _fail(path, f"{where}.primitives", f"a passive of skill {p.skill!r} takes its "
                            "primitives from the skill's YAML; list none here")
            if p.skill not in skill_ids():
                raise _fail(path, f"{where}.skill", f"unknown skill {p.skill!r}")
            sd = skill_def(p.skill)
            if sd.passive != p.id:
                raise _fail(path, f"{where}.skill", f"{sd.path} says passive {sd.passive!r}, not {p.id!r}")
            entries = [(q.id, q.name) for q in sd.primitives]
        else:
            entries = [(q.id, q.name) for q in p.primitives]
            for j, q in enumerate(p.primitives):
                key = f"{where}.primitives.{j}"
                gen = PRIMITIVES.get(q.id)
                if gen is None:
                    raise _fail(path, key, f"no generator registered for primitive {q.id!r} "
                                "(add one with @primitive in skills/passives/)")
                for knob, value in q.knobs.items():
                    if knob not in gen.defaults:
                        raise _fail(path, f"{key}.knobs.{knob}",
                                    f"unknown knob; {q.id} has {sorted(gen.defaults)}")
                    want = type(gen.defaults[knob])
                    if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
                        raise _fail(path, f"{key}.knobs.{knob}", f"must be {want.__name__} (got {value!r})")
                knobs[q.id] = dict(q.knobs)
        for pid, name in entries:
            if pid in prims:
                raise _fail(path, where, f"primitive {pid!r} is declared twice")
            prims[pid] = CatalogPrimitive(pid, name, p.id, p.track, p.skill)
    ids = [p.id for p in f.passives]
    for sid in skill_ids():
        if skill_def(sid).passive not in ids:
            raise SkillError(f"{skill_def(sid).path}: passive: {skill_def(sid).passive!r} is not in {path}")
    orphans = sorted(set(PRIMITIVES) - set(prims))
    if orphans:
        raise _fail(path, "passives", f"generators registered for primitives no passive lists: {orphans}")
    return Catalog(f.tracks, f.passives, prims, knobs)
