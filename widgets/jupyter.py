"""anywidget classes for JupyterLab: the same .js/.css files as the Panel components."""

from __future__ import annotations

import asyncio

import anywidget
import ipywidgets
import traitlets

from .feed import POLL_SECONDS, WIDGETS, Feed


class HeroCard(anywidget.AnyWidget):
    _esm = WIDGETS["hero_card"][0]
    _css = WIDGETS["hero_card"][1]
    state = traitlets.Dict().tag(sync=True)


class BattleView(anywidget.AnyWidget):
    _esm = WIDGETS["battle_view"][0]
    _css = WIDGETS["battle_view"][1]
    state = traitlets.Dict().tag(sync=True)
    action = traitlets.Dict().tag(sync=True)


def tavern(home: str | None = None, interval: float = POLL_SECONDS) -> ipywidgets.VBox:
    """The hero card and the live battle, kept fresh by one poller on the kernel's loop."""
    from realm_kernel.api import Realm

    feed = Feed(Realm(home, writer="widgets"))
    hero, battle = HeroCard(), BattleView()
    battle.observe(lambda change: feed.act(change["new"]), names="action")

    def refresh() -> None:
        state = feed.snapshot()
        if state != hero.state:
            hero.state = state
            battle.state = state

    async def poll() -> None:
        while True:
            try:
                refresh()
            except Exception as e:  # a poll failure must not kill the loop
                battle.state = {**battle.state, "error": str(e)}
            await asyncio.sleep(interval)

    refresh()
    box = ipywidgets.VBox([hero, battle])
    box._realm_poller = asyncio.get_event_loop().create_task(poll())
    return box


class Oracle(anywidget.AnyWidget):
    _esm = WIDGETS["oracle"][0]
    _css = WIDGETS["oracle"][1]
    state = traitlets.Dict().tag(sync=True)
    action = traitlets.Dict().tag(sync=True)


ORACLE_POLL_SECONDS = 0.25  # streamed tokens reach the page at this pace


def oracle(home: str | None = None, interval: float = ORACLE_POLL_SECONDS) -> Oracle:
    """The Oracle chat, on this kernel's own model pool (`Realm.oracle`)."""
    from realm_kernel.api import Realm

    from .oracle_session import OracleSession

    session = OracleSession(Realm(home, writer="widgets"))
    widget = Oracle(state=session.snapshot())
    widget.observe(lambda change: session.act(change["new"]), names="action")

    async def poll() -> None:
        while True:
            try:
                state = session.snapshot()
                if state != widget.state:
                    widget.state = state
            except Exception as e:  # a poll failure must not kill the loop
                widget.state = {**widget.state, "notice": str(e)}
            await asyncio.sleep(interval)

    widget._realm_poller = asyncio.get_event_loop().create_task(poll())
    widget.session = session
    return widget
