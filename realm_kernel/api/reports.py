"""`realm.reports`: what the Tavern plots and announces: metric series, events, the
hero, achievements, ledger counts and disk usage."""

from __future__ import annotations

import shutil

from ..evals.achievements import earned
from ..evals.hero import hero_stats
from ..quests.queue import list_queue
from ..store import queries
from ..store.home import Home
from ..store.vault import dir_bytes
from .checkpoints import vault_of

SERIES = ("loss", "val_loss", "def_loss", "tokens_per_s", "learning_rate", "grad_norm")


def hero_of(home: Home) -> dict:
    """The `hero` view's facts, read from segment statistics and the newest segments only:
    this is the Tavern's poll, and metrics grow without bound."""
    led = home.ledger
    loss = led.tail("metrics", "loss", 1, notnull="loss")
    val = led.tail("metrics", "val_loss", 1, notnull="val_loss")
    fixed = led.tail("metrics", "def_loss", 1, notnull="def_loss")  # DEF's fixed held-out set
    row = {"steps": led.max_value("metrics", "step") or 0,
           "loss": loss[0]["loss"] if loss else None,
           "val_loss": val[0]["val_loss"] if val else None,
           **queries.latest_accuracy_and_completed(led)}
    return hero_stats(name=home.safe_config().hero.name, steps=row["steps"], loss=row["loss"],
                      val_loss=row["val_loss"], accuracy=row["accuracy"],
                      quests_completed=row["completed"],
                      def_loss=fixed[0]["def_loss"] if fixed else None).as_dict()


def _event(row: dict) -> dict:
    return {"ts": row["ts"].timestamp(), "kind": row["kind"], "message": row["message"]}


class Reports:
    def __init__(self, home: Home) -> None:
        self.home = home

    def series(self, column: str, limit: int = 500) -> list[list[float]]:
        """[[step, value]] of one metrics column, oldest first (the Tavern's plots)."""
        if column not in SERIES:
            raise ValueError(f"unknown metric {column!r}; expected one of {SERIES}")
        rows = self.home.ledger.tail("metrics", f"step, {column}", limit, notnull=column)
        return [[r["step"], r[column]] for r in reversed(rows)]

    def events(self, limit: int = 10) -> list[dict]:
        return [_event(r) for r in queries.recent_events(self.home.ledger, limit)]

    def alarm_steps(self, limit: int = 50) -> list[int]:
        """The steps of the newest loss alarms: marks on the battle plot."""
        return queries.loss_alarm_steps(self.home.ledger, limit)

    def notable_events(self, kinds: tuple[str, ...], limit: int = 20) -> list[dict]:
        """The newest events of these kinds (what the Tavern's toasts announce)."""
        return [_event(r) for r in queries.recent_events(self.home.ledger, limit, kinds)]

    def achievements(self) -> list[dict]:
        """Earned achievements, oldest first, each with its date."""
        return earned(self.home.ledger)

    def stats(self) -> dict:
        return {"ledger": queries.table_counts(self.home.ledger), "vault": vault_of(self.home).stats(),
                "hero": hero_of(self.home),
                "queue": {state: len(v) for state, v in list_queue(self.home.paths).items()}}

    def disk_usage(self) -> dict:
        """The realm home's disk: free/total bytes and what checkpoints take."""
        du = shutil.disk_usage(self.home.paths.home)
        ckpt = self.home.paths.checkpoints
        return {"total": du.total, "used": du.used, "free": du.free,
                "checkpoints": sum(dir_bytes(p) for p in ckpt.iterdir() if p.is_dir())
                if ckpt.exists() else 0}
