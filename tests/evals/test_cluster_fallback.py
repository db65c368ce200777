"""Cluster mode on a machine whose Python cannot import Ray (`[cluster] engine = "ray"`
without the cluster extra installed): every kind of work meant for a node (checkpoints'
answers, asked for all at once; a curriculum quest's rows; the vault scan of a shared
zone) is done here instead, each with a `cluster_fallback` event naming the work and
why, and recorded once (evals/placement.py, evals/evalqueue.py, evals/practice.py).

The same work on a live two-node Ray cluster is tests/services/test_cluster.py (slow:
it starts Ray). Here Ray is made unimportable for the test's process alone, the one
stand-in: everything else (the eval on dio-mini, the ledger, the zone) is real."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue
from realm_kernel.store.vault import discover_fs
from realm_kernel.store.zone_copy import open_zone

from ..helpers import TEST_TOML, make_home

# ClusterUnavailable's words when Ray is missing (oracle/cluster.py: connect)
NO_RAY = "[cluster] engine = 'ray' needs ray"


@pytest.fixture
def realm(realm_home, monkeypatch) -> Realm:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # connect() sets it: restored after the test
    realm_home.config_file.write_text(TEST_TOML + '\n[cluster]\nengine = "ray"\ngpus_per_task = 0\n')
    return Realm(realm_home.home, writer="taskmaster")


def request_eval(realm: Realm, step: int) -> str:
    """A checkpoint as the engine publishes one: dio-mini's weights, its ledger row, its
    eval request."""
    name = f"checkpoint-{step}-20261206-1200"
    dest = realm.paths.checkpoints / name
    shutil.copytree(realm.paths.dio_mini, dest)
    realm.ledger.append("checkpoints", [{"step": step, "name": name, "path": str(dest), "skill": "bin",
                                         "skill_level": 1}])
    realm.ledger.event("eval_requested", f"Evaluate {name}", json.dumps(
        {"checkpoint": name, "step": step, "path": str(dest), "skill": "bin", "level": 1}))
    return name


def fallbacks(realm: Realm) -> list[tuple[str, dict]]:
    return [(r["message"], json.loads(r["data"])) for r in realm.ledger.query(
        "SELECT message, data FROM events WHERE kind = 'cluster_fallback' ORDER BY ts")]


def test_evals_meant_for_the_cluster_are_answered_here_each_recorded_once(realm):
    a, b = request_eval(realm, 10), request_eval(realm, 20)
    out = realm.checkpoints.evaluate_pending(size=4)  # two at once: their answers asked together
    assert [(o["checkpoint"], o["status"], o["host"], o["node_id"], o["n"]) for o in out] == [
        (a, "done", "local", None, 4), (b, "done", "local", None, 4)], out
    said = fallbacks(realm)
    assert sorted(d["checkpoint"] for _, d in said) == [a, b]  # the two answer in either order
    for message, data in said:
        name = data["checkpoint"]
        assert message.startswith(f"{name}: answered on this machine ({NO_RAY}")
        assert data == {"checkpoint": name, "step": int(name.split("-")[1]), "reason": data["reason"]}
        assert data["reason"].startswith(NO_RAY)
    done = [json.loads(r["data"]) for r in realm.ledger.query(
        "SELECT data FROM events WHERE kind = 'eval_done' ORDER BY ts")]
    assert [(d["checkpoint"], d["host"], d["node_id"]) for d in done] == [
        (a, "local", None), (b, "local", None)]
    assert realm.ledger.scalar("SELECT count(*) FROM evals") == 2
    assert list((realm.paths.tasks / "claims").iterdir()) == [], "every claim released"
    assert realm.checkpoints.eval_queue() == [] and realm.checkpoints.evaluate_pending(size=4) == []


def test_an_eval_answered_here_instead_uses_the_threads_it_was_given(realm):
    request_eval(realm, 30)
    [req] = realm.checkpoints.eval_queue()
    before = torch.get_num_threads()
    if before == 1:  # more threads would start an OpenMP team, which a forked child (mutmut) cannot use
        pytest.skip("this process answers on one thread already: no fewer threads to ask for")
    want = before - 1
    try:
        out = evalqueue.evaluate(realm.home, dict(req), size=4, threads=want)
        assert torch.get_num_threads() == want, "this machine answered with the threads asked for"
    finally:
        torch.set_num_threads(before)
    assert (out["status"], out["host"], out["n"]) == ("done", "local", 4)
    assert len(fallbacks(realm)) == 1


def test_a_curriculum_quest_meant_for_the_cluster_is_made_here_as_on_one_machine(
        realm, tmp_path, dio_mini_dir):
    made = realm.skills.curriculum_quest(seed=5)
    assert (made["host"], made["node_id"]) == ("local", None)
    here = Realm(make_home(tmp_path / "one-machine", dio_mini_dir).home)
    local = here.skills.curriculum_quest(seed=5)
    assert "host" not in local and "node_id" not in local
    assert {k: v for k, v in made.items() if k not in ("quest", "node_id", "host")} == {
        k: v for k, v in local.items() if k != "quest"}
    assert (realm.paths.inbox / made["quest"]).read_text() == (here.paths.inbox / local["quest"]).read_text()
    [(message, data)] = fallbacks(realm)
    assert message.startswith(f"{made['quest']}: generate on this machine ({NO_RAY}")
    assert data == {"task": "generate", "quest": made["quest"], "skill": made["skill"],
                    "level": made["level"], "reason": data["reason"]}
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'quest_generated'") == 1


def test_the_vault_scan_of_a_shared_zone_is_done_here_and_recorded_once(realm, tmp_path):
    nas = tmp_path / "nas"
    shutil.copytree(realm.paths.dio_mini, nas / "checkpoints" / "checkpoint-7-20261206-120000")
    (nas / "data").mkdir()
    (nas / "data" / "train.jsonl").write_text('{"text": "hi"}\n')
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    out = realm.scan_vault()
    assert out["zone"] == "local" and (out["host"], out["node_id"]) == ("local", None), out
    assert out["shared"]["nas"]["found"] == {"checkpoint": 1, "data": 1}, out
    found = sorted(tuple(f) for f in discover_fs(*open_zone(f"file://{nas}")))
    rows = realm.ledger.query("SELECT type, path, bytes FROM assets WHERE zone = 'nas'")
    assert sorted((r["type"], r["path"], r["bytes"]) for r in rows) == found  # once each
    [(message, data)] = fallbacks(realm)
    assert message.startswith(f"vault-scan: vault_scan on this machine ({NO_RAY}")
    assert data == {"task": "vault_scan", "zones": ["nas"], "reason": data["reason"]}
