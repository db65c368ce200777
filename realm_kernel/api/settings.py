"""`realm.settings`: realm.toml as the Settings page edits it (described, previewed,
saved atomically)."""

from __future__ import annotations

import os
from typing import Any

from ..hero_model.profiles import Resolution
from ..store import settings as toml_settings
from ..store.config import ConfigError, RealmConfig, load_config
from ..store.home import Home


class Settings:
    def __init__(self, home: Home) -> None:
        self.home = home

    def describe(self) -> dict:
        """realm.toml's fields (effective values, types, bounds, choices, which are
        critical) for the Settings page; `error` while the file is broken."""
        try:
            cfg, error = self.home.config, None
        except ConfigError as e:
            cfg, error = RealmConfig(), str(e)
        return {"fields": toml_settings.describe(cfg), "error": error,
                "path": str(self.home.paths.config_file)}

    def save(self, changes: dict[str, Any], confirm: bool = False) -> dict:
        """Validate {"section.key": value} against the config models and write realm.toml
        atomically. Critical fields (max_length, base_model, ...) need confirm=True;
        without it nothing is written and `needs_confirmation` names them."""
        result = toml_settings.save(self.home.paths, changes, confirm)
        if result.get("ok"):
            self.home.ledger.event("settings_changed", "Settings changed: " + ", ".join(sorted(changes)))
        return result

    def preview(self, changes: dict[str, Any]) -> dict[str, str]:
        """The validation errors of {"section.key": value} as typed so far ({} when
        valid); nothing is written."""
        return toml_settings.preview(self.home.paths, changes)

    def profile(self, name: str | None = None) -> Resolution:
        """The hero profile in force (default: realm.toml's, or the one named): each training
        default, its value and where it came from."""
        environ = dict(os.environ, **({"REALM_HERO__PROFILE": name} if name else {}))
        return load_config(self.home.paths.home, environ).resolved_profile
