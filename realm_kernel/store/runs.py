"""The one writer of `runs` ledger rows: a training run's state when it starts (or
resumes) and when it ends. The daemon calls it; the row's shape is decided here only."""

from __future__ import annotations

from pathlib import Path

from .ledger import Ledger

RUN_STATUSES = ("started", "resumed", "completed", "stopped", "failed", "skipped")


def record_run(ledger: Ledger, run_id: str, quest_id: str, status: str, *,
               model_path: str | Path, step_start: int, resume_from: str | Path | None = None,
               step_end: int | None = None, loss: float | None = None,
               detail: str | None = None) -> None:
    """Append one `runs` row. `model_path` is the weights the run started from,
    `resume_from` the checkpoint of this same run it continued (None for a fresh run)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
    ledger.append("runs", [{"run_id": run_id, "quest_id": quest_id, "status": status,
                            "model_path": str(model_path),
                            "resume_from": str(resume_from) if resume_from else None,
                            "step_start": step_start, "step_end": step_end, "loss": loss,
                            "detail": detail[:4000] if detail is not None else None}])
