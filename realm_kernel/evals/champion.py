"""The champion: the checkpoint the realm stands behind (an event keyed 'champion'; the
latest wins). Retention never deletes it."""

from __future__ import annotations

from pathlib import Path

from ..store.backup import auto_snapshot
from ..store.home import Home
from ..store.ledger import json_data
from ..store.queries import champion_row
from ..store.vault import VaultError
from .achievements import award


def champion(home: Home) -> dict | None:
    return champion_row(home.ledger)


def promote(home: Home, step: int | str) -> dict:
    """Make a checkpoint (by step or name) the champion; it must be on disk."""
    rec = home.checkpoints.get(step)
    if rec is None or not Path(rec.path).is_dir():
        raise VaultError(f"no checkpoint at step {step} on disk")
    data = {"step": rec.step, "name": rec.name, "path": rec.path, "loss": rec.loss,
            "val_loss": rec.val_loss}
    auto_snapshot(home.paths, "champion")  # the ledger as it was before the change
    home.ledger.event("champion", f"{rec.name} is the champion", json_data(data), key="champion")
    award(home.ledger)  # "First champion"
    return {"ok": True, **data}
