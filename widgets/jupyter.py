"""anywidget classes for JupyterLab: the same composed ESM and CSS as the Panel components."""

from __future__ import annotations

import asyncio

import anywidget
import ipywidgets
import traitlets

from .feed import WIDGETS

_classes: dict[str, type[anywidget.AnyWidget]] = {}


def widget_class(name: str) -> type[anywidget.AnyWidget]:
    """The anywidget class of any widget in WIDGETS (a synced `state` and `action`)."""
    if name not in _classes:
        w = WIDGETS[name]
        _classes[name] = type(f"{name.title().replace('_', '')}Widget", (anywidget.AnyWidget,), {
            "_esm": w.esm, "_css": w.css,
            "state": traitlets.Dict().tag(sync=True), "action": traitlets.Dict().tag(sync=True)})
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
    """One Tavern page inline, kept fresh by one poller on the kernel's loop. Every page
    of the kernel shares one Realm per realm home (one ledger connection, one Oracle pool)."""
    from .pages import PAGES, bind, shared_realm
    spec = PAGES[name]
    session = spec.session(shared_realm(home))
    ws = [widget_class(w)() for w in spec.widgets]
    refresh, on_action = bind(session, ws)
    for w in ws:
        w.observe(lambda change: on_action(change["new"]), names="action")

    async def poll() -> None:
        while True:
            try:
                refresh()
            except Exception as e:  # a poll failure must not kill the loop
                for w in ws:
                    w.state = {**w.state, "notice": {"ok": False, "message": str(e)}}
            await asyncio.sleep(spec.poll_seconds)

    refresh()
    box = ipywidgets.VBox(ws)
    box.layout.width = "100%"
    box._realm_poller = asyncio.get_event_loop().create_task(poll())
    box.session = session
    view = None
    if plots and spec.plots:
        from .plots import plots_for
        view = plots_for(spec.plots, session.realm, notebook=True)
    return PageView(box, view) if view is not None else box
