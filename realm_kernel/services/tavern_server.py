"""`realm tavern`: the Panel app (the Tavern and the Oracle page) on its own server.

It binds 127.0.0.1 by default: only this machine can reach it. Exposing it — any other
address (0.0.0.0, a LAN address) or a websocket origin of another host — is refused
unless the app asks for a login: `--basic-auth` (a password, or a JSON file of
user: password) or `--oauth-provider` (GitHub, Google, Azure, ... with its
`--oauth-key`/`--oauth-secret`/`--oauth-redirect-uri`). A cookie secret is generated when
none is given. Anyone who reaches the Tavern can pause training and chat with
checkpoints, so it is never served to a network without a login.

The options are parsed once (by `realm tavern`, or by `parse` for `python -m
realm_widgets.app`), checked as this one `TavernServer`, and that same object is what the
app serves: it reaches the app as JSON in the environment (REALM_TAVERN), so no option
is read twice, none is passed on unchecked, and no secret (password, cookie secret,
OAuth secret) is ever in a process's arguments, which every local user can read.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field, fields, replace

from .exposure import ExposureError, exposure, refuse_without_login

__all__ = ["ENV", "ExposureError", "TavernServer", "parse"]

ENV = "REALM_TAVERN"  # the checked server, as JSON, for the app process


@dataclass(frozen=True)
class TavernServer:
    address: str = "127.0.0.1"
    port: int = 5006
    basic_auth: str | None = None  # a password, or the path of a JSON file of user: password
    user: str | None = None  # the one user name a single password logs in (default: this account)
    oauth_provider: str | None = None
    oauth_key: str | None = None
    oauth_secret: str | None = None
    oauth_redirect_uri: str | None = None
    cookie_secret: str | None = None
    allow_websocket_origin: list[str] = field(default_factory=list)

    @property
    def has_login(self) -> bool:
        return bool(self.basic_auth or self.oauth_provider)

    def origins(self) -> list[str]:
        """The websocket origins the server accepts: the ones given, else this machine's."""
        return list(self.allow_websocket_origin) or [
            f"{self.address}:{self.port}", f"localhost:{self.port}", f"127.0.0.1:{self.port}"]

    def exposed(self) -> list[str]:
        """Why this server is reachable from another machine (empty when it is not)."""
        return exposure(self.address, list(self.allow_websocket_origin))

    def check(self) -> TavernServer:
        """Refuse exposure without a login; return the server as it will run (a cookie
        secret and the login's user name filled in)."""
        refuse_without_login("the Tavern", self.exposed(), self.has_login,
                             "add --basic-auth PASSWORD (or a users JSON file) or "
                             "--oauth-provider NAME")
        if not self.has_login:
            return self
        user = self.user or (None if self.oauth_provider or _is_file(self.basic_auth)
                             else getpass.getuser())
        return replace(self, user=user, cookie_secret=self.cookie_secret or secrets.token_hex(32))

    def launch(self) -> tuple[list[str], dict[str, str]]:
        """The app's command line (no option in it) and its environment (the checked
        server in REALM_TAVERN)."""
        server = self.check()
        env = {**os.environ, ENV: json.dumps(asdict(server))}
        return [sys.executable, "-m", "realm_widgets.app"], env

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str]) -> TavernServer | None:
        """The server `launch` checked, taken out of the environment (so that no process
        the app starts inherits its secrets); None when the app was started by hand."""
        raw = environ.pop(ENV, None)
        if raw is None:
            return None
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).check()

    def describe(self) -> str:
        login = (f"basic auth, user {self.user}" if self.basic_auth and self.user else
                 "basic auth, users file" if self.basic_auth else
                 f"OAuth ({self.oauth_provider})" if self.oauth_provider else
                 "no login: this machine only")
        return f"http://{self.address}:{self.port}/ ({login})"


def _is_file(value: str | None) -> bool:
    return bool(value) and os.path.isfile(value)


def parse(argv: list[str] | None = None) -> TavernServer:
    """`python -m realm_widgets.app` options, parsed the one way: no abbreviations
    (`--addr` is an error, not `--address`), unknown options are errors, and a repeated
    option's last value is the one checked and served."""
    ap = argparse.ArgumentParser(prog="python -m realm_widgets.app", allow_abbrev=False,
                                 description="The Tavern as a Panel app (see `realm tavern`).")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5006)
    ap.add_argument("--allow-websocket-origin", action="append", default=[])
    for opt in ("basic-auth", "user", "oauth-provider", "oauth-key", "oauth-redirect-uri"):
        ap.add_argument(f"--{opt}", default=None)
    args = ap.parse_args(argv)
    # Secrets come only from the environment: an argument is readable by every local user.
    return TavernServer(
        args.address, args.port, args.basic_auth or os.environ.get("REALM_TAVERN_PASSWORD"),
        args.user, args.oauth_provider, args.oauth_key,
        os.environ.get("REALM_TAVERN_OAUTH_SECRET"), args.oauth_redirect_uri,
        os.environ.get("REALM_TAVERN_COOKIE_SECRET"), list(args.allow_websocket_origin))
