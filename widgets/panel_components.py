"""Panel AnyWidgetComponents for `panel serve`: the same composed ESM and CSS as the anywidgets."""

from __future__ import annotations

import param
from panel.custom import AnyWidgetComponent

from .feed import WIDGETS

_components: dict[str, type[AnyWidgetComponent]] = {}


def component(name: str) -> type[AnyWidgetComponent]:
    """The Panel component of any widget in WIDGETS (a synced `state` and `action`)."""
    if name not in _components:
        w = WIDGETS[name]
        _components[name] = type(f"{name.title().replace('_', '')}Panel", (AnyWidgetComponent,), {
            "_esm": w.esm, "_stylesheets": [w.css],
            "state": param.Dict(default={}), "action": param.Dict(default={})})
    return _components[name]
