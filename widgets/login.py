"""The Tavern's password login (`realm tavern --basic-auth`), in place of Panel's own.

Panel's basic-auth form accepts any user name with a single password, compares with
`==`, lets a client guess as fast as it can post, and sets a session cookie for a POST
from any page. This one:
- names a user: a users JSON file's names, or the one user the server was given (`--user`,
  default the account's name) for a single password;
- compares user and password in constant time (hmac.compare_digest);
- throttles each client (by address) after FREE_FAILURES wrong tries: it must wait,
  doubling each time up to MAX_WAIT_S, and a right password is refused while it waits;
- refuses a login POST whose Origin (or, without one, Referer) is another site's. A
  client that sends neither (curl, a script) is no browser a page could drive.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from urllib.parse import urlsplit

from panel.auth import BasicAuthProvider, BasicLoginHandler, _validate_next_url
from panel.io.resources import CDN_DIST
from panel.io.state import state

FREE_FAILURES = 5  # wrong tries before a client must wait
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 300.0


class Throttle:
    """Failures per client; how long each must wait before its next try."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def wait_s(self, client: str) -> float:
        with self._lock:
            return max(0.0, self._until.get(client, 0.0) - self._clock())

    def failed(self, client: str) -> None:
        with self._lock:
            n = self._failures[client] = self._failures.get(client, 0) + 1
            if n >= FREE_FAILURES:
                wait = min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (n - FREE_FAILURES))
                self._until[client] = self._clock() + wait

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
            self._until.pop(client, None)


def credentials(basic_auth: str, user: str | None) -> dict[str, str]:
    """user -> password: a users JSON file, or the single password for the one user."""
    if os.path.isfile(basic_auth):
        with open(basic_auth, encoding="utf-8") as f:
            users = json.load(f)
        if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
            raise ValueError(f"{basic_auth}: expected a JSON object of user: password")
        return users
    if not user:
        raise ValueError("a single --basic-auth password needs a user name (--user)")
    return {user: basic_auth}


def valid(users: dict[str, str], username: str, password: str) -> bool:
    """Constant time in the password; an unknown user costs a comparison too."""
    expected = users.get(username)
    ok = hmac.compare_digest((expected or "\0").encode(), password.encode())
    return ok and expected is not None


def same_origin(handler) -> bool:
    """Whether the POST came from this server's own page (or from no browser at all)."""
    source = handler.request.headers.get("Origin") or handler.request.headers.get("Referer")
    if not source:
        return True
    if source == "null":  # a sandboxed frame or a file: page
        return False
    return urlsplit(source).netloc.lower() == handler.request.host.lower()


class RealmLoginHandler(BasicLoginHandler):
    users: dict[str, str] = {}
    throttle = Throttle()

    def post(self) -> None:
        if not same_origin(self):
            self.set_status(403)
            self.finish("login refused: the form was posted from another site")
            return
        client = self.request.remote_ip or "?"
        wait = self.throttle.wait_s(client)
        if wait > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(int(wait) + 1))
            self.finish(f"too many failed logins from {client}: try again in {int(wait) + 1} s")
            return
        username = self.get_argument("username", "")
        if valid(self.users, username, self.get_argument("password", "")):
            self.throttle.succeeded(client)
            self.set_current_user(username)
            self.redirect(_next_url(self))
            return
        self.throttle.failed(client)
        self.set_status(401)
        self.finish(self._login_template.render(
            login_endpoint=self._login_endpoint, PANEL_CDN=CDN_DIST,
            errormessage="Invalid username or password!"))


def _next_url(handler) -> str:
    return _validate_next_url(handler.get_cookie("next_url", state.base_url)) or state.base_url


class RealmLoginProvider(BasicAuthProvider):
    """Panel's login and logout pages and session cookie, with RealmLoginHandler's checks."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)
        self._handler: type[RealmLoginHandler] | None = None
        super().__init__()  # asks for login_handler: the endpoint and template are set by then

    @property
    def login_handler(self):
        # A class per provider (tornado makes one handler per request), with its own
        # users and throttle.
        if self._handler is None:
            self._handler = type("Login", (RealmLoginHandler,),
                                 {"users": self._users, "throttle": Throttle(),
                                  "_login_endpoint": self._login_endpoint,
                                  "_login_template": self._login_template})
        return self._handler
