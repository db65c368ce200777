"""anywidget classes for JupyterLab: the same composed ESM and CSS as the Panel components."""

from __future__ import annotations

import anywidget
import ipywidgets
import traitlets

from .feed import WIDGETS
from .traits import FIELDS

_classes: dict[str, type[anywidget.AnyWidget]] = {}


def widget_class(name: str) -> type[anywidget.AnyWidget]:
    """The anywidget class of any widget in WIDGETS: a typed trait per state field
    (widgets/traits.py), `action` and `in_view`."""
    if name not in _classes:
        w = WIDGETS[name]
        kinds = {"dict": traitlets.Dict, "list": traitlets.List, "int": traitlets.Int}
        traits = {f: kinds[k](default_value=None, allow_none=True).tag(sync=True)
                  for f, k in FIELDS[name].items()}
        _classes[name] = type(f"{name.title().replace('_', '')}Widget", (anywidget.AnyWidget,), {
            "widget_name": name, "_esm": w.esm, "_css": w.css, **traits,
            "action": traitlets.Dict().tag(sync=True),
            "in_view": traitlets.Bool(False).tag(sync=True)})
    return _classes[name]


class PageView:
    """A page in a notebook cell: its widgets and, where it has them, its HoloViews plots."""

    def __init__(self, box: ipywidgets.VBox, plots=None) -> None:
        self.box, self.plots = box, plots

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.box)
        if self.plots is not None:
            display(self.plots)


def page(name: str, home: str | None = None, plots: bool = True):
    """One Tavern page inline, kept fresh by the kernel's one poller (widgets/poller.py)
    while it is seen. Every page of the kernel shares one Realm per realm home (one ledger
    connection, one Oracle pool)."""
    from .pages import PAGES, bind, shared_realm
    from .poller import POLLER
    spec = PAGES[name]
    session = spec.session(shared_realm(home))
    ws = [widget_class(w)() for w in spec.widgets]
    view, on_action = bind(session, ws, spec.poll_seconds)
    for w in ws:
        w.observe(lambda change: on_action(change["new"]), names="action")
        # the page is seen while any of its widgets is (prelude.js watchView)
        w.observe(lambda change: view.set_shown(any(x.in_view for x in ws)), names="in_view")
    view.refresh()
    POLLER.add(view)
    POLLER.start_task()
    box = ipywidgets.VBox(ws)
    box.layout.width = "100%"
    box.view = view
    box.session = session
    shown = None
    if plots and spec.plots:
        from .plots import plots_for
        shown = plots_for(spec.plots, session.realm, view, notebook=True)
    return PageView(box, shown) if shown is not None else box
