"""The trainer of a realm whose hosts.toml puts it on another host (a Tavern away from the
trainer): everything its pages show, read over the trainer's REST API with the token from
the host's token_env, never from a copy of its files (`ledger`, its checkpoint ledger
through `RemoteLedgerClient`, is there for callers of the API; the Vault page reads the
same rows with their zones from `GET checkpoints`). Anything that would write the
trainer's realm is refused here with a message naming the host, never done to this
machine's realm instead.

    [hosts.trainer]
    host = "trainer.local"
    roles = ["trainer"]
    token_env = "TRAINER_REALM_TOKEN"   # the trainer's Jupyter token
    services = { realm = { port = 8888, path = "/realm/api" } }

`RemoteTrainer`'s `tavern_state`, `vault_marks` and its `skills`, `reports`, `quests`,
`training`, `tasks`, `settings` and `vault` answer the read methods the pages call on
`Realm` of the same names, with the same values, so a page reads `self.trainer or
self.realm` alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ..store.hosts import HostRegistry
from ..store.remote_ledger import RemoteLedgerClient, RemoteLedgerError

SERVICE = "realm"
# (connect, read) seconds: a host that is off answers no connect, and a page must not hang
# on it for long.
TIMEOUT = (3.0, 10.0)
# After a failed request, later ones fail at once for this long (the trainer's message
# kept): a page's several reads cost one timeout, not one each, while it is away.
RETRY_AFTER_S = 2.0


class ReadOnlyRealm(PermissionError):
    """An action that would write the trainer's realm, asked on a realm away from it."""


class _Reads:
    """One sub-facade's reads on the trainer: each method a GET of its route."""

    def __init__(self, get: Callable[..., Any]) -> None:
        self._get = get


class _Skills(_Reads):
    def list(self, levels: bool = True) -> list[dict]:
        return self._get("skills")

    def eval_report(self, skill: str) -> dict:
        return self._get(f"skills/{quote(skill, safe='')}/state")

    def primitive_history(self, skill: str) -> dict:
        return self._get(f"skills/{quote(skill, safe='')}/primitives/history")

    def passive_history(self) -> dict:
        return self._get("passives/history")

    def curriculum(self) -> list[dict]:
        return self._get("curriculum")


class _Reports(_Reads):
    def achievements(self) -> list[dict]:
        return self._get("achievements")["achievements"]

    def notable_events(self, kinds: tuple[str, ...]) -> list[dict]:
        return self._get("events/notable", kinds=",".join(kinds))["events"]


class _Quests(_Reads):
    def queue(self) -> dict[str, list[dict]]:
        return self._get("training/queue")

    def sizes(self) -> dict[str, int]:
        return self._get("quests/sizes")["sizes"]


class _Training(_Reads):
    def seconds_per_example(self) -> float | None:
        return self._get("quests/sizes")["seconds_per_example"]


class _Tasks(_Reads):
    def list(self) -> list[dict]:
        return self._get("tasks")

    def cluster(self) -> dict:
        return self._get("cluster")


class _Settings(_Reads):
    def describe(self) -> dict:
        return self._get("settings")


class _Vault(_Reads):
    def checkpoints(self) -> list[dict]:
        return self._get("checkpoints")["checkpoints"]


class RemoteTrainer:
    """The trainer host `host_id` at `url` (its realm API, e.g. http://h:8888/realm/api)."""

    def __init__(self, host_id: str, url: str, token: str | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.url = host_id, url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.ledger = RemoteLedgerClient(f"{self.url}/ledger", token or "", TIMEOUT)
        self.clock = clock
        self.error: str | None = None  # the last request's failure; None once one answers
        self._failed_at: float | None = None
        get = self._get
        self.skills, self.reports, self.quests = _Skills(get), _Reports(get), _Quests(get)
        self.training, self.tasks = _Training(get), _Tasks(get)
        self.settings, self.vault = _Settings(get), _Vault(get)

    def label(self) -> dict:
        """What every page says about whose hero it shows, and whether that host answers."""
        return {"host": self.host, "url": self.url, "read_only": True, "error": self.error}

    def _get(self, route: str, **params: Any) -> Any:
        if self._failed_at is not None and self.clock() - self._failed_at < RETRY_AFTER_S:
            raise RemoteLedgerError(self.error or f"the trainer on {self.host} did not answer")
        try:
            r = requests.get(f"{self.url}/{route}", params=params, headers=self.headers, timeout=TIMEOUT)
            r.raise_for_status()
            out = r.json()
        except (requests.RequestException, ValueError) as e:
            self.error = f"the trainer on {self.host} ({self.url}) did not answer {route}: {e}"
            self._failed_at = self.clock()
            raise RemoteLedgerError(self.error) from e
        self.error, self._failed_at = None, None
        return out

    def tavern_state(self) -> dict:
        """The hero card's and battle view's state as the trainer computes it, each part
        labelled with the host."""
        state = self._get("tavern/state")
        state["hero"] = {**state.get("hero", {}), "host": self.host}
        state["battle"] = {**state.get("battle", {}), "host": self.host}
        return state

    def vault_marks(self) -> dict:
        """`Realm.vault_marks` on the trainer: its protected steps, champion, zones, disk."""
        return self._get("vault/marks")

    def oracle_checkpoints(self) -> list[dict]:
        """What the trainer's Oracle can load: step 0 (its base model) and its checkpoints."""
        return self._get("oracle/checkpoints")["checkpoints"]

    def refuse(self, action: str) -> None:
        raise ReadOnlyRealm(f"{action}: read-only here: the hero trains on {self.host} ({self.url}); "
                            f"do this on that host's Tavern")


def remote_trainer(home: Path) -> RemoteTrainer | None:
    """The trainer named in hosts.toml when it is not this realm, else None (no
    hosts.toml, or a trainer on this machine: the realm as it always was)."""
    registry = HostRegistry.load(home)
    if registry.is_trainer_local():
        return None
    for host_id, h in registry.with_role("trainer"):
        if SERVICE in h.services:
            return RemoteTrainer(host_id, h.url(SERVICE), h.token())
    return None
