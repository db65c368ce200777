"""Panel AnyWidgetComponents for `panel serve`: the same composed ESM and CSS as the anywidgets."""

from __future__ import annotations

import param
from panel.custom import AnyWidgetComponent

from .feed import WIDGETS
from .traits import FIELDS

_components: dict[str, type[AnyWidgetComponent]] = {}


def component(name: str) -> type[AnyWidgetComponent]:
    """The Panel component of any widget in WIDGETS: a typed parameter per state field
    (widgets/traits.py), `action` and `in_view`."""
    if name not in _components:
        w = WIDGETS[name]
        kinds = {"dict": param.Dict, "list": param.List, "int": param.Integer}
        params = {f: kinds[k](default=None, allow_None=True) for f, k in FIELDS[name].items()}
        _components[name] = type(f"{name.title().replace('_', '')}Panel", (AnyWidgetComponent,), {
            "widget_name": name, "_esm": w.esm, "_stylesheets": [w.css], **params,
            "action": param.Dict(default={}),
            "in_view": param.Boolean(default=False)})
    return _components[name]
