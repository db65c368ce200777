"""What recording evals writes beyond their rows (evals/grading.py, champion.py,
skillbook.py), on a real ledger: the level-up event's data, the champion the level-up
makes of its checkpoint (or, when that checkpoint is not on disk, a `champion_error`
while the level-up stands), and each primitive's best and latest in the summary."""

from __future__ import annotations

import json

import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.evals import champion, grading, skillbook
from realm_skills.evaluation import eval_problems

from ..skill_helpers import wrong_answer


@pytest.fixture
def realm(tmp_path, monkeypatch) -> Realm:
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    return Realm(tmp_path / "realm")


def record(realm: Realm, step: int | None, checkpoint: str | None, wrong_every_other: bool = False) -> dict:
    """A bin level-1 eval of the level's own batch: all right, or every other one wrong."""
    problems = eval_problems("bin", 1)
    answers = [wrong_answer(p) if wrong_every_other and i % 2 else p.answer for i, p in enumerate(problems)]
    return grading.record(realm.home, skills.run_eval("bin", 1, answers, problems=problems), step=step,
                          checkpoint=checkpoint)


def events(realm: Realm, kind: str) -> list[dict]:
    return realm.ledger.query("SELECT message, data, key FROM events WHERE kind = ? ORDER BY ts", [kind])


def test_a_level_up_says_who_rose_where_and_crowns_its_checkpoint(realm):
    name = "checkpoint-30-20261206-1200"
    folder = realm.paths.checkpoints / name
    folder.mkdir(parents=True)
    realm.ledger.append("checkpoints", [{"step": 30, "name": name, "path": str(folder), "loss": 0.5,
                                         "val_loss": 0.25}])
    recs = [record(realm, 30, name) for _ in range(3)]
    assert [(r["level_before"], r["level_after"]) for r in recs] == [(1, 1), (1, 1), (1, 2)]
    [up] = events(realm, "skill_level_up")
    assert up["key"] == "level_up:bin:2" and up["message"] == "Skill level up! BIN 2"
    assert json.loads(up["data"]) == {"skill": "bin", "level": 2, "from_level": 1, "step": 30,
                                      "checkpoint": name}
    [crowned] = events(realm, "champion")
    assert json.loads(crowned["data"]) == {"step": 30, "name": name, "path": str(folder), "loss": 0.5,
                                           "val_loss": 0.25}
    assert champion.champion(realm.home)["step"] == 30 and events(realm, "champion_error") == []


def test_a_level_up_whose_checkpoint_is_not_on_disk_stands_with_the_reason(realm):
    recs = [record(realm, 40, "checkpoint-40-x") for _ in range(3)]
    assert recs[-1]["level_after"] == 2 and len(events(realm, "skill_level_up")) == 1
    [err] = events(realm, "champion_error")
    assert err["message"] == "could not promote checkpoint-40-x: no checkpoint at step 40 on disk"
    assert champion.champion(realm.home) is None


def test_the_primitive_summary_keeps_each_primitives_best_and_latest(realm):
    record(realm, 10, "checkpoint-10-x")
    record(realm, 20, "checkpoint-20-x", wrong_every_other=True)
    latest = skillbook.primitive_accuracy(realm.ledger, "bin", 1)
    summary = {p["id"]: p for p in skillbook.primitive_summary(realm.ledger, "bin")}
    assert latest and min(latest.values()) < 1.0
    for pid, acc in latest.items():
        p = summary[pid]
        assert (p["n_evals"], p["best"], p["latest"], p["level"], p["step"]) == (2, 1.0, acc, 1, 20)
    never = [p for p in summary.values() if p["id"] not in latest]
    assert never and all(p["n_evals"] == 0 and p["best"] is None for p in never)
