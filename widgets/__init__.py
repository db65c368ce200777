"""Tavern widgets: one ESM + CSS per component, for JupyterLab (anywidget) and
`panel serve` (panel.custom.AnyWidgetComponent)."""

from .feed import WIDGETS, Feed

__all__ = ["WIDGETS", "Feed", "show_oracle", "show_tavern"]


def show_tavern(home: str | None = None):
    """Show the hero card and the live battle inline in a notebook."""
    from .jupyter import tavern as _tavern
    return _tavern(home)


def show_oracle(home: str | None = None):
    """The Oracle inline in a notebook: chat with checkpoints loaded in this kernel."""
    from .jupyter import oracle as _oracle
    return _oracle(home)
