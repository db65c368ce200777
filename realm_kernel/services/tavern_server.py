"""`realm tavern`: the Panel app (the Tavern and the Oracle page) on its own server.

It binds 127.0.0.1 by default: only this machine can reach it. Exposing it — any other
address (0.0.0.0, a LAN address) or a websocket origin of another host — is refused
unless the app asks for a login, with Panel's own options: `--basic-auth` (a password, or
a JSON file of user: password) or `--oauth-provider` (GitHub, Google, Azure, ... with its
`--oauth-key`/`--oauth-secret`/`--oauth-redirect-uri` passed through). A cookie secret is generated when none
is given. Anyone who reaches the Tavern can pause training and chat with checkpoints, so
it is never served to a network without a login.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class ExposureError(ValueError):
    """The Panel app would be reachable from other machines without a login."""


@dataclass
class TavernServer:
    address: str = "127.0.0.1"
    port: int = 5006
    basic_auth: str | None = None
    oauth_provider: str | None = None
    cookie_secret: str | None = None
    allow_websocket_origin: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # passed to `python -m realm_widgets.app` as they are

    def exposed(self) -> list[str]:
        """Why this server is reachable from another machine (empty when it is not)."""
        why = []
        if self.address not in LOOPBACK:
            why.append(f"--address {self.address}")
        for origin in self.allow_websocket_origin:
            host = origin.rsplit(":", 1)[0] if origin.count(":") == 1 else origin
            if host not in LOOPBACK:
                why.append(f"--allow-websocket-origin {origin}")
        return why

    def check(self) -> None:
        why = self.exposed()
        if why and not (self.basic_auth or self.oauth_provider):
            raise ExposureError(
                f"refusing to expose the Tavern ({', '.join(why)}) without a login: add "
                "--basic-auth PASSWORD (or a users JSON file) or --oauth-provider NAME; "
                "see docs/reliability.md")

    def argv(self) -> list[str]:
        self.check()
        args = [sys.executable, "-m", "realm_widgets.app", "--address", self.address,
                "--port", str(self.port)]
        for origin in self.allow_websocket_origin:
            args += ["--allow-websocket-origin", origin]
        if self.basic_auth:
            args += ["--basic-auth", self.basic_auth]
        if self.oauth_provider:
            args += ["--oauth-provider", self.oauth_provider]
        if self.basic_auth or self.oauth_provider:
            args += ["--cookie-secret", self.cookie_secret or secrets.token_hex(32)]
        return args + list(self.extra)

    def describe(self) -> str:
        login = ("basic auth" if self.basic_auth else f"OAuth ({self.oauth_provider})"
                 if self.oauth_provider else "no login: this machine only")
        return f"http://{self.address}:{self.port}/ ({login})"
