"""The widget files (one ESM + CSS each) shared by both hosts. State comes from the page
sessions in widgets/pages.py (each page polls `Realm` once for all its widgets).

Every widget's ESM is widgets/prelude.js (the helpers they all use: el_, button, sender,
state_, notice_, showNotice, follow) followed by the widget's own .js, composed here once
at import: no build step, and no `import` for JupyterLab or Panel to resolve (both load
it offline)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).parent
PRELUDE = HERE / "prelude.js"
NAMES = ("hero_card", "battle_view", "oracle", "achievements", "toasts", "quest_board",
         "vault_browser", "settings", "scheduler", "guild")


class Widget(NamedTuple):
    esm: str  # prelude.js + <name>.js, the text both hosts load
    css: Path
    js: Path  # the widget's own file (without the prelude)


def esm(js: Path, prelude: str | None = None) -> str:
    """A widget's ESM: the prelude, then the widget's own file."""
    prelude = PRELUDE.read_text(encoding="utf-8") if prelude is None else prelude
    return f"{prelude}\n// ---- {js.name} ----\n{js.read_text(encoding='utf-8')}"


def _widgets() -> dict[str, Widget]:
    prelude = PRELUDE.read_text(encoding="utf-8")  # read once, put in front of every widget
    return {name: Widget(esm(HERE / f"{name}.js", prelude), HERE / f"{name}.css", HERE / f"{name}.js")
            for name in NAMES}


WIDGETS = _widgets()
