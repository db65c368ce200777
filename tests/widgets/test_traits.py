"""Typed widget state (issue 30): each widget declares its state fields (widgets/traits.py),
both hosts build typed traits from them, every field a widget's JS reads is declared,
and no page sends a field none of its widgets declares."""

from __future__ import annotations

import re

import pytest

from realm_kernel.api import Realm
from realm_widgets.feed import WIDGETS
from realm_widgets.pages import PAGES, bind
from realm_widgets.traits import CONTROLS, FIELDS


def js_reads(js: str) -> set[str]:
    """The state fields a widget's own JS reads: `state_(model).x`, `s.x` where
    `const s = state_(model);`, and `model.get("x")`."""
    reads = set(re.findall(r"state_\(model\)\.(\w+)", js))
    for var in re.findall(r"(?:const|let|var)\s+(\w+)\s*=\s*state_\(model\)\s*;", js):
        reads |= set(re.findall(rf"(?<![\w.]){var}\.(\w+)", js))
    reads |= set(re.findall(r"model\.get\(\s*[\"'`](\w+)[\"'`]\s*\)", js))
    return reads


def test_js_reads_finds_every_form():
    js = 'const s = state_(model);\nx = s.battle + state_(model).hero + model.get("notice") + q.s.nope;'
    assert js_reads(js) == {"battle", "hero", "notice"}


@pytest.mark.parametrize("name", sorted(WIDGETS))
def test_every_field_the_js_reads_is_declared(name):
    own = WIDGETS[name].js_file.read_text(encoding="utf-8")
    reads = js_reads(own)
    assert reads, f"{name}.js reads no state?"
    undeclared = reads - set(FIELDS[name]) - set(CONTROLS)
    assert not undeclared, f"{name}.js reads undeclared {undeclared}"
    assert f"const STATE_FIELDS = {list(FIELDS[name])!r}".replace("'", '"') in WIDGETS[name].esm
    assert 'model.get("state")' not in WIDGETS[name].esm  # no untyped dict left


@pytest.fixture
def realm(tmp_path) -> Realm:
    return Realm(tmp_path / "realm")


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_sends_exactly_the_fields_its_widgets_declare(realm, name):
    from realm_widgets.jupyter import widget_class
    from realm_widgets.panel_components import component
    spec = PAGES[name]
    session = spec.session(realm)
    state = session.snapshot()
    declared = set().union(*(FIELDS[w] for w in spec.widgets))
    assert set(state) - declared == set(), f"{name} sends undeclared fields"
    assert declared - set(state) == set(), f"{name} leaves declared fields unsent"
    # The hosts' typed traits take the page's real state (a wrong type raises).
    for make in (widget_class, component):
        ws = [make(w)() for w in spec.widgets]
        view, _ = bind(session, ws)
        view.refresh()
        for w in ws:
            for f in FIELDS[w.widget_name]:
                assert getattr(w, f) == state[f], (name, w.widget_name, f)


def test_a_wrong_type_is_refused_by_the_trait():
    import traitlets

    from realm_widgets.jupyter import widget_class
    w = widget_class("hero_card")()
    with pytest.raises(traitlets.TraitError):
        w.hero = ["not", "a", "dict"]
