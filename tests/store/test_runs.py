"""record_run(): the one writer of `runs` rows (the daemon's start and end of a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.runs import record_run


def test_a_run_is_a_start_row_and_an_end_row_and_run_status_shows_the_end(tmp_path):
    led = Ledger(RealmPaths.at(tmp_path).ensure(), "test")
    ckpt = tmp_path / "checkpoints" / "checkpoint-10-20261206-0700"
    record_run(led, "r1", "q.jsonl", "resumed", model_path=ckpt, resume_from=ckpt, step_start=4)
    record_run(led, "r1", "q.jsonl", "completed", model_path=ckpt, step_start=4, step_end=20,
               loss=0.25, detail="x" * 5000)
    cols = "run_id, quest_id, status, model_path, resume_from, step_start, step_end, loss"
    start, end = led.query(f"SELECT {cols}, detail FROM runs ORDER BY ts")
    assert start == {"run_id": "r1", "quest_id": "q.jsonl", "status": "resumed",
                     "model_path": str(ckpt), "resume_from": str(ckpt), "step_start": 4,
                     "step_end": None, "loss": None, "detail": None}
    assert (end["status"], end["resume_from"], end["step_end"], end["loss"]) == (
        "completed", None, 20, 0.25)
    assert end["detail"] == "x" * 4000  # kept to the length the other rows keep
    assert [r["status"] for r in led.query("SELECT status FROM run_status")] == ["completed"]


def test_an_unknown_status_is_refused_and_nothing_is_written(tmp_path):
    led = Ledger(RealmPaths.at(tmp_path).ensure(), "test")
    with pytest.raises(ValueError, match="unknown run status 'queued'"):
        record_run(led, "r1", "q.jsonl", "queued", model_path=Path("m"), step_start=0)
    assert led.query("SELECT count(*) AS n FROM runs") == [{"n": 0}]
