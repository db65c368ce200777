"""The reads a Tavern away from its trainer needs that no other route serves (docs/tavern.md
"A Tavern away from the trainer"): achievements, the toasts' events, the vault's marks
and disk, the queue's sizes and pace, realm.toml as the Settings page shows it, and where
the tasks run. Each is GET only, behind Jupyter's auth like every route, and returns what
the same `Realm` call returns on the trainer, so a page away shows the trainer's values."""

from __future__ import annotations

import tornado.web

from .handlers import RealmHandler, mount

MAX_KINDS = 32  # event kinds in one `events/notable` query


class AchievementsHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"achievements": await self.call(self.realm.reports.achievements)})


class NotableEventsHandler(RealmHandler):
    """GET events/notable?kinds=a,b: the newest events of those kinds (the toasts')."""

    @tornado.web.authenticated
    async def get(self) -> None:
        kinds = tuple(k for k in self.get_query_argument("kinds", "").split(",") if k)
        if not kinds or len(kinds) > MAX_KINDS:
            raise tornado.web.HTTPError(400, f"kinds: 1 to {MAX_KINDS} event kinds, comma-separated")
        self.reply({"events": await self.call(self.realm.reports.notable_events, kinds)})


class VaultMarksHandler(RealmHandler):
    """What the Vault page marks beside each checkpoint: protected steps (and why), the
    champion's step, the zones and the realm home's disk."""

    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.vault_marks))


class QueueSizesHandler(RealmHandler):
    """Examples per queued quest and the training pace: the Quests page's ETAs."""

    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"sizes": await self.call(self.realm.quests.sizes),
                    "seconds_per_example": await self.call(self.realm.training.seconds_per_example)})


class SettingsHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.settings.describe))


class ClusterHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.tasks.cluster))


ROUTES = [
    ("achievements", AchievementsHandler),
    ("events/notable", NotableEventsHandler),
    ("vault/marks", VaultMarksHandler),
    ("quests/sizes", QueueSizesHandler),
    ("settings", SettingsHandler),
    ("cluster", ClusterHandler),
]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return mount(base_url, ROUTES)
