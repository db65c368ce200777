"""The synced fields both hosts build from widgets/traits.py, read back from the classes:
the anywidget's traitlets (widgets/jupyter.py) and the Panel component's parameters
(widgets/panel_components.py), each field of its declared kind, `action` and `in_view`
synced and off by default; and the notebook page carrying out an action its widget sets."""

from __future__ import annotations

import param
import traitlets

from realm_widgets import jupyter, panel_components
from realm_widgets.jupyter import widget_class
from realm_widgets.panel_components import component
from realm_widgets.traits import FIELDS

TRAITS = {"dict": traitlets.Dict, "list": traitlets.List, "int": traitlets.Int}
PARAMS = {"dict": param.Dict, "list": param.List, "int": param.Integer}


def test_each_anywidget_field_is_a_synced_trait_of_its_kind(monkeypatch):
    monkeypatch.setattr(jupyter, "_classes", {})  # built here, not taken from the process's cache
    for name, fields in FIELDS.items():
        cls = widget_class(name)
        traits = cls.class_traits()
        for f, kind in fields.items():
            assert type(traits[f]) is TRAITS[kind] and traits[f].metadata.get("sync") is True, (name, f)
        assert type(traits["action"]) is traitlets.Dict and traits["action"].metadata.get("sync") is True
        assert type(traits["in_view"]) is traitlets.Bool and traits["in_view"].metadata.get("sync") is True
        assert cls().in_view is False and cls.widget_name == name


def test_each_panel_field_is_a_parameter_of_its_kind(monkeypatch):
    monkeypatch.setattr(panel_components, "_components", {})  # built here, not the process's cache
    for name, fields in FIELDS.items():
        cls = component(name)
        for f, kind in fields.items():
            assert type(cls.param[f]) is PARAMS[kind], (name, f)
        assert type(cls.param["action"]) is param.Dict and cls.param["action"].default == {}
        assert type(cls.param["in_view"]) is param.Boolean and cls.param["in_view"].default is False
        assert cls.widget_name == name


def test_the_notebook_page_carries_out_what_a_widget_sets(tmp_path):
    import realm_widgets
    from realm_widgets.pages import TavernSession
    shown = realm_widgets.show_tavern(tmp_path / "realm")  # the Tavern with its plots
    box = shown.box
    try:
        assert isinstance(box.session, TavernSession) and shown.plots is not None
        box.children[1].action = {"name": "nope", "nonce": 1}
        assert box.session.notice == {"ok": False, "action": "nope", "message": "unknown action 'nope'",
                                      "detail": None, "nonce": 1}
    finally:
        from realm_widgets.poller import POLLER
        for view in POLLER.views():
            view.close()
