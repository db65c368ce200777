"""Checkpoints: the one home for what the realm knows about them, in the spirit of
nanochat's checkpoint_manager.py.

- name: `extract_step(name)` parses any checkpoint name, path or asset id.
- the ledger's record: `CheckpointRecord` (a row of `checkpoints`), `CheckpointLedger`
  (latest / get(step) / best(metric) / list / summary; `RemoteLedgerClient` has the same
  interface over REST).
- lookup by step: `checkpoint_row`, `locate_checkpoint` (step 0 is the base model) and
  `UnknownCheckpoint`, the error for a step the realm has no checkpoint of;
  `list_checkpoints` (what the Oracle can load).
- completeness: `latest_checkpoint` is the newest complete one (the rule itself,
  `paths.checkpoint_complete`, sits below the ledger because backups need it too).
- resume state and lineage: which files an interrupted run resumes from
  (`RESUME_STATE`), whether a run ended (`run_finished`), and `resume_point`: whether the
  newest checkpoint was saved by the same quest and run (its sidecar's `training_file` and
  `run_id`); `hero_model_path`, the weights the hero has now.

The start-up repair of checkpoint directories against the ledger is
store/checkpoint_repair.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import RealmConfig
from .ledger import Ledger
from .paths import SIDECAR, RealmPaths, checkpoint_complete, is_model_dir, read_json

_STEP_RE = re.compile(r"checkpoint[-_](\d+)", re.IGNORECASE)


def extract_step(name: str | os.PathLike) -> int | None:
    """The step in any checkpoint name: `checkpoint-190000-20251127-1430`, `checkpoint-175000`,
    `checkpoint_175000` (an asset id), or a path ending in one. None when there is none."""
    text = str(name).rstrip("/")
    m = _STEP_RE.search(text.rsplit("/", 1)[-1]) or _STEP_RE.search(text)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint's stats at save time (one row of the checkpoint ledger)."""

    step: int
    name: str
    path: str
    date: str | None = None
    loss: float | None = None
    val_loss: float | None = None
    learning_rate: float | None = None
    epoch: float | None = None
    skill: str | None = None
    skill_level: int | None = None
    training_file: str | None = None
    run_id: str | None = None

    @property
    def canonical_name(self) -> str:
        return self.name

    @property
    def train_loss(self) -> float | None:  # the seed's name for it
        return self.loss

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CheckpointRecord:
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__})


# metric -> (SQL expression over checkpoint_ledger, True when lower is better)
CHECKPOINT_METRICS: dict[str, tuple[str, bool]] = {
    "loss": ("loss", True),
    "train_loss": ("loss", True),
    "val_loss": ("val_loss", True),
    "eval_loss": ("val_loss", True),
    "accuracy": ("(SELECT avg(e.accuracy) FROM evals e WHERE e.step = c.step)", False),
}


class CheckpointLedger:
    """latest / get(step) / best(metric) / list / summary over the checkpoints table.

    `RemoteLedgerClient` (realm_kernel.store.remote_ledger) has the same interface over REST."""

    _COLS = ", ".join(f"c.{f}" for f in CheckpointRecord.__dataclass_fields__)

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _records(self, where: str = "", params: Sequence[Any] = (), order: str = "c.step DESC",
                 limit: int | None = None) -> list[CheckpointRecord]:
        sql = f"SELECT {self._COLS} FROM checkpoint_ledger c {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        # kept: the Tavern's plots ask for them with every new metric, not every checkpoint
        return [CheckpointRecord.from_row(r) for r in self.ledger.kept_query(sql, list(params))]

    def latest(self) -> CheckpointRecord | None:
        rows = self._records(limit=1)
        return rows[0] if rows else None

    def get(self, step: int | str) -> CheckpointRecord | None:
        """By step, or by any checkpoint name or asset id that contains one."""
        n = int(step) if isinstance(step, int) or str(step).isdigit() else extract_step(step)
        if n is None:
            return None
        rows = self._records("WHERE c.step = ?", [n], limit=1)
        return rows[0] if rows else None

    def superseded(self) -> list[CheckpointRecord]:
        """Older saves of a step that a later save of the same step (a restarted or resumed
        run, another minute in the folder name) replaced in the view: spare folders."""
        sql = (f"SELECT DISTINCT ON (c.name) {self._COLS} FROM checkpoints c "
               "WHERE c.name NOT IN (SELECT name FROM checkpoint_ledger) ORDER BY c.name")
        return [CheckpointRecord.from_row(r) for r in self.ledger.query(sql)]

    def best(self, metric: str = "loss") -> CheckpointRecord | None:
        if metric not in CHECKPOINT_METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(CHECKPOINT_METRICS)}")
        expr, lower = CHECKPOINT_METRICS[metric]
        rows = self._records(f"WHERE {expr} IS NOT NULL",
                             order=f"{expr} {'ASC' if lower else 'DESC'}, c.step DESC", limit=1)
        return rows[0] if rows else None

    def list(self, limit: int | None = None, skill: str | None = None) -> list[CheckpointRecord]:
        """Newest first."""
        if skill:
            return self._records("WHERE c.skill = ?", [skill], limit=limit)
        return self._records(limit=limit)

    def summary(self) -> dict[str, Any]:
        row = self.ledger.query("""
            SELECT count(*) AS count, min(step) AS first_step, max(step) AS latest_step,
                   min(loss) AS best_loss, min(val_loss) AS best_val_loss,
                   count(DISTINCT skill) AS skills, min(date) AS first_date, max(date) AS latest_date
            FROM checkpoint_ledger""")[0]
        by_skill = self.ledger.query("""
            SELECT coalesce(skill, '') AS skill, count(*) AS count, max(skill_level) AS max_level,
                   min(loss) AS best_loss
            FROM checkpoint_ledger GROUP BY 1 ORDER BY 1""")
        best = self.best("loss")
        latest = self.latest()
        return {**row, "by_skill": by_skill,
                "best": best.as_dict() if best else None,
                "latest": latest.as_dict() if latest else None}

    # The seed's names, so code written against it keeps working.
    get_latest = latest
    get_best = best

    def list_all(self, limit: int | None = None) -> list[CheckpointRecord]:
        return self.list(limit)


