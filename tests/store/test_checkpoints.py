"""store/checkpoints.py: names, the checkpoint ledger, lookup by step (and its error),
completeness, resume state and the hero's current weights."""

import json
from pathlib import Path

import pytest

from realm_kernel.store.checkpoints import (
    CheckpointLedger,
    UnknownCheckpoint,
    carries_resume_state,
    checkpoint_row,
    extract_step,
    hero_model_path,
    last_checkpoint_time,
    latest_checkpoint,
    list_checkpoints,
    locate_checkpoint,
    resume_files,
    resume_point,
    run_finished,
)
from realm_kernel.store.home import Home
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import SIDECAR, RealmPaths


def make(tmp_path) -> Ledger:
    return Ledger(RealmPaths.at(tmp_path).ensure(), "test")


def on_disk(led: Ledger, step: int, *parts: str) -> Path:
    """A checkpoint directory holding `parts` (empty files) and its ledger row."""
    d = led.paths.home / "ck" / f"checkpoint-{step}"
    d.mkdir(parents=True)
    for name in parts:
        (d / name).write_text("{}")
    led.append("checkpoints", [{"step": step, "path": str(d), "name": d.name}])
    return d


WHOLE = (SIDECAR, "config.json", "model.safetensors")

@pytest.mark.parametrize("name, step", [
    ("checkpoint-190000-20251127-1430", 190000), ("checkpoint-175000", 175000),
    ("checkpoint_175000", 175000), ("/x/checkpoints/checkpoint-12-20260101-0000/", 12),
    ("models/checkpoint-7", 7), ("dio-mini", None), ("", None),
])
def test_extract_step(name, step):
    assert extract_step(name) == step


