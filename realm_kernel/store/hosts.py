"""The host registry: where services run, so nothing hard-codes an address.

`hosts.toml` (or `hosts.json`) in the realm home:

    [hosts.trainer]
    name = "Training Server"
    host = "trainer.local"
    roles = ["trainer"]
    token_env = "REALM_API_TOKEN"      # the Jupyter token for its REST API, from this env var
    [hosts.trainer.services]
    realm = { port = 8888, path = "/realm/api" }
    ledger = { port = 8888, path = "/realm/api/ledger" }

    [hosts.inference]
    host = "inference.local"
    roles = ["inference"]
    services = { inference = { port = 8765 } }

A realm whose trainer runs elsewhere (a Tavern away from the trainer) reads the trainer's
hero, battle and ledger over its `realm` and `ledger` services (api/remote_trainer.py).

Without a file the realm is one machine: a "local" host with every role, its services on
the Jupyter server of `realm play` (127.0.0.1:8888).
"""

from __future__ import annotations

import json
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ConfigError
from .paths import RealmPaths


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int = Field(ge=1, le=65535)
    path: str = ""
    scheme: str = "http"


class Host(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    host: str = "127.0.0.1"
    roles: list[str] = []
    role: str | None = None  # the seed's single role; merged into roles
    services: dict[str, Service] = {}
    models_dir: str | None = None
    token_env: str | None = None
    # Another realm even at one of this machine's addresses (two realms on one machine:
    # a second realm home and port), so a trainer named here is not this realm.
    remote: bool = False

    def all_roles(self) -> list[str]:
        return self.roles + ([self.role] if self.role and self.role not in self.roles else [])

    def url(self, service: str) -> str:
        s = self.services[service]
        return f"{s.scheme}://{self.host}:{s.port}{s.path}"

    def token(self) -> str | None:
        """The host's token, from the environment variable `token_env` names (never the file)."""
        return os.environ.get(self.token_env) if self.token_env else None


def _default_hosts() -> dict[str, Host]:
    api = "/realm/api"
    services = {"realm": Service(port=8888, path=api), "vault": Service(port=8888, path=api),
                "ledger": Service(port=8888, path=f"{api}/ledger"),
                "training": Service(port=8888, path=f"{api}/training"),
                "tavern": Service(port=8888)}
    return {"local": Host(name="This machine", host="127.0.0.1",
                          roles=["trainer", "inference", "storage"], services=services)}


LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def local_names() -> set[str]:
    names = set(LOCAL_NAMES)
    for n in (socket.gethostname(), socket.getfqdn()):
        names.add(n.lower())
    return names


@dataclass
class HostRegistry:
    hosts: dict[str, Host] = field(default_factory=_default_hosts)
    source: Path | None = None

    @classmethod
    def load(cls, home: str | os.PathLike | None = None) -> HostRegistry:
        paths = RealmPaths.at(home)
        for path in (paths.home / "hosts.toml", paths.home / "hosts.json"):
            if path.exists():
                return cls(parse_hosts(path), path)
        return cls()

    def get_host(self, host_id: str) -> Host:
        if host_id not in self.hosts:
            raise KeyError(f"no host {host_id!r} in {self.source or 'the default registry'}; "
                           f"hosts: {sorted(self.hosts)}")
        return self.hosts[host_id]

    def with_role(self, role: str) -> list[tuple[str, Host]]:
        return [(hid, h) for hid, h in self.hosts.items() if role in h.all_roles()]

    def get_service_url(self, service: str, host_id: str | None = None) -> str:
        """URL of a service: on `host_id`, else on the first host (trainer first) with it."""
        if host_id is not None:
            return self.get_host(host_id).url(service)
        ordered = sorted(self.hosts.items(), key=lambda kv: "trainer" not in kv[1].all_roles())
        for _, h in ordered:
            if service in h.services:
                return h.url(service)
        raise KeyError(f"no host offers service {service!r}")

    def token_for(self, service: str) -> str | None:
        for _, h in self.hosts.items():
            if service in h.services and h.token_env:
                return h.token()
        return os.environ.get("REALM_API_TOKEN")

    def is_trainer_local(self) -> bool:
        """True when a trainer host is this machine (or there is no trainer named), unless
        it says it is another realm (`remote = true`)."""
        trainers = self.with_role("trainer")
        return not trainers or any(not h.remote and h.host.lower() in local_names() for _, h in trainers)


def parse_hosts(path: Path) -> dict[str, Host]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not readable: {e}") from e
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, dict):
        raise ConfigError(f"{path}: expected a [hosts.<id>] table per host")
    try:
        return {hid: Host.model_validate(h) for hid, h in hosts.items()}
    except ValidationError as e:
        raise ConfigError(f"{path}: {e}") from e


def get_service_url(service: str, home: str | os.PathLike | None = None) -> str:
    return HostRegistry.load(home).get_service_url(service)


def get_host(host_id: str, home: str | os.PathLike | None = None) -> Host:
    return HostRegistry.load(home).get_host(host_id)


def is_trainer_local(home: str | os.PathLike | None = None) -> bool:
    return HostRegistry.load(home).is_trainer_local()
