"""The widget files (one ESM + CSS each) shared by both hosts. State comes from the page
sessions in widgets/pages.py (each page polls `Realm` once for all its widgets).

Every widget's ESM is widgets/prelude.js (the helpers they all use: el_, button, sender,
state_, notice_, showNotice, follow, and the formatters num, pct, gb, duration) followed
by the widget's own .js, and its CSS is widgets/prelude.css (the palette, the font, the
card box) followed by its own .css, composed here once at import: no build step, and no
`import` for JupyterLab or Panel to resolve (both load it offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from .traits import FIELDS

HERE = Path(__file__).parent
PRELUDE = HERE / "prelude.js"
PRELUDE_CSS = HERE / "prelude.css"
NAMES = ("hero_card", "battle_view", "oracle", "achievements", "toasts", "quest_board",
         "vault_browser", "settings", "scheduler", "guild")


class Widget(NamedTuple):
    esm: str  # prelude.js + <name>.js, the module both hosts load
    css: str  # prelude.css + <name>.css, the stylesheet both hosts load
    js_file: Path  # the widget's own files (without the preludes)
    css_file: Path


def compose(own: Path, prelude: str) -> str:
    """A prelude, then the widget's own file (for its ESM or its stylesheet); an ESM also
    gets the widget's state fields (widgets/traits.py) as `STATE_FIELDS`, which the
    prelude's `state_` and `follow` read."""
    if own.suffix == ".js":
        fields = json.dumps(list(FIELDS[own.stem]))
        mark = f"// ---- {own.name} ----\nconst STATE_FIELDS = {fields};"
    else:
        mark = f"/* ---- {own.name} ---- */"
    return f"{prelude}\n{mark}\n{own.read_text(encoding='utf-8')}"


def _widgets() -> dict[str, Widget]:
    # read once, put in front of every widget
    js, css = PRELUDE.read_text(encoding="utf-8"), PRELUDE_CSS.read_text(encoding="utf-8")
    return {name: Widget(compose(HERE / f"{name}.js", js), compose(HERE / f"{name}.css", css),
                         HERE / f"{name}.js", HERE / f"{name}.css")
            for name in NAMES}


WIDGETS = _widgets()