def test_checkpoint_ledger_api(tmp_path):
    led = make(tmp_path)
    cl = CheckpointLedger(led)
    assert cl.latest() is None and cl.best() is None and cl.list() == []
    assert cl.summary()["count"] == 0
    rows = [{"step": s, "name": f"checkpoint-{s}-20260101-1200", "path": f"/c/{s}", "loss": loss,
             "val_loss": v, "skill": "bin", "skill_level": s // 20 + 1}
            for s, loss, v in ((10, 1.0, 1.2), (20, 0.5, 0.9), (30, 0.7, 0.6))]
    led.append("checkpoints", rows)
    # A resumed run saves step 30 again: the newest save is the one the ledger shows.
    led.append("checkpoints", [{**rows[2], "loss": 0.65}])
    led.append("evals", [{"step": 10, "accuracy": 0.9}, {"step": 30, "accuracy": 0.4}])
    assert cl.latest().step == 30 and cl.latest().loss == 0.65
    assert cl.get(20).canonical_name == "checkpoint-20-20260101-1200" and cl.get(20).train_loss == 0.5
    assert cl.get("checkpoint-20-20260101-1200").step == 20 and cl.get("checkpoint_10").step == 10
    assert cl.get(99) is None and cl.get("nonsense") is None
    assert cl.best("loss").step == 20 and cl.best("train_loss").step == 20
    assert cl.best("val_loss").step == 30 and cl.best("accuracy").step == 10
    with pytest.raises(ValueError, match="unknown metric"):
        cl.best("vibes")
    assert [r.step for r in cl.list()] == [30, 20, 10] and len(cl.list(limit=2)) == 2
    s = cl.summary()
    assert s["count"] == 3 and s["latest_step"] == 30 and s["best"]["step"] == 20
    assert s["by_skill"] == [{"skill": "bin", "count": 3, "max_level": 2, "best_loss": 0.5}]
    assert cl.get_latest() == cl.latest() and cl.list_all(1) == cl.list(1)


def test_latest_checkpoint_is_the_newest_complete_one(tmp_path):
    led = make(tmp_path)
    assert latest_checkpoint(led) is None
    whole = on_disk(led, 10, *WHOLE)
    assert latest_checkpoint(led) == (10, whole)
    on_disk(led, 30, "config.json", "model.safetensors")  # no sidecar: published half-way
    on_disk(led, 20, SIDECAR, "model.safetensors")  # no config
    on_disk(led, 25, SIDECAR, "config.json")  # no weights
    assert latest_checkpoint(led) == (10, whole)
    adapter = on_disk(led, 15, SIDECAR, "adapter_config.json", "adapter_model.safetensors")
    assert latest_checkpoint(led) == (15, adapter)  # a LoRA adapter checkpoint counts
    for step in range(100, 120):  # only the newest 20 rows are looked at
        on_disk(led, step, "config.json")
    assert latest_checkpoint(led) is None


def test_an_unknown_step_raises_unknown_checkpoint_naming_the_latest_steps(tmp_path):
    led = make(tmp_path)
    base = tmp_path / "base-model"
    assert checkpoint_row(led, base, 0) == {"step": 0, "name": "base-model", "path": str(base)}
    with pytest.raises(UnknownCheckpoint, match=r"no checkpoint at step 7 in the ledger; latest steps: \[\]"):
        checkpoint_row(led, base, 7)
    on_disk(led, 10, *WHOLE)
    on_disk(led, 20, *WHOLE)
    with pytest.raises(UnknownCheckpoint, match=r"latest steps: \[20, 10\]"):
        locate_checkpoint(led, base, 7)
    assert issubclass(UnknownCheckpoint, LookupError)  # the REST layer answers 404


def test_locate_checkpoint_returns_only_complete_models(tmp_path):
    led = make(tmp_path)
    base = tmp_path / "base-model"
    with pytest.raises(UnknownCheckpoint, match="not on this machine"):
        locate_checkpoint(led, base, 0)  # step 0 with no base model on disk
    base.mkdir()
    (base / "config.json").write_text("{}")
    assert locate_checkpoint(led, base, 0) == ("base-model", base)
    good = on_disk(led, 5, *WHOLE)
    assert locate_checkpoint(led, base, 5) == (good.name, good)
    on_disk(led, 6, "config.json", "model.safetensors")  # no sidecar
    with pytest.raises(UnknownCheckpoint, match="incomplete"):
        locate_checkpoint(led, base, 6)
    on_disk(led, 8, SIDECAR)
    with pytest.raises(UnknownCheckpoint, match="not on this machine"):
        locate_checkpoint(led, base, 8)


def test_list_checkpoints_has_the_base_model_then_each_step_once_newest_first(tmp_path):
    led = make(tmp_path)
    base = tmp_path / "base-model"
    assert list_checkpoints(led, base) == [
        {"step": 0, "name": "base-model", "path": str(base), "loss": None, "skill": None,
         "skill_level": None}]
    led.append("checkpoints", [{"step": 10, "name": "a", "path": "/a", "loss": 1.0}])
    led.append("checkpoints", [{"step": 20, "name": "b", "path": "/b", "loss": 0.5}])
    led.append("checkpoints", [{"step": 10, "name": "a2", "path": "/a2", "loss": 0.9}])  # re-saved
    rows = list_checkpoints(led, base)
    assert [(r["step"], r["name"]) for r in rows] == [(0, "base-model"), (20, "b"), (10, "a2")]


def test_last_checkpoint_time_is_the_newest_rows_time(tmp_path):
    led = make(tmp_path)
    assert last_checkpoint_time(led) is None
    led.append("checkpoints", [{"step": 1, "name": "a", "path": "/a"}])
    first = last_checkpoint_time(led)
    led.append("checkpoints", [{"step": 2, "name": "b", "path": "/b"}])
    assert first is not None and last_checkpoint_time(led) >= first


def test_resume_state_files_and_a_finished_run(tmp_path):
    d = tmp_path / "checkpoint-3"
    d.mkdir()
    (d / "model.safetensors").write_text("w")
    assert not carries_resume_state(d) and resume_files(d) == []
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (d / name).write_text("s")
    assert carries_resume_state(d)
    assert [p.name for p in resume_files(d)] == ["optimizer.pt", "rng_state.pth", "scheduler.pt"]
    assert run_finished(30, 30) and run_finished(30, 31)
    assert not run_finished(30, 29) and not run_finished(0, 5), "max_steps 0: no limit"


def fake_checkpoint(home: Home, step: int, quest: str, run_id: str, global_step: int | None = 10,
                    optimizer: bool = True) -> Path:
    """A complete checkpoint directory (sidecar, config, weights) and its ledger row."""
    d = home.paths.checkpoints / f"checkpoint-{step}-20260101-1200"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w")
    (d / SIDECAR).write_text(json.dumps({"step": step, "training_file": quest, "run_id": run_id}))
    if global_step is not None:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": global_step}))
    if optimizer:
        (d / "optimizer.pt").write_bytes(b"o")
    home.ledger.append("checkpoints", [{"step": step, "name": d.name, "path": str(d)}])
    return d


def test_resume_point_only_for_the_same_quest_and_run_with_trainer_state(tmp_path):
    """An interrupted run resumes from the hero's newest checkpoint only when that run
    saved it with its trainer state; the offset is the steps trained before the run."""
    home = Home(tmp_path / "realm")
    led = home.ledger
    assert resume_point(led, "q.jsonl", "run-1") is None  # no checkpoint yet
    base = home.config.base_model_path(home.paths)
    assert hero_model_path(led, home.config, home.paths) == base
    d = fake_checkpoint(home, 130, "q.jsonl", "run-1", global_step=30)
    assert resume_point(led, "q.jsonl", "run-1") == (d, 100)
    assert hero_model_path(led, home.config, home.paths) == d
    assert resume_point(led, "q.jsonl", None) is None
    assert resume_point(led, "q.jsonl", "run-2") is None, "another run"
    assert resume_point(led, "other.jsonl", "run-1") is None, "another quest"
    (d / "optimizer.pt").unlink()
    assert resume_point(led, "q.jsonl", "run-1") is None, "no optimizer state"
    # A run's final save is weights-only: resuming it trains nothing and ends the quest.
    (d / "trainer_state.json").write_text(json.dumps({"global_step": 30, "max_steps": 30}))
    assert resume_point(led, "q.jsonl", "run-1") == (d, 100)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": 30, "max_steps": 40}))
    assert resume_point(led, "q.jsonl", "run-1") is None, "mid-run without state"
    newer = fake_checkpoint(home, 140, "q.jsonl", "run-1", global_step=None)
    assert resume_point(led, "q.jsonl", "run-1") is None, "no trainer state"
    assert hero_model_path(led, home.config, home.paths) == newer
