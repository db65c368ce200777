"""The reads a Tavern away from its trainer needs that no other route serves (docs/tavern.md
"A Tavern away from the trainer"): achievements, the toasts' events, the vault's marks
and disk, the queue's sizes and pace, realm.toml as the Settings page shows it, and where
the tasks run. Each is GET only, behind Jupyter's auth like every route, and returns what
the same `Realm` call returns on the trainer, so a page away shows the trainer's values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tornado.web

from ..api import Realm
from .handlers import RealmHandler, mount

MAX_KINDS = 32  # event kinds in one `events/notable` query


def _read(name: str, read: Callable[[Realm], Any]) -> type[RealmHandler]:
    """GET -> `read(realm)` (a `Realm` call that takes no argument), as JSON."""
    class Handler(RealmHandler):
        @tornado.web.authenticated
        async def get(self) -> None:
            self.reply(await self.call(read, self.realm))
    Handler.__name__ = Handler.__qualname__ = f"{name}Handler"
    return Handler


class NotableEventsHandler(RealmHandler):
    """GET events/notable?kinds=a,b: the newest events of those kinds (the toasts')."""

    @tornado.web.authenticated
    async def get(self) -> None:
        kinds = tuple(k for k in self.get_query_argument("kinds", "").split(",") if k)
        if not kinds or len(kinds) > MAX_KINDS:
            raise tornado.web.HTTPError(400, f"kinds: 1 to {MAX_KINDS} event kinds, comma-separated")
        self.reply({"events": await self.call(self.realm.reports.notable_events, kinds)})


ROUTES = [
    ("achievements", _read("Achievements", lambda r: {"achievements": r.reports.achievements()})),
    ("events/notable", NotableEventsHandler),
    # protected steps (and why), the champion's step, the zones, the realm home's disk
    ("vault/marks", _read("VaultMarks", lambda r: r.vault_marks())),
    # examples per queued quest and the training pace: the Quests page's ETAs
    ("quests/sizes", _read("QueueSizes", lambda r: {
        "sizes": r.quests.sizes(), "seconds_per_example": r.training.seconds_per_example()})),
    ("settings", _read("Settings", lambda r: r.settings.describe())),
    ("cluster", _read("Cluster", lambda r: r.tasks.cluster())),
]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return mount(base_url, ROUTES)
