"""A sparring session on a real dio-mini checkpoint (evalqueue.spar): what it returns,
the sparring quest its wrong answers become in queue/high, and the `sparring_published`
event that says so."""

from __future__ import annotations

import json
import shutil

from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue


def test_a_sparring_session_publishes_its_wrong_answers_and_says_so(realm_home):
    realm = Realm(realm_home.home)
    name = "checkpoint-10-20261206-1200"
    folder = realm.paths.checkpoints / name
    shutil.copytree(realm.paths.dio_mini, folder)
    realm.ledger.append("checkpoints", [{"step": 10, "name": name, "path": str(folder), "loss": 1.0}])
    out = evalqueue.spar(realm.home, "bin", 4, step=10, seed=3)
    assert (out["skill"], out["level"], out["step"], out["checkpoint"], out["count"]) == (
        "bin", 1, 10, name, 4)
    assert out["wrong"] > 0, "dio-mini, untrained, gets some wrong"
    assert out["correct"] + out["wrong"] == 4 and out["accuracy"] == out["correct"] / 4
    assert out["per_primitive"] and all(0 <= a <= 1 for a in out["per_primitive"].values())
    quest = realm.paths.queue("high") / out["quest"]
    assert out["examples"] == 3 * out["wrong"] == len(quest.read_text().splitlines())
    [said] = realm.ledger.query("SELECT message, data FROM events WHERE kind = 'sparring_published'")
    assert said["message"] == f"Sparring: {out['wrong']} wrong of 4 -> {out['quest']}"
    assert json.loads(said["data"]) == json.loads(json.dumps(out, default=str))
