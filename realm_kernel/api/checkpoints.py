"""`realm.checkpoints`: the checkpoints in the ledger and on disk: lookup, the champion,
deletion and export, the lineage report, retention and the one eval each awaits."""

from __future__ import annotations

import os
from pathlib import Path

from ..evals.champion import champion, promote
from ..evals.evalqueue import cleanup, evaluate_all, pending
from ..store import queries
from ..store.checkpoints import CheckpointRecord
from ..store.home import Home
from ..store.vault import VaultKeeper


def vault_of(home: Home) -> VaultKeeper:
    return VaultKeeper(home.paths, home.ledger, home.safe_config())


class Checkpoints:
    def __init__(self, home: Home) -> None:
        self.home = home

    def get(self, step: int | str) -> CheckpointRecord | None:
        return self.home.checkpoints.get(step)

    def latest(self) -> CheckpointRecord | None:
        return self.home.checkpoints.latest()

    def list(self, limit: int | None = None, skill: str | None = None) -> list[CheckpointRecord]:
        return self.home.checkpoints.list(limit, skill)

    def best(self, metric: str = "loss") -> CheckpointRecord | None:
        return self.home.checkpoints.best(metric)

    def summary(self) -> dict:
        return self.home.checkpoints.summary()

    def champion(self) -> dict | None:
        return champion(self.home)

    def promote(self, step: int | str) -> dict:
        """Make a checkpoint the champion (an event keyed 'champion'; the latest wins).
        Retention never deletes it."""
        return promote(self.home, step)

    def delete(self, step: int) -> dict:
        """Delete a checkpoint from disk; the champion and the one in use are refused."""
        return vault_of(self.home).delete_checkpoint(step)

    def export(self, step: int, dest: str | os.PathLike | None = None, merge: bool = False) -> Path:
        """A clean HF directory of a checkpoint (no optimizer/trainer state), by default
        <realm home>/exports/<checkpoint name>; `merge` folds a LoRA adapter into its base."""
        from ..train.loading import merge_adapter
        if dest is None:
            rec = self.get(step) if isinstance(step, int) and not isinstance(step, bool) else None
            dest = self.home.paths.exports / (rec.name if rec else f"checkpoint-{step}")
        return vault_of(self.home).export_checkpoint(step, dest, merge_adapter if merge else None)

    def lineage(self) -> list[dict]:
        """Which quest trained which checkpoint, with its eval (the lineage report)."""
        return queries.lineage(self.home.ledger)

    def cleanup(self, apply: bool = True) -> dict:
        """Retention through the vault, sparing every checkpoint still awaiting its eval."""
        return cleanup(self.home, vault_of(self.home), apply)

    def eval_queue(self) -> list[dict]:
        """Checkpoints waiting for their one eval, oldest first."""
        return pending(self.home)

    def evaluate_pending(self, max_checkpoints: int = 6, size: int | None = None) -> list[dict]:
        """Evaluate waiting checkpoints (each exactly once) on their skill's current
        level; records evals, per-primitive accuracy, level-ups and champions. In cluster
        mode several checkpoints are answered at once, on several nodes."""
        return evaluate_all(self.home, self.eval_queue()[:max_checkpoints], size)
