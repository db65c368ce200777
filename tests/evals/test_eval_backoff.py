"""Evals that fit: an eval's or probe's answer batch that runs out of memory (a real
torch.cuda.OutOfMemoryError from the realm's fault injection, REALM_FAULT=oom:generate)
is asked again at half the batch and a shorter answer budget; the eval is recorded once,
with the result answers at that budget give."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.evals import evalqueue, grading
from realm_kernel.oracle import answering
from realm_kernel.services.taskmaster import TaskMaster

from ..helpers import TEST_TOML

# A card that fits two questions per answer batch, from the process's first batch on.
FAULT = "oom:generate@1:2"


def _at_floor(model, tok):
    """The reference ask: no fault, one question at a time, the budget at its floor."""
    def ask(questions, golden):
        cap = answering.floor(answering.budget(tok, golden))
        return answering.answer(model, tok, list(questions), cap, batch_size=1).texts
    return ask


def test_an_answer_batch_out_of_memory_retries_smaller_and_shorter(realm_home, monkeypatch):
    model, tok = answering.load(realm_home.dio_mini)
    problems = skills.generate("bin", 2, 12, seed=7)
    questions, golden = [p.question for p in problems], [p.answer for p in problems]
    cap = answering.budget(tok, golden)
    monkeypatch.setenv("REALM_FAULT", FAULT)
    heard: list[dict] = []
    got = answering.answer(model, tok, questions, cap, batch_size=8, on_backoff=heard.append)
    assert got.backoffs == heard and heard
    first = heard[0]
    assert first["from"] == {"batch": 8, "max_new_tokens": cap}
    assert first["to"] == {"batch": 4, "max_new_tokens": answering.floor(cap)} and cap > answering.floor(cap)
    assert "CUDA out of memory" in first["error"]
    assert got.batch_size == 2 and got.max_new_tokens == answering.floor(cap)
    monkeypatch.delenv("REALM_FAULT")
    # Every question answered once, as unbatched greedy decoding at the floor answers it.
    assert got.texts == _at_floor(model, tok)(questions, golden)
    # At batch 1 and the floor nothing smaller is left: the error reaches the caller.
    assert answering.smaller(1, answering.floor(cap), answering.floor(cap)) is None
    monkeypatch.setenv("REALM_FAULT", "oom:generate@1:0")
    with pytest.raises(torch.OutOfMemoryError):
        answering.answer(model, tok, questions[:2], cap, batch_size=2)


def test_a_batch_that_had_to_shrink_stays_small_for_the_checkpoints_next_asks(realm_home, monkeypatch):
    heard: list[dict] = []
    ask, timing = grading.checkpoint_answers(realm_home.dio_mini, 0, heard.append)
    problem = skills.generate("bin", 1, 1, seed=3)[0]
    questions, golden = [problem.question] * 4, [problem.answer] * 4  # one prompt length: one batch
    monkeypatch.setenv("REALM_FAULT", FAULT)
    assert len(ask(questions, golden)) == 4
    assert [(b["from"]["batch"], b["to"]["batch"]) for b in heard] == [(4, 2)] and timing["batch_size"] == 2
    assert len(ask(questions, golden)) == 4
    assert len(heard) == 1 and len(timing["backoffs"]) == 1, "the next ask starts at the batch that fitted"


def test_checkpoints_loaded_for_answers_at_once_keep_their_tied_head(realm_home):
    """The eval queue loads checkpoints in threads (cluster mode answering several here at
    once). Concurrent loads once left every later load in the process with an untied,
    freshly initialised lm_head: random answers, and this file's batched-equals-unbatched
    check failing after them."""
    def tied(model) -> bool:
        return model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    def load(_):
        ask, _timing = grading.checkpoint_answers(realm_home.dio_mini)
        return ask

    for _ in range(4):  # a race: it took one to three rounds without the lock
        with ThreadPoolExecutor(2) as pool:
            assert len(list(pool.map(load, range(2)))) == 2
    model, _ = answering.load(realm_home.dio_mini)
    assert tied(model), "a load after concurrent loads has its own, tied, lm_head"


def test_an_eval_and_its_probe_that_run_out_of_memory_are_recorded_once(realm_home, monkeypatch):
    # Probe every evaluated checkpoint, so the forgetting watch answers under the fault too.
    realm_home.config_file.write_text(TEST_TOML + "\n[watch]\nevery_n_evals = 1\nper_primitive = 1\n")
    realm = Realm(realm_home.home)
    req = {"checkpoint": "checkpoint-10-x", "step": 10, "path": str(realm_home.dio_mini),
           "skill": "bin"}
    monkeypatch.setenv("REALM_FAULT", FAULT)
    done = evalqueue.evaluate(realm.home, req, size=12, threads=1)
    assert done["status"] == "done" and done["n"] == 12 and done["backoffs"] >= 1
    assert "error" not in (done["probe"] or {}), done["probe"]
    monkeypatch.delenv("REALM_FAULT")

    # One eval row, one eval_done, one probe run: nothing lost, nothing counted twice.
    evals = realm.sql("SELECT accuracy, n FROM evals WHERE checkpoint = 'checkpoint-10-x'")
    assert len(evals) == 1 and evals[0]["n"] == 12
    assert realm.sql("SELECT count(*) AS n FROM events WHERE kind = 'eval_done'")[0]["n"] == 1
    assert realm.sql("SELECT count(DISTINCT run_id) AS n FROM passive_probes")[0]["n"] == 1
    backoffs = [json.loads(e["data"]) for e in realm.sql(
        "SELECT data FROM events WHERE kind = 'eval_backoff' ORDER BY ts")]
    assert len(backoffs) == done["backoffs"]  # the probe asks at the batch that fitted
    assert all(b["checkpoint"] == "checkpoint-10-x" and b["to"]["batch"] < b["from"]["batch"]
               for b in backoffs)

    # The result is what answers at the shorter budget give.
    model, tok = answering.load(realm_home.dio_mini)
    problems = grading.pick("bin", 1, 12, eval_batch=True)
    reference = grading.grade(problems, _at_floor(model, tok))
    assert evals[0]["accuracy"] == pytest.approx(reference.accuracy)
    assert done["per_primitive"] == reference.per_primitive_accuracy


@pytest.mark.slow
def test_the_task_masters_eval_pipeline_backs_off_and_records_the_eval_once(realm_home, monkeypatch):
    """The eval queue's notebook under papermill, its kernel in the fault's environment."""
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true"))
    realm = Realm(realm_home.home)
    # What a checkpoint save asks for (train/callbacks.py), dio-mini standing in as the checkpoint.
    realm.ledger.event("eval_requested", "Evaluate checkpoint-10-x", json.dumps(
        {"checkpoint": "checkpoint-10-x", "step": 10, "path": str(realm_home.dio_mini),
         "skill": "bin", "level": 1}))
    tm = TaskMaster(realm_home.home)
    tm.reload_config()
    monkeypatch.setenv("REALM_FAULT", FAULT)
    res = tm.run("process_eval_queue")
    assert res["status"] == "done", res
    assert res["result"]["evaluated"] == 1 and res["result"]["waiting"] == 0
    assert realm.sql("SELECT count(*) AS n FROM evals")[0]["n"] == 1
    backoffs = realm.sql("SELECT data FROM events WHERE kind = 'eval_backoff'")
    assert backoffs and all(json.loads(b["data"])["checkpoint"] == "checkpoint-10-x" for b in backoffs)
    monkeypatch.delenv("REALM_FAULT")
    assert tm.run("process_eval_queue")["result"]["evaluated"] == 0  # never twice
    assert realm.sql("SELECT count(*) AS n FROM evals")[0]["n"] == 1
