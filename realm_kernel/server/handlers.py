"""REST handlers under /realm/api, all behind Jupyter's own auth (token or cookie;
XSRF on POST/PATCH/DELETE as Jupyter applies it).

Errors are JSON {"ok": false, "status", "error"}: 400 for a bad body or argument, 404 for
an unknown asset, zone, step or quest, 409 for a quest the daemon has taken, never a 500
for bad input. A JSON body is parsed and checked once, before the handler runs, for every
POST/PATCH/PUT (server/inputs.py); every refusal is logged with its route and reason.
Work that may take a while (copies, scans, uploads) runs in a thread so the server keeps
answering.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import __version__
from ..api import ConfigError, ProtectedAssetError, QuestError, QueueConflict, Realm, VaultError
from ..store.checkpoints import CHECKPOINT_METRICS
from ..store.vault import ASSET_TYPES, check_id
from .inputs import BadInput, json_object, only, whole_number

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_STEP = 10**18 - 1  # 18 digits: any step a run reaches, and inside DuckDB's BIGINT
MAX_LIMIT = 1_000_000  # rows of one ledger listing


def _status_for(e: Exception) -> int | None:
    if isinstance(e, QueueConflict | FileExistsError | ProtectedAssetError):
        return 409
    if isinstance(e, VaultError | LookupError):
        return 404
    if isinstance(e, QuestError | ValueError | ConfigError | TypeError | OverflowError):
        return 400
    return None


@contextmanager
def as_400() -> Iterator[None]:
    """Malformed input found by server/inputs.py becomes a 400 with its message."""
    try:
        yield
    except BadInput as e:
        raise tornado.web.HTTPError(400, str(e)) from None


BODY_METHODS = ("POST", "PATCH", "PUT")
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


class RealmHandler(APIHandler):
    _body: dict | None = None

    @property
    def realm(self) -> Realm:
        return self.settings["realm"]

    async def prepare(self) -> None:
        """Jupyter's checks (auth, XSRF, origin) first; then, for a signed-in request
        that carries a JSON body, the body is parsed and checked here, so a malformed
        one is refused the same way on every route, whether its handler reads it or not."""
        await super().prepare()
        content_type = self.request.headers.get("Content-Type", "")
        if self.current_user and self.request.method in BODY_METHODS \
                and not content_type.startswith(FORMS):
            self.json_body()

    def refused(self, status: int, message: Any) -> None:
        """Record a refusal in the server log: the route and the reason (never the query
        string, which may carry a token)."""
        self.log.warning("Realm of Training: refused %s %s (%d): %.500s", self.request.method,
                         self.request.path, status, message)

    def reply(self, data: Any, status: int = 200) -> None:
        if status >= 400:
            error = data.get("error") if isinstance(data, dict) else data
            self.refused(status, error.get("message") if isinstance(error, dict) else error)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or (str(exc) if exc else self._reason)
        body = {"ok": False, "status": status_code, "error": message}
        if status_code < 500:
            self.refused(status_code, message)
        report = getattr(exc, "report", None) or getattr(exc.__cause__, "report", None) if exc else None
        if report is not None:
            body["report"] = report.as_dict()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, default=str))

    def json_body(self) -> dict:
        """The request body as a checked JSON object (parsed once), or a 400 saying why not."""
        if self._body is None:
            with as_400():
                self._body = json_object(self.request.body)
        return self._body

    def json_fields(self, allowed: set[str] | frozenset[str]) -> dict:
        """The JSON body, refused with a 400 when it has a field outside `allowed`."""
        with as_400():
            return only(self.json_body(), allowed, f"{self.request.method} {self.request.path}")

    def field(self, body: dict, name: str, kind: type = str, required: bool = True) -> Any:
        value = body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise tornado.web.HTTPError(400, f"body needs {name!r} as {kind.__name__}")
        return value

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a Realm call in a thread; known errors become JSON 4xx replies."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except tornado.web.HTTPError:
            raise
        except Exception as e:
            status = _status_for(e)
            if status is None:
                raise
            raise tornado.web.HTTPError(status, str(e).strip("'\"")) from e


class HealthHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        health = await self.call(self.realm.health)
        weaver = self.settings.get("realm_weaver")
        if weaver:  # the live view beats the status file
            health["services"], health["mended"] = weaver.status(), weaver.mended
        self.reply({"ok": True, "version": __version__, **health})


class StatsHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.reports.stats))


class LocateHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self, asset_id: str) -> None:
        check = await self.call(check_id, asset_id)
        found = await self.call(self.realm.vault.locate, check)
        if not found.found:
            raise tornado.web.HTTPError(404, f"no asset {asset_id!r} in the vault")
        self.reply(found.as_dict())


class AssetHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self, asset_id: str) -> None:
        self.reply(await self.call(self.realm.vault.asset, asset_id))


class CheckpointsHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"checkpoints": await self.call(self.realm.vault.checkpoints)})


class SearchHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        type_ = self.get_query_argument("type", None)
        if type_ is not None and type_ not in ASSET_TYPES:
            raise tornado.web.HTTPError(400, f"type must be one of {ASSET_TYPES}")
        rows = await self.call(self.realm.vault.search, type_, self.get_query_argument("q", None))
        self.reply({"assets": rows})


class FetchHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        asset_id = self.field(self.json_body(), "asset_id")
        path = await self.call(self.realm.vault.fetch, asset_id)
        self.reply({"ok": True, "asset_id": asset_id, "path": str(path)})


class RegisterHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        self.reply(await self.call(
            self.realm.vault.register, self.field(body, "path"),
            self.field(body, "type", required=False), self.field(body, "asset_id", required=False),
            self.field(body, "zone", required=False) or "local"), 201)


class ScanHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        zone = self.field(self.json_body(), "zone", required=False) or "local"
        self.reply(await self.call(self.realm.vault.scan, zone))


class ZonesHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"zones": await self.call(self.realm.vault.zones)})

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        self.reply(await self.call(self.realm.vault.add_zone, self.field(body, "zone_id"),
                                   self.field(body, "url"),
                                   self.field(body, "detail", required=False) or ""), 201)


class ZoneHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self, zone_id: str) -> None:
        self.reply(await self.call(self.realm.vault.zone, zone_id))

    @tornado.web.authenticated
    async def delete(self, zone_id: str) -> None:
        await self.call(self.realm.vault.remove_zone, zone_id)
        self.reply({"ok": True, "zone_id": zone_id})


class TransferHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        loc = await self.call(self.realm.vault.transfer, self.field(body, "asset_id"),
                              self.field(body, "to_zone"),
                              self.field(body, "from_zone", required=False))
        self.reply({"ok": True, "location": loc.as_dict()})


class RetentionHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        dry = self.json_body().get("dry_run", True)
        if not isinstance(dry, bool):
            raise tornado.web.HTTPError(400, "dry_run must be true or false")
        self.reply(await self.call(self.realm.vault.retention, dry))


class LedgerHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        limit = self.get_query_argument("limit", None)
        limit = None if limit is None else whole_number_or_400(limit, "limit", MAX_LIMIT)
        rows = await self.call(self.realm.checkpoints.list, limit, self.get_query_argument("skill", None))
        self.reply({"checkpoints": [r.as_dict() for r in rows]})


class LedgerSummaryHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.checkpoints.summary))


class LedgerBestHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        metric = self.get_query_argument("metric", "loss")
        if metric not in CHECKPOINT_METRICS:
            raise tornado.web.HTTPError(400, f"metric must be one of {sorted(CHECKPOINT_METRICS)}")
        rec = await self.call(self.realm.checkpoints.best, metric)
        if rec is None:
            raise tornado.web.HTTPError(404, f"no checkpoint has a {metric}")
        self.reply(rec.as_dict())


class LedgerStepHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self, step: str) -> None:
        rec = await self.call(self.realm.checkpoints.get, parse_step(step))
        if rec is None:
            raise tornado.web.HTTPError(404, f"no checkpoint at step {step}")
        self.reply(rec.as_dict())


class TrainingStatusHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        status = await self.call(self.realm.training.status)
        self.reply({**status, "hero": await self.call(self.realm.hero)})


class TavernStateHandler(RealmHandler):
    """What the hero card and battle view show (a Tavern away from the trainer reads it)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.tavern_state))


class QueueHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.quests.queue))

    @tornado.web.authenticated
    async def post(self) -> None:
        """Add a quest: multipart/form-data with a `file` (and `priority`), or JSON
        {"name", "content", "priority"}."""
        if len(self.request.body) > MAX_UPLOAD_BYTES:
            raise tornado.web.HTTPError(413, f"upload over {MAX_UPLOAD_BYTES} bytes")
        files = self.request.files.get("file")
        if files:
            name, data = files[0]["filename"], files[0]["body"]
            priority = self.get_body_argument("priority", None)
        else:
            body = self.json_body()
            name, content = self.field(body, "name"), self.field(body, "content")
            data = content.encode("utf-8", "surrogatepass")
            priority = self.field(body, "priority", required=False)
        self.reply(await self.call(self.realm.quests.upload, name, data, priority), 201)


class QueueItemHandler(RealmHandler):
    @tornado.web.authenticated
    async def patch(self, name: str) -> None:
        """{"priority": "high"} moves a waiting quest; {"position": 0} reorders it."""
        body = self.json_body()
        out: dict[str, Any] = {"ok": True, "name": name}
        if body.get("priority") is None and body.get("position") is None:
            raise tornado.web.HTTPError(400, "body needs 'priority' and/or 'position'")
        if body.get("priority") is not None:
            out.update(await self.call(self.realm.quests.set_priority, name,
                                       self.field(body, "priority")))
        if body.get("position") is not None:
            out.update(await self.call(self.realm.quests.move, out["name"],
                                       self.field(body, "position", int)))
        self.reply(out)

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        self.reply(await self.call(self.realm.quests.remove, name))


class ControlHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        action = self.json_body().get("action")
        if not isinstance(action, str):
            raise tornado.web.HTTPError(400, "body must be {\"action\": \"pause|resume|stop|skip\"}")
        self.reply(await self.call(self.realm.training.control, action))


class ChampionHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        champ = await self.call(self.realm.checkpoints.champion)
        if champ is None:
            raise tornado.web.HTTPError(404, "no champion promoted yet")
        self.reply(champ)

    @tornado.web.authenticated
    async def post(self) -> None:
        step = self.json_body().get("step")
        if isinstance(step, bool) or not isinstance(step, int | str):
            raise tornado.web.HTTPError(400, "body must be {\"step\": <checkpoint step>}")
        self.reply(await self.call(self.realm.checkpoints.promote, step))


def whole_number_or_400(text: str, what: str, hi: int) -> int:
    with as_400():
        return whole_number(text, what, hi)


def parse_step(text: str) -> int:
    """A checkpoint step from a URL segment: a non-negative integer, or a 400 that says so."""
    return whole_number_or_400(text, "checkpoint step", MAX_STEP)


class CheckpointItemHandler(RealmHandler):
    @tornado.web.authenticated
    async def delete(self, step: str) -> None:
        self.reply(await self.call(self.realm.checkpoints.delete, parse_step(step)))


class CheckpointExportHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self, step: str) -> None:
        n = parse_step(step)
        body = self.json_body()
        name = self.field(body, "name", required=False)
        merge = self.field(body, "merge", bool, required=False) or False

        def export() -> Any:
            # Exports over REST stay inside <realm home>/exports.
            dest = None if name is None else self.realm.paths.exports / check_id(name, "export name")
            return self.realm.checkpoints.export(n, dest, merge)

        path = await self.call(export)
        self.reply({"ok": True, "step": n, "path": str(path)})


class TasksHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        check = self.get_argument("check", "0") not in ("0", "false", "")
        self.reply(await self.call(self.realm.tasks.list, check_work=check))


class TaskRunHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self, task_id: str) -> None:
        self.reply(await self.call(self.realm.tasks.run, task_id))


class TaskItemHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self, task_id: str) -> None:
        body = self.json_fields({"enabled", "priority", "cooldown_s", "parameters"})
        self.reply(await self.call(self.realm.tasks.set, task_id, **body))


class CurriculumHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.skills.curriculum))


_ID = r"([^/]+)"
ROUTES = [
    ("health", HealthHandler),
    ("stats", StatsHandler),
    (f"locate/{_ID}", LocateHandler),
    (f"asset/{_ID}", AssetHandler),
    ("checkpoints", CheckpointsHandler),
    (f"checkpoints/{_ID}", CheckpointItemHandler),
    (f"checkpoints/{_ID}/export", CheckpointExportHandler),
    ("search", SearchHandler),
    ("fetch", FetchHandler),
    ("register", RegisterHandler),
    ("scan", ScanHandler),
    ("zones", ZonesHandler),
    (f"zones/{_ID}", ZoneHandler),
    ("transfer", TransferHandler),
    ("retention", RetentionHandler),
    ("ledger", LedgerHandler),
    ("ledger/summary", LedgerSummaryHandler),
    ("ledger/best", LedgerBestHandler),
    (f"ledger/{_ID}", LedgerStepHandler),
    ("training/status", TrainingStatusHandler),
    ("tavern/state", TavernStateHandler),
    ("training/queue", QueueHandler),
    (f"training/queue/{_ID}", QueueItemHandler),
    ("training/control", ControlHandler),
    ("champion", ChampionHandler),
    ("tasks", TasksHandler),
    (f"tasks/{_ID}/run", TaskRunHandler),
    (f"tasks/{_ID}", TaskItemHandler),
    ("curriculum", CurriculumHandler),
]


def mount(base_url: str, routes: list[tuple[str, type]]) -> list[tuple[str, type]]:
    """Routes under <base_url>/realm/api, as tornado handler specs."""
    return [(url_path_join(base_url, "realm/api", route), h) for route, h in routes]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return mount(base_url, ROUTES)
