"""REST handlers under /realm/api, all behind Jupyter's own auth (token or cookie;
XSRF on POST as Jupyter applies it)."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import __version__
from ..api import Realm


class RealmHandler(APIHandler):
    @property
    def realm(self) -> Realm:
        return self.settings["realm"]

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or (str(exc) if exc else self._reason)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": False, "status": status_code, "error": message}))

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise tornado.web.HTTPError(400, f"request body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "request body must be a JSON object")
        return body


class HealthHandler(RealmHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        weaver = self.settings.get("realm_weaver")
        self.reply({"ok": True, "version": __version__, "home": str(self.realm.paths.home),
                    "threads": weaver.status() if weaver else [],
                    "daemon": self.realm.daemon_status()})


class TrainingStatusHandler(RealmHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.reply({**self.realm.training_status(), "hero": self.realm.hero()})


class QueueHandler(RealmHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.reply(self.realm.queue())


class ControlHandler(RealmHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        action = self.json_body().get("action")
        if not isinstance(action, str):
            raise tornado.web.HTTPError(400, "body must be {\"action\": \"pause|resume|stop\"}")
        try:
            self.reply(self.realm.control(action))
        except ValueError as e:
            raise tornado.web.HTTPError(400, str(e)) from e


ROUTES = [
    ("health", HealthHandler),
    ("training/status", TrainingStatusHandler),
    ("training/queue", QueueHandler),
    ("training/control", ControlHandler),
]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return [(url_path_join(base_url, "realm/api", route), h) for route, h in ROUTES]
