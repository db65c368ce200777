"""Tavern widgets: one ESM + CSS per component, for JupyterLab (anywidget) and
`panel serve` (panel.custom.AnyWidgetComponent)."""

from .feed import WIDGETS, Feed

__all__ = ["WIDGETS", "Feed", "show_tavern"]


def show_tavern(home: str | None = None):
    """Show the hero card and the live battle inline in a notebook."""
    from .jupyter import tavern as _tavern
    return _tavern(home)
