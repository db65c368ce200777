"""The one state feed behind every widget, in both hosts: a snapshot of the realm as
the widgets' `state` property, and actions coming back through their `action` property."""

from __future__ import annotations

import logging
from pathlib import Path

from realm_kernel.api import Realm

HERE = Path(__file__).parent
log = logging.getLogger("realm.widgets")

WIDGETS = {name: (HERE / f"{name}.js", HERE / f"{name}.css")
           for name in ("hero_card", "battle_view", "oracle", "achievements", "toasts", "quest_board",
                        "vault_browser", "settings", "scheduler", "guild")}
POLL_SECONDS = 0.5


class Feed:
    def __init__(self, realm: Realm | None = None) -> None:
        self.realm = realm or Realm(writer="widgets")
        self._seen_nonces: set = set()

    def snapshot(self) -> dict:
        return self.realm.tavern_state()

    def act(self, action: dict | None) -> dict | None:
        """Carry out a widget action once ({"name": "pause", "nonce": ...})."""
        if not action or action.get("nonce") in self._seen_nonces:
            return None
        self._seen_nonces.add(action.get("nonce"))
        try:
            return self.realm.control(str(action.get("name")))
        except ValueError as e:
            log.warning("widget action refused: %s", e)
            return {"ok": False, "error": str(e)}
