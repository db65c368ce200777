"""The realm's one Oracle pool as the facade builds it: checkpoints located in the ledger
(or fetched through the vault), the inference hosts of hosts.toml, shared through the pool
owner (oracle/client.py)."""

from __future__ import annotations

from pathlib import Path

from ..oracle.client import SharedOracle
from ..oracle.inference_hosts import inference_hosts
from ..oracle.pool import ModelPool, Oracle
from ..oracle.realm_host import RealmOracleHost
from ..oracle.remote import RemoteOracle
from ..store.checkpoints import UnknownCheckpoint, checkpoint_row, list_checkpoints, locate_checkpoint
from ..store.home import Home
from ..store.shared_zone import checkpoint_by_step, shared_zone
from ..store.vault import VaultError
from .checkpoints import vault_of


def make_oracle(home: Home) -> SharedOracle:
    cfg = home.config

    def base() -> Path:
        return home.config.base_model_path(home.paths)

    def locate(step: int) -> tuple[str, Path]:
        try:
            return locate_checkpoint(home.ledger, base(), step)
        except UnknownCheckpoint as missing:
            if step == 0:
                raise
            # Not on this machine: ask the vault, which copies it from the best zone
            # (its ledger row may be gone too: the directory name is canonical).
            try:
                path = vault_of(home).fetch(f"checkpoint_{step}")
            except VaultError:
                # Nor in this realm's vault: a host that serves another realm's trainer
                # (the Oracle on another host) fetches it from the shared zone.
                if shared_zone(home.paths.home) is None:
                    raise missing from None
                path = checkpoint_by_step(home.paths.home, step, home.paths.fetched)
            return path.name, path

    def name_of(step: int) -> str:
        return checkpoint_row(home.ledger, base(), step)["name"]

    def remotes() -> dict[str, RemoteOracle | RealmOracleHost]:
        kinds = {"openai": RemoteOracle, "realm": RealmOracleHost}
        return {h.name: kinds[h.kind](h.name, h.url, name_of, h.token)
                for h in inference_hosts(home.paths.home).values()}

    pool = ModelPool(locate, cfg.oracle.max_models, cfg.oracle.max_bytes, cfg.oracle.dtype,
                     cfg.oracle.threads)
    local = Oracle(locate, pool, remotes, lambda: list_checkpoints(home.ledger, base()))
    return SharedOracle(local, home.paths.oracle_owner)
