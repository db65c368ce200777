"""What the eval queue writes for one checkpoint (evals/evalqueue.py): the summary and the
`eval_done` event of a real dio-mini eval, the skill it is evaluated on (the request's,
else the curriculum's), the threads it answers with, why a request is skipped, the
waiting checkpoints answered in turn on one machine, and the claim that keeps two runs off
one checkpoint."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue

from ..helpers import TEST_TOML


def events(realm: Realm, kind: str) -> list[dict]:
    return realm.sql(f"SELECT message, data, key FROM events WHERE kind = '{kind}' ORDER BY ts")


def test_one_eval_is_recorded_with_its_summary_and_event(realm_home):
    realm = Realm(realm_home.home)
    req = {"checkpoint": "checkpoint-7-x", "step": 7, "path": str(realm_home.dio_mini), "skill": "bin",
           "trained_level": 1}
    out = evalqueue.evaluate(realm.home, req, size=6)
    assert out["status"] == "done" and out["checkpoint"] == "checkpoint-7-x"
    assert (out["step"], out["skill"], out["level"], out["trained_level"], out["n"]) == (7, "bin", 1, 1, 6)
    assert out["level_after"] == 1 and out["backoffs"] == 0 and out["seconds"] >= 0
    assert out["probe"] is None, "no level-up (no champion) and not the 20th eval: no probe"
    row = realm.sql("SELECT run_id, accuracy, n, step, checkpoint FROM evals")[0]
    assert (out["run_id"], out["accuracy"]) == (row["run_id"], row["accuracy"])
    assert (row["n"], row["step"], row["checkpoint"]) == (6, 7, "checkpoint-7-x")
    assert set(out["per_primitive"]) and all(0 <= a <= 1 for a in out["per_primitive"].values())
    assert len(out["wrong"]) == min(5, 6 - round(out["accuracy"] * 6))
    assert all(set(w) == {"question", "answer", "expected"} for w in out["wrong"])
    done = events(realm, "eval_done")
    assert len(done) == 1 and done[0]["key"] == "eval:checkpoint-7-x"
    assert done[0]["message"].startswith("checkpoint-7-x: ") and " L1 " in done[0]["message"]
    assert done[0]["message"].endswith(f"{out['accuracy']:.0%}")
    said = json.loads(done[0]["data"])
    assert said["run_id"] == out["run_id"] and said["status"] == "done" and "host" not in said
    assert not (realm_home.tasks / "claims" / "eval-checkpoint-7-x").exists(), "the claim is released"
    assert evalqueue.pending(realm.home) == []


def test_a_request_with_nothing_to_evaluate_is_answered_as_skipped(realm_home):
    realm = Realm(realm_home.home)
    gone = {"checkpoint": "checkpoint-9-y", "step": 9, "path": str(realm_home.home / "nowhere")}
    out = evalqueue.evaluate(realm.home, gone)
    why = f"{realm_home.home / 'nowhere'} is gone"
    assert out == {"checkpoint": "checkpoint-9-y", "status": "skipped", "reason": why}
    skipped = events(realm, "eval_skipped")
    assert skipped[0]["message"] == f"Eval of checkpoint-9-y skipped: {why}"
    assert skipped[0]["key"] == "eval:checkpoint-9-y"
    assert json.loads(skipped[0]["data"]) == {"checkpoint": "checkpoint-9-y", "reason": why}
    # Every skill off: nothing to evaluate on.
    realm_home.config_file.write_text(TEST_TOML + "\n[curriculum.skills.bin]\nenabled = false\n"
                                      "[curriculum.skills.sy]\nenabled = false\n")
    assert evalqueue.default_skill(realm.home) is None
    out = evalqueue.evaluate(realm.home, {"checkpoint": "checkpoint-10-z", "step": 10,
                                          "path": str(realm_home.dio_mini)})
    assert out["reason"] == "no skill to evaluate on" and out["status"] == "skipped"


def test_the_default_skill_is_the_highest_priority_one_enabled(realm_home):
    realm = Realm(realm_home.home)
    realm_home.config_file.write_text(TEST_TOML + "\n[curriculum.skills.bin]\npriority = 2\n"
                                      "[curriculum.skills.sy]\npriority = 5\n")
    assert evalqueue.default_skill(realm.home) == "sy"
    realm_home.config_file.write_text(TEST_TOML + "\n[curriculum.skills.bin]\npriority = 2\n"
                                      "[curriculum.skills.sy]\npriority = 5\nenabled = false\n")
    assert evalqueue.default_skill(realm.home) == "bin"


def test_a_claim_is_held_once_and_a_dead_or_unreadable_one_is_taken_over(realm_home):
    home = Realm(realm_home.home).home
    claims = realm_home.tasks / "claims"
    assert evalqueue.claim(home, "ck-1")
    assert (claims / "eval-ck-1").read_text() == str(os.getpid())
    assert stat.S_IMODE((claims / "eval-ck-1").stat().st_mode) & 0o111 == 0, "a plain file, not executable"
    assert not evalqueue.claim(home, "ck-1"), "held by a live process (this one)"
    evalqueue.release(home, "ck-1")
    assert not (claims / "eval-ck-1").exists() and evalqueue.claim(home, "ck-1")
    (claims / "eval-ck-2").write_text("not a pid")
    assert evalqueue.claim(home, "ck-2"), "an unreadable claim is no claim"
    (claims / "eval-ck-3").write_text("")
    assert evalqueue.claim(home, "ck-3")


def request(realm: Realm, name: str, step: int, path: str, skill: str) -> None:
    realm.ledger.event("eval_requested", f"Evaluate {name}", json.dumps(
        {"checkpoint": name, "step": step, "path": path, "skill": skill, "level": 1}))


def test_every_waiting_checkpoint_is_answered_in_turn_on_its_own_skill(realm_home):
    """On one machine: each request evaluated in turn, on the skill it names (not the
    curriculum's default), or answered as skipped; then nothing waits."""
    realm = Realm(realm_home.home)
    other = ({"bin", "sy"} - {evalqueue.default_skill(realm.home)}).pop()
    request(realm, "checkpoint-8-x", 8, str(realm_home.dio_mini), other)
    request(realm, "checkpoint-9-y", 9, str(realm_home.home / "nowhere"), "bin")
    out = realm.checkpoints.evaluate_pending(size=4)
    assert [(o["checkpoint"], o["status"]) for o in out] == [("checkpoint-8-x", "done"),
                                                             ("checkpoint-9-y", "skipped")]
    assert out[0]["skill"] == other and out[0]["n"] == 4 and "host" not in out[0]
    assert realm.sql("SELECT skill, checkpoint FROM evals") == [
        {"skill": other, "checkpoint": "checkpoint-8-x"}]
    assert realm.checkpoints.eval_queue() == [] and realm.checkpoints.evaluate_pending(size=4) == []


def test_an_eval_answers_with_the_threads_it_is_given(realm_home):
    realm = Realm(realm_home.home)
    req = {"checkpoint": "checkpoint-6-x", "step": 6, "path": str(realm_home.dio_mini), "skill": "bin"}
    before = torch.get_num_threads()
    if before == 1:  # more threads would start an OpenMP team, which a forked child (mutmut) cannot use
        pytest.skip("this process answers on one thread already: no fewer threads to ask for")
    want = before - 1
    try:
        out = evalqueue.evaluate(realm.home, req, size=4, threads=want)
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
    assert out["status"] == "done" and out["n"] == 4
