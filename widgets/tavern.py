"""The Tavern page alone: `panel serve widgets/tavern.py --address 127.0.0.1`, at /tavern
(Panel listens on every address unless told: the page refuses that without a login).
The whole app with every page at its route is `python -m realm_widgets.app` (widgets/app.py).

The realm home is REALM_HOME (default: the checkout)."""

from __future__ import annotations

import panel as pn

from realm_widgets.app import build_page, serve_alone


def build() -> pn.viewable.Viewable:
    return build_page("tavern")


if __name__.startswith("bokeh"):
    serve_alone("tavern")
