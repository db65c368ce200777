"""The Oracle page of the Panel app, served at /oracle beside /tavern:

    panel serve widgets/tavern.py widgets/oracle.py --address 127.0.0.1

The model pool is this server process's own, shared by every browser session."""

from __future__ import annotations

import panel as pn

from realm_kernel.api import Realm
from widgets.oracle_session import OracleSession
from widgets.panel_components import component

POLL_MS = 250  # streamed tokens reach the page at this pace


def build() -> pn.viewable.Viewable:
    # One Realm (hence one pool) per server process; one session (panes, probe) per page.
    realm = pn.state.as_cached("realm-oracle", lambda: Realm(writer="widgets"))
    session = OracleSession(realm)
    widget = component("oracle")(sizing_mode="stretch_width", state=session.snapshot())
    widget.param.watch(lambda event: session.act(event.new), "action")

    def refresh() -> None:
        state = session.snapshot()
        if state != widget.state:
            widget.state = state

    pn.state.add_periodic_callback(refresh, period=POLL_MS)
    return pn.Column(pn.pane.Markdown("# 🔮 The Oracle"), widget, sizing_mode="stretch_width",
                     max_width=980)


if __name__.startswith("bokeh"):
    pn.extension()
    build().servable(title="Realm of Training — Oracle")
