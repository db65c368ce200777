"""Self-registration of skill generators: every generator module in skills/generators/
registers one name, every skill YAML finds exactly one, and a name registered from a
second place is refused with both places named."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import realm_skills as skills
from realm_skills import generators, registration
from realm_skills.loader import DEFS


def _make_elsewhere(*_args):
    """A stand-in `make` in this test module: a second place for a taken name."""


def test_a_duplicate_generator_name_is_refused_naming_both_places():
    first = registration._GENERATOR_PLACES["bin"]
    assert first == "realm_skills.generators.binary:make"
    with pytest.raises(ValueError) as e:
        registration.register_generator("bin")(_make_elsewhere)
    msg = str(e.value)
    assert first in msg and f"{__name__}:_make_elsewhere" in msg, msg
    assert skills.GENERATORS["bin"].__name__ == "realm_skills.generators.binary", "the first one stays"


def test_registering_from_the_same_place_again_is_no_duplicate(monkeypatch):
    monkeypatch.setattr(registration, "SKILL_GENERATORS", {})
    monkeypatch.setattr(registration, "_GENERATOR_PLACES", {})
    for _ in range(2):  # a module imported twice (reload) registers the same place
        registration.register_generator("elsewhere")(_make_elsewhere)
    assert registration.SKILL_GENERATORS["elsewhere"].__name__ == __name__


def test_every_generator_module_registers_itself_once():
    modules = {f"{generators.__name__}.{m.name}" for m in pkgutil.iter_modules(generators.__path__)
               if not m.name.startswith("_")}
    registered = [m.__name__ for m in skills.GENERATORS.values()]
    assert sorted(registered) == sorted(modules), "one module per generator, each discovered"


def test_every_skill_def_has_exactly_one_generator():
    yamls = sorted(p.stem for p in Path(DEFS).glob("*.yaml") if not p.name.startswith("_"))
    assert yamls == skills.skill_ids()
    for skill_id in yamls:
        name = skills.skill_def(skill_id).generator
        # one place per name: the registry is keyed by name and refuses a second place
        assert name in registration._GENERATOR_PLACES, f"{skill_id}: generator {name!r} is not registered"
        assert skills.GENERATORS[name].__name__.startswith(f"{generators.__name__}.")
