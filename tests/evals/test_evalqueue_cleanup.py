"""The eval queue's retention pass (`evalqueue.cleanup`) on a real ledger and real
checkpoint folders: it deletes what the vault's plan deletes (each deletion said to be
cleanup's), never a checkpoint still awaiting its eval (the plan keeps it, and cleanup
checks again), keeps one the vault refuses to delete with the reason, and a dry run
deletes nothing. No fast test reached it (mutmut found every mutant of it untested:
tests/test_mutation_figures.py, docs/testing.md)."""

from __future__ import annotations

import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue
from realm_kernel.store.paths import RealmPaths


def _checkpoint(paths, step: int, loss: float) -> dict:
    name = f"checkpoint-{step}-20260101-1200"
    d = paths.checkpoints / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w" * step)
    return {"step": step, "name": name, "path": str(d), "loss": loss}


@pytest.fixture
def realm(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    r = Realm(paths.home)
    assert r.settings.save({"retention.keep_best": 1, "retention.keep_latest": 1,
                            "retention.keep_every": 0})["ok"]
    rows = [_checkpoint(paths, s, loss) for s, loss in ((10, 2.0), (20, 0.4), (30, 1.5), (40, 1.0),
                                                        (50, 0.9))]
    r.ledger.append("checkpoints", rows)
    return r


def _request_eval(realm, step: int) -> None:
    name = f"checkpoint-{step}-20260101-1200"
    realm.ledger.event("eval_requested", f"Evaluate {name}", json.dumps(
        {"checkpoint": name, "step": step, "path": str(realm.paths.checkpoints / name)}))


def _on_disk(realm) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in realm.paths.checkpoints.iterdir() if p.is_dir())


def test_cleanup_deletes_the_plan_but_spares_a_checkpoint_awaiting_its_eval(realm):
    plan = realm.vault.retention_plan()
    assert sorted(d["step"] for d in plan["delete"]) == [10, 30, 40]  # best 20, latest 50 kept
    _request_eval(realm, 30)
    done = evalqueue.cleanup(realm.home, realm.vault)
    assert sorted(done["deleted"]) == [10, 40]
    assert done["dry_run"] is False
    keep = {k["step"]: k["reasons"] for k in done["keep"]}
    assert sorted(keep) == [20, 30, 50] and "awaiting its eval" in keep[30]
    assert _on_disk(realm) == [20, 30, 50]
    assert [e["step"] for e in evalqueue.pending(realm.home)] == [30]
    said = [json.loads(r["data"]) for r in realm.ledger.query(
        "SELECT data FROM events WHERE kind = 'checkpoint_deleted'")]
    assert sorted((d["step"], d["by"]) for d in said) == [(10, "cleanup"), (40, "cleanup")]


def test_a_planned_checkpoint_the_vault_refuses_is_kept_and_the_pass_goes_on(realm, tmp_path):
    """A checkpoint row whose folder lies outside the realm home: the plan deletes it, the
    vault refuses (it deletes only the realm home's checkpoints); cleanup keeps it, says
    why, and deletes the rest."""
    outside = tmp_path / "elsewhere" / "checkpoint-15-20260101-1200"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    realm.ledger.append("checkpoints", [{"step": 15, "name": outside.name, "path": str(outside),
                                         "loss": 3.0}])
    assert sorted(d["step"] for d in realm.vault.retention_plan()["delete"]) == [10, 15, 30, 40]
    done = evalqueue.cleanup(realm.home, realm.vault)
    assert sorted(done["deleted"]) == [10, 30, 40] and done["kept_waiting_or_protected"] == [15]
    assert outside.is_dir() and _on_disk(realm) == [20, 50]
    [said] = realm.ledger.query("SELECT message FROM events WHERE kind = 'cleanup_skipped'")
    assert said["message"].startswith(f"kept step 15: checkpoint {outside.name} lives outside ")


def test_cleanup_dry_run_deletes_nothing_and_lists_every_planned_step(realm):
    done = evalqueue.cleanup(realm.home, realm.vault, apply=False)
    assert done["deleted"] == [] and done["dry_run"] is True
    assert sorted(done["kept_waiting_or_protected"]) == [10, 30, 40]
    assert _on_disk(realm) == [10, 20, 30, 40, 50]
