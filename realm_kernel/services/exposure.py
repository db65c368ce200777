"""Whether a server is reachable from other machines: the one rule every way of starting
a server (`realm tavern`, `realm play`, `realm oracle serve`, a plain `jupyter lab` with
the realm extension) applies to its final, effective options.

Listening on anything but loopback, or accepting browser origins of another host, is
exposure; exposure without a login is refused."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class ExposureError(ValueError):
    """A server would be reachable from other machines without a login."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost. Empty, 0.0.0.0, ::, * (every address) are not."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def origin_host(origin: str) -> str:
    """The host of a browser origin as servers are told it: `host`, `host:port`,
    `[::1]:port` or `scheme://host:port`."""
    origin = origin.strip()
    if "://" not in origin:
        origin = "//" + origin
    try:
        return urlsplit(origin).hostname or origin.lstrip("/")
    except ValueError:  # a malformed port, say: not a loopback origin
        return origin.lstrip("/")


def exposure(address: str, origins: list[str] = (), origin_pattern: str = "") -> list[str]:
    """Why a server with these effective options is reachable from another machine
    (empty when it is not)."""
    why = []
    if not is_loopback(address):
        why.append(f"address {address or '(every address)'}")
    why += [f"origin {o}" for o in origins if not is_loopback(origin_host(o))]
    if origin_pattern:  # a regular expression may match any host
        why.append(f"origin pattern {origin_pattern}")
    return why


def refuse_without_login(what: str, why: list[str], has_login: bool, hint: str) -> None:
    if why and not has_login:
        raise ExposureError(
            f"refusing to expose {what} ({', '.join(why)}) without a login: {hint}; "
            "see docs/reliability.md")
