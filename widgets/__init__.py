"""Tavern widgets: one ESM + CSS per component, for JupyterLab (anywidget) and
`panel serve` (panel.custom.AnyWidgetComponent)."""

from .feed import WIDGETS

__all__ = ["PAGE_NAMES", "WIDGETS", "shared_realm", "show", "show_oracle", "show_tavern"]

PAGE_NAMES = ("tavern", "quests", "oracle", "vault", "settings", "scheduler", "guild")


def shared_realm(home: str | None = None):
    """The `Realm` every page of this process uses for a realm home (REALM_HOME when None):
    one ledger connection and one Oracle pool, whatever shows them."""
    from .pages import shared_realm as _shared
    return _shared(home)


def show_tavern(home: str | None = None):
    """The Tavern page inline in a notebook (hero, battle, events, achievements, plots)."""
    return show("tavern", home)


def show_oracle(home: str | None = None):
    """The Oracle page inline in a notebook: chat with checkpoints loaded in this kernel."""
    return show("oracle", home)


def show(page: str = "tavern", home: str | None = None):
    """Any Tavern page inline in a notebook: tavern, quests, oracle, vault, settings,
    scheduler, guild (the same widgets as the `panel serve` app's routes). `home` is the
    realm home (REALM_HOME when None); pages of one home share one `Realm` in the kernel."""
    if page not in PAGE_NAMES:
        raise ValueError(f"unknown page {page!r}; expected one of {PAGE_NAMES}")
    from .jupyter import page as _page
    return _page(page, home)
