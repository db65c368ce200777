"""The Tavern as a standalone app: `panel serve widgets/tavern.py` (binds 127.0.0.1).

The realm home is REALM_HOME (default: the checkout)."""

from __future__ import annotations

import panel as pn

from widgets.feed import POLL_SECONDS, Feed
from widgets.panel_components import BattleViewPanel, HeroCardPanel


def build() -> pn.viewable.Viewable:
    feed = Feed()
    hero = HeroCardPanel(sizing_mode="stretch_width")
    battle = BattleViewPanel(sizing_mode="stretch_width")
    battle.param.watch(lambda event: feed.act(event.new), "action")

    def refresh() -> None:
        state = feed.snapshot()
        if state != hero.state:
            hero.state = state
            battle.state = state

    refresh()
    pn.state.add_periodic_callback(refresh, period=int(POLL_SECONDS * 1000))
    return pn.Column(pn.pane.Markdown("# 🍺 The Tavern"), hero, battle,
                     sizing_mode="stretch_width", max_width=680)


if __name__.startswith("bokeh"):
    pn.extension()
    build().servable(title="Realm of Training — Tavern")
