"""Self-registration (reasoning-gym's pattern): a generator module registers what it
makes when it is imported, and the registry imports every module of skills/passives/
and skills/generators/, so adding one is a file, not an edit to a list.

- `@register_generator(name)` on `make`: a skill generator (a module of
  skills/generators/ with `Level`, `OPS`, `check_level` and `make`), named by the
  `generator:` key of a skill YAML; a name registered twice is refused.
- `@primitive(id, **defaults)`: a passive primitive's generator, `fn(rng, knobs) ->
  (question, final answer)`; `defaults` are its difficulty knobs, which
  skills/defs/_passives.yaml may override per primitive (`knobs:`).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from random import Random
from types import ModuleType

SKILL_GENERATORS: dict[str, ModuleType] = {}
_GENERATOR_PLACES: dict[str, str] = {}  # generator name -> "module:function" that registered it
PRIMITIVES: dict[str, PrimitiveGen] = {}
_PACKAGES = ("passives", "generators")  # folders under skills/ whose modules self-register


@dataclass(frozen=True)
class PrimitiveGen:
    id: str
    fn: Callable[[Random, dict], tuple[str, str]]
    defaults: dict  # knob -> default value (its type is the knob's type)
    module: str


def register_generator(name: str):
    """Decorate a skill generator module's `make`: `@register_generator("bin")`. The
    registry keeps the whole module (its `Level`, `OPS`, `check_level` and `make`). A name
    registered from a second place is refused, naming both, so two skills can never
    silently share (or steal) one generator name."""
    def deco(make):
        place = f"{make.__module__}:{make.__qualname__}"
        first = _GENERATOR_PLACES.setdefault(name, place)
        if first != place:
            raise ValueError(f"skill generator {name!r} is registered twice ({first} and {place})")
        SKILL_GENERATORS[name] = sys.modules[make.__module__]
        return make
    return deco


def primitive(primitive_id: str, **defaults):
    def deco(fn):
        if primitive_id in PRIMITIVES and PRIMITIVES[primitive_id].fn is not fn:
            raise ValueError(f"primitive {primitive_id!r} is registered twice "
                             f"({PRIMITIVES[primitive_id].module} and {fn.__module__})")
        PRIMITIVES[primitive_id] = PrimitiveGen(primitive_id, fn, defaults, fn.__module__)
        return fn
    return deco


def discover() -> None:
    """Import every module of the self-registering folders (idempotent)."""
    here = Path(__file__).parent
    for pkg in _PACKAGES:
        if not (here / pkg).is_dir():
            continue
        for m in pkgutil.iter_modules([str(here / pkg)]):
            if not m.name.startswith("_"):
                importlib.import_module(f"{__package__}.{pkg}.{m.name}")
