"""The forgetting watch: a fixed probe set over every passive, per-primitive ledger rows,
drops flagged against each passive's best, review quests queued, probes on champions and
every Nth evaluated checkpoint of a real dio-mini checkpoint."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue, forgetting
from realm_kernel.store.config import ConfigError, load_config
from realm_skills.catalog import catalog

from ..helpers import TEST_TOML
from ..skill_helpers import wrong_answer


@pytest.fixture
def realm(tmp_path, monkeypatch) -> Realm:
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    return Realm(tmp_path / "realm")


def answerer(wrong_passive: str | None = None):
    """Golden answers, except wrong ones for one passive's primitives."""
    def ask(questions, golden):
        by_q = {p.question: p for p in forgetting.probe_set(2, 20261201)}
        return [wrong_answer(by_q[q]) if catalog().primitive(by_q[q].primitive_id).passive == wrong_passive
                else g for q, g in zip(questions, golden, strict=True)]
    return ask


def test_probe_set_is_fixed_and_covers_every_primitive():
    a, b = forgetting.probe_set(2, 7), forgetting.probe_set(2, 7)
    assert [p.question for p in a] == [p.question for p in b]
    assert Counter(p.primitive_id for p in a) == {pid: 2 for pid in catalog().primitives}
    assert len({catalog().primitive(p.primitive_id).passive for p in a}) == 11


def test_probe_rows_drop_flag_and_review_quest(realm):
    first = forgetting.run_probe(realm.home, answerer(), 100, "checkpoint-100-x", "champion")
    assert first["accuracy"] == 1.0 and first["n"] == 120 and first["drops"] == []
    rows = realm.sql("SELECT passive, primitive_id, n, correct, seconds, reason, step "
                     "FROM passive_probes")
    assert len(rows) == 60 and {r["reason"] for r in rows} == {"champion"}
    assert all(r["n"] == 2 and r["correct"] == 2 and r["seconds"] >= 0 for r in rows)
    second = forgetting.run_probe(realm.home, answerer("memory"), 200, "checkpoint-200-x", "every_n")
    assert [d["passive"] for d in second["drops"]] == ["memory"]
    assert second["drops"][0]["accuracy"] == 0.0 and second["drops"][0]["best"] == 1.0
    ev = realm.sql("SELECT data FROM events WHERE kind = 'passive_drop'")
    assert len(ev) == 1 and json.loads(ev[0]["data"])["step"] == 200
    review = second["drops"][0]["review_quest"]
    assert review.startswith("review-memory-") and (realm.paths.inbox / review).is_file()
    lines = [json.loads(x) for x in (realm.paths.inbox / review).read_text().splitlines()]
    assert {x["meta"]["primitive_id"] for x in lines} == {p for p in catalog().primitives
                                                          if p.startswith("memory_")}
    hist = forgetting.history(realm.ledger)
    mem = next(p for p in hist["passives"] if p["passive"] == "memory")
    assert [pt["step"] for pt in mem["points"]] == [100, 200] and mem["drop"]
    assert [pt["accuracy"] for pt in mem["points"]] == [1.0, 0.0]
    assert not next(p for p in hist["passives"] if p["passive"] == "logic")["drop"]
    assert hist["probe_runs"] == 2
    # A recovery is no new drop; the best stays the best.
    third = forgetting.run_probe(realm.home, answerer(), 300, "checkpoint-300-x", "every_n")
    assert third["drops"] == [] and not forgetting.history(realm.ledger)["passives"][0]["drop"]


def test_the_eval_queues_watch_sums_up_each_probe_and_records_a_failed_one(realm):
    """evalqueue.watch, as an eval calls it for a new champion: the probe's summary with
    the passives that dropped; a probe whose answering fails is recorded, never raised."""
    first = evalqueue.watch(realm.home, answerer(), 100, "checkpoint-100-x", champion=True)
    assert set(first) == {"run_id", "reason", "n", "accuracy", "seconds", "drops"}
    assert (first["reason"], first["n"], first["accuracy"], first["drops"]) == ("champion", 120, 1.0, [])
    second = evalqueue.watch(realm.home, answerer("memory"), 200, "checkpoint-200-x", champion=True)
    assert second["drops"] == ["memory"] and second["accuracy"] < 1.0

    def broken(questions, golden):
        raise RuntimeError("the answering card fell off")

    failed = evalqueue.watch(realm.home, broken, 300, "checkpoint-300-x", champion=True)
    assert failed == {"error": "the answering card fell off"}
    said = realm.sql("SELECT message FROM events WHERE kind = 'probe_error'")
    assert said == [{"message": "passive probe of checkpoint-300-x failed: the answering card fell off"}]


def test_watch_settings_are_checked(realm_home):
    realm_home.config_file.write_text(TEST_TOML + "\n[watch]\nper_primitive = 0\n")
    with pytest.raises(ConfigError, match="watch.per_primitive"):
        load_config(realm_home.home)


@pytest.mark.slow
def test_a_real_checkpoint_is_probed_as_champion_and_every_nth(realm_home):
    realm_home.config_file.write_text(TEST_TOML + "\n[watch]\nevery_n_evals = 2\nper_primitive = 1\n")
    realm = Realm(realm_home.home)
    req = {"checkpoint": "checkpoint-10-x", "step": 10, "path": str(realm_home.dio_mini), "skill": "bin"}
    first = evalqueue.evaluate(realm.home, req, size=4, threads=1)
    assert first["status"] == "done" and first["probe"] is None  # 1 eval: not the 2nd, no champion
    second = evalqueue.evaluate(realm.home, {**req, "checkpoint": "checkpoint-20-x", "step": 20}, size=4,
                                threads=1)
    probe = second["probe"]
    assert probe["reason"] == "every_n" and probe["n"] == 60 and probe["seconds"] > 0
    rows = realm.sql("SELECT DISTINCT step, checkpoint, reason FROM passive_probes")
    assert rows == [{"step": 20, "checkpoint": "checkpoint-20-x", "reason": "every_n"}]
    # A level-up makes the checkpoint champion, and the champion is probed.
    assert forgetting.due(realm.ledger, realm.config.watch, champion=True) == "champion"
    realm_home.config_file.write_text(TEST_TOML + "\n[watch]\nenabled = false\n")
    assert forgetting.due(realm.ledger, load_config(realm_home.home).watch, champion=True) is None
