"""Each widget's state as typed fields, the one declaration both hosts build their synced
traits from (traitlets for the anywidgets, param for the Panel components, as quak
declares its traits), instead of one untyped `state` dict.

A field's kind is "dict", "list" or "int"; every field may be None (nothing yet, no
notice). `feed.py` puts a widget's field names in front of its JS as `STATE_FIELDS`, so
`state_(model)` (prelude.js) reads exactly these; tests/widgets/test_traits.py checks that
every field a widget's JS reads is declared here and that no page sends a field none of
its widgets declares."""

from __future__ import annotations

NOTICE = {"notice": "dict"}  # the session's notice, on every widget that shows it

FIELDS: dict[str, dict[str, str]] = {
    "hero_card": {"hero": "dict", "skills": "list"},
    "battle_view": {"battle": "dict", "events": "list", "hero": "dict", "losses": "list", "alarms": "list",
                    **NOTICE},
    "achievements": {"achievements": "list"},
    "toasts": {"toasts": "list", "trainer": "dict"},
    "oracle": {"checkpoints": "list", "hosts": "list", "loaded": "list", "panes": "dict",
               "probe": "dict", "skills": "list", **NOTICE},
    "quest_board": {"queue": "dict", "skills": "list", **NOTICE},
    "vault_browser": {"champion": "int", "checkpoints": "list", "disk": "dict", "protected": "dict",
                      "zones": "list", **NOTICE},
    "settings": {"settings": "dict", "vram": "dict", "errors": "dict", "confirm": "list", **NOTICE},
    "scheduler": {"cluster": "dict", "curriculum": "list", "tasks": "list", **NOTICE},
    "guild": {"guild": "list", "passives": "dict", **NOTICE},
}
# What every widget also syncs: its actions to the session, and whether it can be seen.
CONTROLS = ("action", "in_view")
