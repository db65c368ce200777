"""The forgetting watch's history (evals/forgetting.py `history`, `due`, `find_drops`) from
probe rows of known accuracy and cost: each passive's points, best, latest and drop
against its best earlier run, one passive alone, and what the probe runs cost."""

from __future__ import annotations

import pytest

from realm_kernel.api import Realm
from realm_kernel.evals import forgetting
from realm_kernel.store.config import WatchConfig
from realm_skills.catalog import catalog


@pytest.fixture
def realm(tmp_path, monkeypatch) -> Realm:
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    return Realm(tmp_path / "realm")


def probe_run(realm: Realm, run_id: str, step: int, seconds: float, scores: dict[str, tuple[int, int]],
              reason: str = "every_n") -> None:
    """One probe run: per passive (correct, n), on that passive's first primitive."""
    first = {}
    for pid, p in sorted(catalog().primitives.items()):
        first.setdefault(p.passive, pid)
    realm.ledger.append("passive_probes", [
        {"run_id": run_id, "step": step, "checkpoint": f"checkpoint-{step}", "reason": reason,
         "passive": passive, "primitive_id": first[passive], "n": n, "correct": ok,
         "accuracy": ok / n if n else 0.0, "seconds": seconds}
        for passive, (ok, n) in scores.items()])


def test_each_passive_is_drawn_with_its_best_latest_and_drop(realm):
    probe_run(realm, "r1", 100, 2.0, {"memory": (4, 4), "logic": (2, 4)}, reason="champion")
    probe_run(realm, "r2", 200, 4.0, {"memory": (2, 4), "logic": (2, 4)})
    probe_run(realm, "r3", 300, 6.0, {"memory": (3, 4)})
    hist = forgetting.history(realm.ledger)
    assert (hist["probe_runs"], hist["mean_seconds"], hist["max_seconds"], hist["total_seconds"]) == (
        3, 4.0, 6.0, 12.0)
    assert hist["drop_points"] == 10.0
    rows = {p["passive"]: p for p in hist["passives"]}
    assert list(rows) == [p.id for p in catalog().passives], "every passive, in the catalog's order"
    mem = rows["memory"]
    assert mem["name"] == next(p.name for p in catalog().passives if p.id == "memory")
    assert [(pt["step"], pt["accuracy"], pt["reason"]) for pt in mem["points"]] == [
        (100, 1.0, "champion"), (200, 0.5, "every_n"), (300, 0.75, "every_n")]
    assert (mem["latest"], mem["best"], mem["drop"]) == (0.75, 1.0, True)
    logic = rows["logic"]
    assert (logic["latest"], logic["best"], logic["drop"]) == (0.5, 0.5, False)
    untouched = next(p for pid, p in rows.items() if pid not in ("memory", "logic"))
    assert (untouched["points"], untouched["latest"], untouched["best"], untouched["drop"]) == (
        [], None, None, False)
    # A drop is more than drop_points below the best earlier run.
    assert not {p["passive"]: p for p in forgetting.history(realm.ledger, drop_points=25.0)["passives"]}[
        "memory"]["drop"]
    assert {p["passive"]: p for p in forgetting.history(realm.ledger, drop_points=24.0)["passives"]}[
        "memory"]["drop"]
    alone = forgetting.history(realm.ledger, "logic")
    assert [p["passive"] for p in alone["passives"]] == ["logic"] and len(alone["passives"][0]["points"]) == 2


def test_drops_are_measured_against_the_best_earlier_run(realm):
    probe_run(realm, "r1", 100, 1.0, {"memory": (4, 4), "logic": (3, 4)})
    probe_run(realm, "r2", 200, 1.0, {"memory": (3, 4), "logic": (3, 4)})
    assert forgetting.find_drops(realm.ledger, "r2", 30.0) == []
    assert forgetting.find_drops(realm.ledger, "r2", 20.0) == [
        {"passive": "memory", "accuracy": 0.75, "best": 1.0}]
    assert forgetting.find_drops(realm.ledger, "r1", 0.0) == [], "a first run drops from nothing"


def test_a_probe_is_due_for_a_champion_and_every_nth_eval(realm):
    led = realm.ledger
    on = WatchConfig(enabled=True, every_n_evals=2)
    assert forgetting.due(led, WatchConfig(enabled=False), True) is None
    assert forgetting.due(led, on, True) == "champion"
    led.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.5, "n": 2, "correct": 1}])
    assert forgetting.due(led, on, False) is None, "1 eval: not the 2nd"
    led.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.5, "n": 2, "correct": 1}])
    assert forgetting.due(led, on, False) == "every_n"
    assert forgetting.due(led, WatchConfig(enabled=True, every_n_evals=0), False) is None, "0: champions only"
