"""RemoteLedgerClient: the checkpoint ledger over the REST API, with the same interface
as `CheckpointLedger` (latest, get, best, list, summary), for hosts without the realm
home on disk. `get_ledger_client()` picks local or remote through the host registry."""

from __future__ import annotations

import os
from typing import Any

import requests

from .checkpoints import CheckpointLedger, CheckpointRecord
from .hosts import HostRegistry
from .ledger import Ledger
from .paths import RealmPaths


class RemoteLedgerError(RuntimeError):
    pass


class RemoteLedgerClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        """`url` is the ledger service, e.g. http://trainer.local:8888/realm/api/ledger;
        `token` the Jupyter server's token (default: $REALM_API_TOKEN)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        token = token if token is not None else os.environ.get("REALM_API_TOKEN")
        if token:
            self.session.headers["Authorization"] = f"token {token}"

    def _get(self, path: str = "", **params: Any) -> Any:
        try:
            r = self.session.get(self.url + path, timeout=self.timeout,
                                 params={k: v for k, v in params.items() if v is not None})
        except requests.RequestException as e:
            raise RemoteLedgerError(f"ledger API at {self.url} unreachable: {e}") from e
        if r.status_code == 404:
            return None
        if not r.ok:
            try:
                message = r.json().get("error", r.text)
            except ValueError:
                message = r.text[:200]
            raise RemoteLedgerError(f"ledger API {r.status_code}: {message}")
        return r.json()

    @staticmethod
    def _record(data: dict | None) -> CheckpointRecord | None:
        return CheckpointRecord.from_row(data) if data else None

    def is_available(self) -> bool:
        try:
            self._get("/summary")
            return True
        except RemoteLedgerError:
            return False

    def latest(self) -> CheckpointRecord | None:
        rows = self.list(limit=1)
        return rows[0] if rows else None

    def get(self, step: int | str) -> CheckpointRecord | None:
        return self._record(self._get(f"/{step}"))

    def best(self, metric: str = "loss") -> CheckpointRecord | None:
        return self._record(self._get("/best", metric=metric))

    def list(self, limit: int | None = None, skill: str | None = None) -> list[CheckpointRecord]:
        data = self._get("", limit=limit, skill=skill) or {}
        return [CheckpointRecord.from_row(r) for r in data.get("checkpoints", [])]

    def summary(self) -> dict[str, Any]:
        return self._get("/summary") or {}

    get_latest = latest
    get_best = best

    def list_all(self, limit: int | None = None) -> list[CheckpointRecord]:
        return self.list(limit)


def get_ledger_client(home: str | os.PathLike | None = None
                      ) -> CheckpointLedger | RemoteLedgerClient:
    """The local checkpoint ledger on the trainer, the REST one anywhere else."""
    registry = HostRegistry.load(home)
    if registry.is_trainer_local():
        return CheckpointLedger(Ledger(RealmPaths.at(home)))
    return RemoteLedgerClient(registry.get_service_url("ledger"), registry.token_for("ledger"))