# -- find -----------------------------------------------------------------------------

class UnknownCheckpoint(LookupError):
    """No checkpoint of that step (or of that name) exists (HTTP 404)."""


def latest_checkpoint(ledger: Ledger) -> tuple[int, Path] | None:
    """The newest complete checkpoint (sidecar, config and weights on disk): a partial
    or sidecar-less directory is never resumed from."""
    rows = ledger.query("SELECT step, path FROM checkpoints ORDER BY step DESC, ts DESC LIMIT 20")
    for row in rows:
        p = Path(row["path"])
        if checkpoint_complete(p):
            return int(row["step"]), p
    return None


def hero_model_path(ledger: Ledger, config: RealmConfig, paths: RealmPaths) -> Path:
    """The hero's current weights: the newest checkpoint, else the base model."""
    latest = latest_checkpoint(ledger)
    return latest[1] if latest else config.base_model_path(paths)


def last_checkpoint_time(ledger: Ledger) -> datetime | None:
    """When the newest checkpoint row was written (None before the first)."""
    rows = ledger.query("SELECT max(ts) AS ts FROM checkpoints")
    return rows[0]["ts"] if rows else None


def checkpoint_row(ledger: Ledger, base_model: Path, step: int) -> dict:
    """Step 0 is the base model; any other step is its latest row in `checkpoints`."""
    if step == 0:
        return {"step": 0, "name": Path(base_model).name, "path": str(base_model)}
    rows = ledger.query("SELECT step, name, path FROM checkpoints WHERE step = ? "
                        "ORDER BY ts DESC LIMIT 1", [step])
    if not rows:
        known = [r["step"] for r in ledger.query(
            "SELECT DISTINCT step FROM checkpoints ORDER BY step DESC LIMIT 20")]
        raise UnknownCheckpoint(f"no checkpoint at step {step} in the ledger; latest steps: {known}")
    return rows[0]


def locate_checkpoint(ledger: Ledger, base_model: Path, step: int) -> tuple[str, Path]:
    """(canonical name, directory) of step N, checked to be a loadable, complete model."""
    row = checkpoint_row(ledger, base_model, step)
    path = Path(row["path"])
    if not is_model_dir(path):
        raise UnknownCheckpoint(f"{row['name']} (step {step}) is not on this machine: no model at {path}")
    if step != 0 and not checkpoint_complete(path):
        raise UnknownCheckpoint(f"{row['name']} (step {step}) at {path} is incomplete "
                                "(no sidecar or no weights): it is never loaded")
    return row["name"], path


def list_checkpoints(ledger: Ledger, base_model: Path) -> list[dict]:
    """What can be loaded: step 0 (the base model) and every step in the ledger, newest first."""
    rows = ledger.query("SELECT step, name, path, loss, skill, skill_level FROM checkpoints "
                        "QUALIFY row_number() OVER (PARTITION BY step ORDER BY ts DESC) = 1 "
                        "ORDER BY step DESC")
    return [{**checkpoint_row(ledger, base_model, 0), "loss": None, "skill": None, "skill_level": None},
            *rows]


# -- resume state ---------------------------------------------------------------------

# What an interrupted run resumes from, beside the weights (HF Trainer's optimizer,
# scheduler, scaler and RNG state): only the newest checkpoint keeps it (train/keeper.py).
RESUME_STATE = ("optimizer.*", "scheduler.*", "scaler.*", "rng_state*")
# What a trainer keeps beside the weights; an exported checkpoint leaves them out.
TRAINING_STATE = (*RESUME_STATE, "trainer_state.json", "training_args.bin", SIDECAR,
                  "global_step*", ".*")


def resume_files(ckpt: Path) -> list[Path]:
    return sorted(p for g in RESUME_STATE for p in ckpt.glob(g) if p.is_file())


def carries_resume_state(ckpt: Path) -> bool:
    return (ckpt / "optimizer.pt").exists() or (ckpt / "optimizer.bin").exists()


def run_finished(max_steps: int, global_step: int) -> bool:
    """A run trained to its max_steps: nothing resumes into its last save (the next quest
    starts a fresh optimizer), so that save needs no resume state."""
    return 0 < max_steps <= global_step


def resume_point(ledger: Ledger, quest: str, run_id: str | None) -> tuple[Path, int] | None:
    """Where an interrupted run of `quest` picks up: (checkpoint, step offset) when the
    hero's newest checkpoint was saved by that run and holds the trainer state (optimizer,
    scheduler, data position), or is that run's final, weights-only save (trained to its
    max_steps: resuming trains nothing and ends the quest). None when training moved on
    since: the quest then starts again on the newest weights."""
    latest = latest_checkpoint(ledger)
    if not latest or not run_id:
        return None
    step, path = latest
    sidecar = read_json(path / SIDECAR, {}) or {}
    state = read_json(path / "trainer_state.json", {}) or {}
    if sidecar.get("training_file") != quest or sidecar.get("run_id") != run_id:
        return None
    if "global_step" not in state:
        return None
    finished = run_finished(int(state.get("max_steps") or 0), int(state["global_step"]))
    if not finished and not carries_resume_state(path):
        return None
    return path, step - int(state["global_step"])
