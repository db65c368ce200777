"""The widget files (one ESM + CSS each) shared by both hosts. State comes from the page
sessions in widgets/pages.py (each page polls `Realm` once for all its widgets)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

WIDGETS = {name: (HERE / f"{name}.js", HERE / f"{name}.css")
           for name in ("hero_card", "battle_view", "oracle", "achievements", "toasts", "quest_board",
                        "vault_browser", "settings", "scheduler", "guild")}
