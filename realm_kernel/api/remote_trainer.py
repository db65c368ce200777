"""The trainer of a realm whose hosts.toml puts it on another host (a Tavern away from the
trainer): its hero, battle and skills over its REST API, its checkpoint ledger through
`RemoteLedgerClient`, read-only. Anything that would write the trainer's realm is refused
here with a message naming the host, never done to this machine's realm instead.

    [hosts.trainer]
    host = "trainer.local"
    roles = ["trainer"]
    token_env = "TRAINER_REALM_TOKEN"   # the trainer's Jupyter token
    services = { realm = { port = 8888, path = "/realm/api" } }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from ..store.hosts import HostRegistry
from ..store.remote_ledger import RemoteLedgerClient, RemoteLedgerError

SERVICE = "realm"
TIMEOUT = 10.0


class ReadOnlyRealm(PermissionError):
    """An action that would write the trainer's realm, asked on a realm away from it."""


class RemoteTrainer:
    """The trainer host `host_id` at `url` (its realm API, e.g. http://h:8888/realm/api)."""

    def __init__(self, host_id: str, url: str, token: str | None) -> None:
        self.host, self.url = host_id, url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.ledger = RemoteLedgerClient(f"{self.url}/ledger", token or "", TIMEOUT)

    def label(self) -> dict:
        return {"host": self.host, "url": self.url, "read_only": True}

    def _get(self, route: str) -> Any:
        try:
            r = requests.get(f"{self.url}/{route}", headers=self.headers, timeout=TIMEOUT)
            r.raise_for_status()
            return r.json()
        except (requests.RequestException, ValueError) as e:
            raise RemoteLedgerError(f"the trainer on {self.host} ({self.url}) did not answer "
                                    f"{route}: {e}") from e

    def tavern_state(self) -> dict:
        """The hero card's and battle view's state as the trainer computes it, each part
        labelled with the host."""
        state = self._get("tavern/state")
        state["hero"] = {**state.get("hero", {}), "host": self.host}
        state["battle"] = {**state.get("battle", {}), "host": self.host}
        return state

    def skills(self) -> list[dict]:
        return self._get("skills")

    def quest_queue(self) -> dict[str, list[dict]]:
        """The trainer's queue by state, each quest with its state (as the Quests page reads it)."""
        queue = self._get("training/queue")
        return {state: [{**e, "state": state} for e in entries] for state, entries in queue.items()}

    def tasks(self) -> list[dict]:
        return self._get("tasks")

    def curriculum(self) -> list[dict]:
        return self._get("curriculum")

    def guild(self) -> dict:
        """Per-skill levels, weak primitives and thresholds, and the passives' history. The
        per-primitive heatmap is not served over REST yet: empty."""
        guild = []
        for s in self.skills():
            report = self._get(f"skills/{s['skill']}/state")
            guild.append({**s, "weak": report["weak_primitives"], "threshold": report["threshold"],
                          "rule": report["state"]["rule"], "heatmap": []})
        return {"guild": guild, "passives": self._get("passives/history")}

    def checkpoints(self) -> list[dict]:
        """The trainer's checkpoint ledger, newest first, each row with its host."""
        return [{"asset_id": f"checkpoint_{r.step}", **r.as_dict(), "zones": [self.host]}
                for r in self.ledger.list()]

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
