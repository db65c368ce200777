"""Any catalogue primitive on its own: `generate_primitive(primitive_id, count, seed)`.

A passive's primitive comes from its registered generator with the knobs of
skills/defs/_passives.yaml (overridable per call); a skill's primitive (BIN, SY) comes
from the lowest level of that skill that uses it, with the level's mix narrowed to it.
Batches are deterministic per seed and free of repeated questions (as `generate`).
"""

from __future__ import annotations

from random import Random

from .catalog import catalog
from .loader import SkillError
from .problem import Problem
from .registration import PRIMITIVES
from .registry import MAX_DRAWS, generate, skill_def


def knobs_for(primitive_id: str, overrides: dict | None = None) -> dict:
    """The primitive's difficulty knobs: code defaults < _passives.yaml < overrides."""
    gen = PRIMITIVES[primitive_id]
    out = {**gen.defaults, **catalog().knobs.get(primitive_id, {})}
    for key, value in (overrides or {}).items():
        if key not in gen.defaults:
            raise SkillError(f"primitive {primitive_id!r} has no knob {key!r}; "
                             f"knobs: {sorted(gen.defaults)}")
        want = type(gen.defaults[key])
        if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
            raise SkillError(f"primitive {primitive_id!r}: knob {key!r} must be {want.__name__}, "
                             f"got {value!r}")
        out[key] = value
    return out


def generate_primitive(primitive_id: str, count: int, seed: int = 0, **knobs) -> list[Problem]:
    if count < 0:
        raise SkillError(f"count must be >= 0, got {count}")
    prim = catalog().primitive(primitive_id)
    if prim.skill is not None:
        d = skill_def(prim.skill)
        level = min(n for n, lv in d.levels.items() if primitive_id in lv.primitives)
        if knobs:
            raise SkillError(f"{primitive_id!r} is a {prim.skill} primitive: its knobs are the "
                             f"levels of {d.path}, not call arguments")
        return generate(d, level, count, seed, weights={primitive_id: 1.0})
    k = knobs_for(primitive_id, knobs)
    fn = PRIMITIVES[primitive_id].fn
    rng = Random(seed)
    seen: set[str] = set()
    out: list[Problem] = []
    fresh = True
    for _ in range(count):
        for _ in range(MAX_DRAWS):
            question, final = fn(rng, k)
            if question not in seen or not fresh:
                break
        else:
            fresh = False  # the knobs allow fewer distinct problems than asked for
        seen.add(question)
        out.append(Problem(skill=prim.passive, level=1, primitive_id=primitive_id,
                           question=question, answer=final, final=final,
                           metadata={"passive": prim.passive, "knobs": k}))
    return out


def generate_passive(passive_id: str, per_primitive: int, seed: int = 0) -> list[Problem]:
    """`per_primitive` problems of each primitive of a passive (the probe set's shape)."""
    prims = [p for p in catalog().primitives.values() if p.passive == passive_id]
    if not prims:
        raise SkillError(f"unknown passive {passive_id!r}; known: {[p.id for p in catalog().passives]}")
    return [x for i, p in enumerate(prims) for x in generate_primitive(p.id, per_primitive, seed + i)]
