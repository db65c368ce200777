"""Tavern widgets: one ESM + CSS per component, for JupyterLab (anywidget) and
`panel serve` (panel.custom.AnyWidgetComponent)."""

from .feed import WIDGETS

__all__ = ["PAGE_NAMES", "WIDGETS", "show", "show_oracle", "show_tavern"]

PAGE_NAMES = ("tavern", "quests", "oracle", "vault", "settings", "scheduler", "guild")


def show_tavern(home: str | None = None):
    """The Tavern page inline in a notebook (hero, battle, events, achievements, plots)."""
    return show("tavern", home)


def show_oracle(home: str | None = None):
    """The Oracle inline in a notebook: chat with checkpoints loaded in this kernel."""
    from .jupyter import oracle as _oracle
    return _oracle(home)


def show(page: str = "tavern", home: str | None = None):
    """Any Tavern page inline in a notebook: tavern, quests, oracle, vault, settings,
    scheduler, guild (the same widgets as the `panel serve` app's routes)."""
    if page not in PAGE_NAMES:
        raise ValueError(f"unknown page {page!r}; expected one of {PAGE_NAMES}")
    from .jupyter import page as _page
    return _page(page, home)
