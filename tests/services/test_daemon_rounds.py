"""The Arena in this process: the daemon's rounds on a temp realm with dio-mini, each
duty checked by what it leaves behind (queue folders, ledger rows and events, status
files), so the fast suite reaches the code the slow subprocess tests drive end to end
(tests/services/test_daemon.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

import realm_skills as skills
from realm_kernel.services import daemon as daemon_mod
from realm_kernel.services import gpu_yield
from realm_kernel.services.daemon import Daemon, DaemonAlreadyRunning
from realm_kernel.store.paths import SIDECAR
from realm_kernel.store.process import ALREADY_RUNNING
from realm_kernel.store.status import DAEMON, TRAINING, read_status

from ..helpers import TEST_TOML, wait_for

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def quest_text(n: int = 8, seed: int = 0) -> str:
    return "".join(json.dumps(p.as_example()) + "\n" for p in skills.generate("bin", 1, n, seed))


def settled(path, text: str):
    """A quest file written a while ago (past the daemon's settle time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def events(d: Daemon, kind: str) -> list[dict]:
    return d.ledger.query("SELECT message, data FROM events WHERE kind = ? ORDER BY ts", [kind])


def quest_rows(d: Daemon, name: str) -> list[dict]:
    return d.ledger.query("SELECT status, priority, examples, run_id, detail FROM quests "
                          "WHERE quest_id = ? ORDER BY ts", [name])


@pytest.fixture
def daemon(realm_home) -> Daemon:
    d = Daemon(realm_home.home)
    d.reload_config()
    d.ledger.ensure_views()
    return d


def test_one_daemon_run_admits_trains_completes_and_closes(daemon, realm_home):
    """run() in this thread: the keeper admits a quest dropped in inbox/high/, the loop
    fights it to completion; SIGTERM (as `realm down` sends) closes the Arena in order."""
    d = daemon
    quest = settled(realm_home.inbox / "high" / "drill.jsonl", quest_text(8))
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    done = realm_home.queue("recently_completed") / quest.name
    seen: dict = {}

    def watch():
        try:
            wait_for(done.exists, 120, "the quest to complete")
            seen["daemon"] = read_status(realm_home, DAEMON)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler run() installed sets shutdown

    t = threading.Thread(target=watch)
    t.start()
    try:
        d.run()
    finally:
        t.join()
        for s, h in before.items():
            signal.signal(s, h)
    assert done.is_file() and not quest.exists()
    rows = quest_rows(d, quest.name)
    assert [r["status"] for r in rows] == ["queued", "processing", "completed"]
    assert {r["priority"] for r in rows} == {"high"} and rows[0]["examples"] == 8
    run_id = rows[1]["run_id"]
    assert run_id and rows[2]["run_id"] == run_id and rows[2]["detail"].startswith("completed at step ")
    runs = d.ledger.query("SELECT status, step_start, step_end FROM runs WHERE run_id = ? ORDER BY ts",
                          [run_id])
    assert [r["status"] for r in runs] == ["started", "completed"]
    assert runs[0]["step_start"] == 0 and runs[1]["step_end"] >= 1
    kinds = [e["kind"] for e in d.ledger.query("SELECT kind FROM events ORDER BY ts")]
    for k in ("daemon_started", "quest_queued", "battle_started", "quest_completed", "daemon_stopped"):
        assert k in kinds, (k, kinds)
    assert kinds.index("daemon_started") < kinds.index("battle_started") < kinds.index("quest_completed")
    assert kinds[-1] == "daemon_stopped"
    started = json.loads(events(d, "battle_started")[0]["data"])
    assert started["step"] == 0 and started["resume"] is False and started["ranks"] == 1
    queued = events(d, "quest_queued")[0]["message"]
    assert queued == f"Quest {quest.name} accepted (8 examples, high priority)"
    assert seen["daemon"]["pid"] == os.getpid()
    assert seen["daemon"]["home"] == str(realm_home.home)
    assert read_status(realm_home, DAEMON)["state"] == "offline"
    assert read_status(realm_home, TRAINING)["state"] == "offline"
    assert d.shutdown.is_set()
    # The next quest starts a new run on the newest checkpoint; this quest's own run
    # resumes from its last checkpoint (its final save: nothing left to train).
    step, path = d.ledger.query("SELECT step, path FROM checkpoints ORDER BY step DESC LIMIT 1")[0].values()
    examples = [json.loads(line) for line in quest_text(2).splitlines()]
    job = d.job_for(realm_home.queue("high") / "next.jsonl", examples, None)
    assert job.run_id != run_id and len(job.run_id) == len(run_id) and job.resume_from is None
    assert (job.step_offset, str(job.model_path)) == (step, path) and job.quest_id == "next.jsonl"
    assert (job.skill, job.skill_level, job.base_model) == ("bin", 1, "dio-mini")
    assert job.on_checkpoint == d.checkpoint_published and job.retention == d.config.retention
    again = d.job_for(done, examples, run_id)
    assert again.run_id == run_id and again.resume_from == again.model_path and str(again.model_path) == path


def test_admission_queues_good_quests_fails_bad_ones_and_leaves_the_rest(daemon, realm_home):
    d = daemon
    realm_home.config_file.write_text(TEST_TOML.replace("settle_seconds = 0.2", "settle_seconds = 30"))
    d.reload_config()
    good = settled(realm_home.inbox / "high" / "drill.jsonl", quest_text(4))
    broken = settled(realm_home.inbox / "broken.jsonl", json.dumps(GOOD) + "\n{oops\n")
    hidden = settled(realm_home.inbox / ".notes.jsonl", json.dumps(GOOD) + "\n")
    partial = settled(realm_home.inbox / "big.jsonl.part", json.dumps(GOOD) + "\n")
    young = realm_home.inbox / "young.jsonl"
    young.write_text(json.dumps(GOOD) + "\n")  # just written: not settled yet
    wait = d.admit_inbox()
    assert wait is not None and 0 < wait <= d.config.daemon.settle_seconds
    assert (realm_home.queue("high") / "drill.jsonl").is_file() and not good.exists()
    assert quest_rows(d, "drill.jsonl")[-1] | {"detail": None} == {
        "status": "queued", "priority": "high", "examples": 4, "run_id": None, "detail": None}
    failed = realm_home.queue("failed") / "broken.jsonl"
    assert failed.is_file() and not broken.exists()
    assert failed.read_text().startswith(json.dumps(GOOD)), "nothing of a refused file is lost"
    row = quest_rows(d, "broken.jsonl")[-1]
    assert row["status"] == "failed" and "line 2" in row["detail"] and "invalid JSON" in row["detail"]
    assert events(d, "quest_queued")[0]["message"] == "Quest drill.jsonl accepted (4 examples, high priority)"
    assert events(d, "quest_rejected")[0]["message"] == row["detail"]
    assert hidden.exists() and partial.exists() and young.exists(), "hidden, partial, young: left alone"
    again = d.admit_inbox()  # still young: still waited for, and sooner
    assert again is not None and 0 < again <= wait and young.exists()
    old = time.time() - 60
    os.utime(young, (old, old))
    assert d.admit_inbox() is None  # nothing left waiting
    assert (realm_home.queue("normal") / "young.jsonl").is_file()


def test_a_file_validation_chokes_on_is_failed_with_the_error(daemon, realm_home):
    d = daemon
    target = realm_home.home / "elsewhere"
    target.mkdir()
    link = realm_home.inbox / "linked"
    link.symlink_to(target, target_is_directory=True)  # a linked folder is never entered
    assert [rel.as_posix() for _, rel in d.inbox_files()] == ["linked"]
    odd = settled(realm_home.inbox / "odd.jsonl", json.dumps(GOOD) + "\n")
    d.reject_unreadable(odd, ValueError("the parser choked"))
    failed = realm_home.queue("failed") / "odd.jsonl"
    assert failed.is_file() and not odd.exists()
    reason = json.loads(failed.with_name("odd.jsonl.reason.json").read_text())
    assert "could not be read as a quest: ValueError: the parser choked" in reason["problems"][0]["message"]
    row = quest_rows(d, "odd.jsonl")[-1]
    assert row["status"] == "failed" and "the parser choked" in row["detail"]
    assert "the parser choked" in events(d, "quest_rejected")[-1]["message"]
    # Gone before it could be moved: said in an event, never raised.
    d.reject_unreadable(realm_home.inbox / "vanished.jsonl", OSError("gone"))
    err = events(d, "quest_error")[-1]["message"]
    assert "could not admit 'vanished.jsonl': gone; nor move it to failed/" in err


def test_each_round_reports_why_no_quest_starts(daemon, realm_home):
    d = daemon
    queued = realm_home.queue("normal") / "waits.jsonl"
    queued.write_text(quest_text(4))

    def states():
        return read_status(realm_home, TRAINING)["state"], read_status(realm_home, DAEMON)["state"]

    realm_home.control_file("stop").write_text("1")
    realm_home.control_file("skip").write_text("1")  # no quest in training: spent at once
    assert d.tick() is False and states() == ("stopped", "stopped")
    assert not realm_home.control_file("skip").exists() and queued.exists()
    realm_home.control_file("stop").unlink()
    realm_home.control_file("pause").write_text("1")
    assert d.tick() is False and states() == ("paused", "paused") and queued.exists()
    realm_home.control_file("pause").unlink()
    gpu_yield.request(realm_home, "process_eval_queue", 600)
    assert d.tick() is False and d.tick() is False
    assert states() == (gpu_yield.YIELDING, gpu_yield.YIELDING) and queued.exists()
    lent = events(d, "gpu_lent")
    assert len(lent) == 1, "one loan, said once"
    assert json.loads(lent[0]["data"])["task"] == "process_eval_queue"
    assert lent[0]["message"] == f"{d.config.hero.name} lends the GPU to process_eval_queue between quests"
    assert read_status(realm_home, DAEMON)["lent_to"] == "process_eval_queue"
    assert gpu_yield.granted(realm_home)
    gpu_yield.release(realm_home)
    queued.unlink()
    assert d.tick() is False and states() == ("idle", "idle")
    beat = read_status(realm_home, DAEMON)
    assert beat["pid"] == os.getpid() and beat["setup_tries"] == 0 and beat["started"] == d.started
    training = read_status(realm_home, TRAINING)
    assert training["step"] == 0 and training["quest"] is None


def test_a_setup_fault_keeps_the_quest_queued_says_so_once_and_backs_off(daemon, realm_home):
    d = daemon
    missing = realm_home.home / "no-model"
    realm_home.config_file.write_text(TEST_TOML + f'\n[hero]\nbase_model = "{missing}"\n')
    d.reload_config()
    quest = realm_home.queue("normal") / "waits.jsonl"
    quest.write_text(quest_text(4))
    assert d.tick() is True  # it tried the quest ...
    assert quest.is_file(), "... which stays in its queue"
    faults = events(d, "setup_fault")
    assert len(faults) == 1 and str(missing) in faults[0]["message"]
    assert faults[0]["message"].startswith("Training waits: no HF model directory at ")
    assert d.setup_fault.startswith(f"no HF model directory at {missing}")
    assert d.waiting_for_setup() and d._setup_backoff == 2 * daemon_mod.SETUP_RETRY_S
    assert d.tick() is False
    assert read_status(realm_home, TRAINING)["state"] == "waiting"
    beat = read_status(realm_home, DAEMON)
    assert beat["state"] == "waiting" and beat["setup_tries"] == 1 and beat["setup_fault"] == d.setup_fault
    d._setup_retry_at = 0.0  # the back-off has passed: it tries again, says nothing new
    assert not d.waiting_for_setup() and d.tick() is True
    assert len(events(d, "setup_fault")) == 1 and d._setup_tries == 2
    assert d._setup_backoff == 4 * daemon_mod.SETUP_RETRY_S
    for _ in range(6):
        d.report_setup_fault(d.setup_fault)
    assert d._setup_backoff == daemon_mod.SETUP_RETRY_MAX_S, "the back-off is capped"
    d.setup_fixed()
    fixed = events(d, "setup_fixed")
    assert len(fixed) == 1 and fixed[0]["message"] == "The setup fault is gone; training goes on"
    assert d.setup_fault is None and d._setup_backoff == daemon_mod.SETUP_RETRY_S
    d.setup_fixed()
    assert len(events(d, "setup_fixed")) == 1, "said once"


def test_a_broken_realm_toml_keeps_the_last_good_config_and_says_so_once(daemon, realm_home):
    d = daemon
    assert d.config.daemon.settle_seconds == 0.2
    realm_home.config_file.write_text("[daemon]\nsettle_seconds = -3\n")
    d.reload_config()
    d.reload_config()
    assert d.config.daemon.settle_seconds == 0.2
    errs = events(d, "config_error")
    assert len(errs) == 1 and "settle_seconds" in errs[0]["message"]
    realm_home.config_file.write_text(TEST_TOML.replace("settle_seconds = 0.2", "settle_seconds = 0.3"))
    d.reload_config()
    assert d.config.daemon.settle_seconds == 0.3 and d._config_error is None


def test_a_quest_cut_off_by_a_crash_goes_to_the_head_of_the_queue(daemon, realm_home):
    d = daemon
    from realm_kernel.quests.publish import quest_row, record
    cut = realm_home.queue("processing") / "cut.jsonl"
    cut.write_text(quest_text(4))
    record(d.ledger, [quest_row(cut, "processing", "normal", run_id="run-7", examples=4)])
    (realm_home.queue("low") / "stray.jsonl").write_text(quest_text(2))  # moved, its row lost
    d.repair()
    back = realm_home.queue("high") / "cut.jsonl"
    assert back.is_file() and not cut.exists()
    row = quest_rows(d, "cut.jsonl")[-1]
    assert row == {"status": "queued", "priority": "high", "examples": 4, "run_id": "run-7",
                   "detail": "recovered after an interrupted run"}
    assert events(d, "quest_recovered")[0]["message"] == (
        "Quest cut.jsonl was interrupted; it resumes from its last checkpoint")
    rec = events(d, "recovery")
    assert len(rec) == 1 and rec[0]["message"] == "Start-up repairs after an interrupted run"
    done = json.loads(rec[0]["data"])
    assert set(done) == {"checkpoints", "temp_segments", "quests"} and "stray.jsonl" in str(done["quests"])
    assert "cut.jsonl" not in str(done["quests"]), "the recovered quest's row is already right"
    assert quest_rows(d, "stray.jsonl")[-1]["status"] == "queued"
    d.repair()  # nothing left to repair: no second event
    assert len(events(d, "recovery")) == 1


def test_only_one_daemon_per_realm(daemon, realm_home):
    daemon.acquire_lock()
    try:
        with pytest.raises(DaemonAlreadyRunning) as e:
            Daemon(realm_home.home).acquire_lock()
        assert f"pid {os.getpid()}" in str(e.value) and str(realm_home.lock_file) in str(e.value)
        assert daemon_mod.main(["--home", str(realm_home.home)]) == ALREADY_RUNNING
    finally:
        os.close(daemon._lock_fd)


def test_each_battle_result_sends_the_quest_where_it_belongs(daemon, realm_home):
    from realm_kernel.train.trainer import TrainingResult
    d = daemon
    pause, skip = realm_home.control_file("pause"), realm_home.control_file("skip")
    ok = TrainingResult(success=True, global_step=12, final_loss=0.5)
    assert d.outcome("q", ok) == ("completed", "completed at step 12, loss 0.5")
    assert d.outcome("q", TrainingResult(success=True, global_step=7, stopped=True)) == (
        "queued", "stopped at step 7; checkpoint saved")
    skip.write_text("1")
    assert d.outcome("q", TrainingResult(success=True, global_step=9, stopped=True)) == (
        "skipped", "skipped by request at step 9")
    assert not skip.exists(), "a skip is spent on the quest it skipped"
    skip.write_text("1")  # a skip asked as the quest completed anyway: the quest completed
    assert d.outcome("q", ok)[0] == "completed" and skip.exists()
    skip.unlink()
    assert d.outcome("q", TrainingResult(success=False, error_message="NaN loss")) == ("failed", "NaN loss")
    assert d.outcome("q", TrainingResult(success=False)) == ("failed", "training failed")
    assert not pause.exists()
    # A setup fault: back to the queue, reported; out of memory also pauses the realm.
    status, detail = d.outcome("q", TrainingResult(success=False, setup_fault=True,
                                                   error_message="no CUDA\nmore lines"))
    assert (status, detail) == ("queued", "waits for the setup: no CUDA") and not pause.exists()
    assert d.setup_fault == "no CUDA"
    d.outcome("q", TrainingResult(success=False, setup_fault=True, out_of_memory=True,
                                  error_message="CUDA out of memory"))
    assert pause.exists() and d.setup_fault == "CUDA out of memory"
    pause.unlink()
    # A full disk: back to the queue, the realm paused, the step and the error said.
    (realm_home.status / "training.json").unlink(missing_ok=True)
    status, detail = d.outcome("q.jsonl", TrainingResult(success=False, disk_full=True, global_step=30,
                                                         error_message="No space left\nTraceback"))
    assert status == "queued" and pause.exists()
    assert detail.startswith("disk full while saving a checkpoint at step 30: No space left; q.jsonl is "
                             "back in its queue and training is paused: free space under ")
    assert str(realm_home.checkpoints) in detail and detail.endswith(", then resume")
    full = events(d, "disk_full")
    assert len(full) == 1 and full[0]["message"] == "Disk full: q.jsonl goes back to its queue"
    assert "no space left on device" in d.disk_full("q.jsonl", TrainingResult(success=False, disk_full=True))


def test_finished_quests_land_in_their_folders_and_old_completions_are_pruned(daemon, realm_home):
    d = daemon
    realm_home.config_file.write_text(TEST_TOML.replace(
        "[daemon]\n", "[daemon]\nkeep_completed = 3\ncompleted_retention_days = 1\n"))
    d.reload_config()
    done_dir = realm_home.queue("recently_completed")
    now = time.time()
    for i, age_h in enumerate((50, 30, 2)):  # two past the retention (1 day), one within it
        f = done_dir / f"old{i}.jsonl"
        f.write_text("{}\n")
        os.utime(f, (now - age_h * 3600, now - age_h * 3600))

    def fought(name: str) -> object:
        q = realm_home.queue("processing") / name
        q.write_text(quest_text(2))
        return q

    d._finish(fought("won.jsonl"), "completed", "run-1", "completed at step 4, loss 0.1", priority="low")
    assert sorted(p.name for p in done_dir.iterdir()) == ["old2.jsonl", "won.jsonl"]
    assert quest_rows(d, "won.jsonl")[-1] == {"status": "completed", "priority": "low", "examples": None,
                                              "run_id": "run-1", "detail": "completed at step 4, loss 0.1"}
    assert events(d, "quest_completed")[-1]["message"] == "Quest complete! won.jsonl"
    d._finish(fought("paused.jsonl"), "queued", "run-2", "stopped at step 3", priority="high")
    assert (realm_home.queue("high") / "paused.jsonl").is_file()
    assert events(d, "battle_stopped")[-1]["message"] == "Battle stopped: paused.jsonl"
    d._finish(fought("lost.jsonl"), "failed", "run-3", "NaN loss")
    lost = realm_home.queue("failed") / "lost.jsonl"
    assert lost.is_file() and "NaN loss" in lost.with_name("lost.jsonl.reason.json").read_text()
    assert events(d, "quest_failed")[-1]["message"] == "Quest failed: lost.jsonl"
    d._finish(fought("dodged.jsonl"), "skipped", "run-4", "skipped by request at step 2")
    assert (realm_home.queue("failed") / "dodged.jsonl").is_file()
    assert events(d, "quest_skipped")[-1]["message"] == "Quest skipped: dodged.jsonl"
    assert [r["status"] for r in d.ledger.query(
        "SELECT status FROM quest_status WHERE quest_id IN ('paused.jsonl', 'lost.jsonl', 'dodged.jsonl') "
        "ORDER BY quest_id")] == ["skipped", "failed", "queued"]


def test_a_battle_announces_its_quest_its_run_and_whether_it_resumes(daemon, realm_home):
    from realm_kernel.train.trainer import Job
    d = daemon
    ck = realm_home.checkpoints / "checkpoint-5"
    fresh = Job(quest_id="new.jsonl", examples=[GOOD, GOOD], model_path=ck, run_id="run-1", step_offset=5)
    d.announce(realm_home.queue("processing") / "new.jsonl", fresh, "low")
    assert quest_rows(d, "new.jsonl")[-1] == {"status": "processing", "priority": "low", "examples": 2,
                                              "run_id": "run-1", "detail": None}
    again = Job(quest_id="old.jsonl", examples=[GOOD], model_path=ck, run_id="run-2", step_offset=5,
                resume_from=ck)
    d.announce(realm_home.queue("processing") / "old.jsonl", again, "high")
    runs = d.ledger.query("SELECT run_id, status, model_path, resume_from, step_start FROM runs ORDER BY ts")
    assert runs == [{"run_id": "run-1", "status": "started", "model_path": str(ck), "resume_from": None,
                     "step_start": 5},
                    {"run_id": "run-2", "status": "resumed", "model_path": str(ck), "resume_from": str(ck),
                     "step_start": 5}]
    said = events(d, "battle_started")
    hero = d.config.hero.name
    assert [e["message"] for e in said] == [f"{hero} takes on new.jsonl", f"{hero} resumes old.jsonl"]
    data = json.loads(said[1]["data"])
    assert data == {"model": str(ck), "step": 5, "resume": True, "ranks": 1,
                    "profile": d.config.resolved_profile.as_dict()}
    beat = read_status(realm_home, DAEMON)
    assert (beat["state"], beat["quest"]) == ("training", "old.jsonl")


def test_a_new_run_starts_from_the_heros_latest_weights_with_the_quests_skill(daemon, realm_home):
    import re
    d = daemon
    examples = [json.loads(line) for line in quest_text(2).splitlines()]
    first = d.job_for(realm_home.queue("normal") / "a.jsonl", examples, None)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", first.run_id), first.run_id
    assert (first.quest_id, first.step_offset, first.resume_from) == ("a.jsonl", 0, None)
    assert first.model_path == d.config.base_model_path(realm_home)
    assert (first.skill, first.skill_level) == ("bin", 1)
    name = "checkpoint-30-20260101-1200"
    ck = realm_home.checkpoints / name  # complete: sidecar, config, weights
    ck.mkdir(parents=True)
    for f in (SIDECAR, "config.json"):
        (ck / f).write_text("{}")
    (ck / "model.safetensors").write_bytes(b"w")
    d.ledger.append("checkpoints", [{"step": 30, "name": name, "path": str(ck)}])
    later = d.job_for(realm_home.queue("normal") / "b.jsonl", [GOOD], None)
    assert (later.step_offset, later.model_path) == (30, realm_home.checkpoints / name)
    assert (later.skill, later.skill_level) == (None, None) and later.run_id != first.run_id


def test_a_battle_over_ranks_trains_there_and_records_the_run(daemon, realm_home, monkeypatch):
    from .test_battle_group import stand_in_ranks
    d = daemon
    realm_home.config_file.write_text(TEST_TOML.replace("[training]\n", "[training]\nnproc = 2\n"))
    d.reload_config()
    stand_in_ranks(monkeypatch)
    quest = realm_home.queue("normal") / "ok.jsonl"
    quest.write_text(quest_text(2))
    assert d.tick() is True
    assert (realm_home.queue("recently_completed") / "ok.jsonl").is_file()
    row = quest_rows(d, "ok.jsonl")[-1]
    assert (row["status"], row["detail"]) == ("completed", "completed at step 4, loss 0.25")
    runs = d.ledger.query("SELECT status, step_start, step_end, loss FROM runs WHERE run_id = ? ORDER BY ts",
                          [row["run_id"]])
    assert runs == [{"status": "started", "step_start": 0, "step_end": None, "loss": None},
                    {"status": "completed", "step_start": 0, "step_end": 4, "loss": 0.25}]
    assert json.loads(events(d, "battle_started")[0]["data"])["ranks"] == 2


def test_a_checkpoint_the_ranks_publish_is_shipped_while_they_train(daemon, realm_home, monkeypatch):
    from realm_kernel.services.battle_group import group_dir

    from .test_battle_group import stand_in_ranks
    d = daemon
    realm_home.config_file.write_text(TEST_TOML.replace("[training]\n", "[training]\nnproc = 2\n"))
    d.reload_config()
    stand_in_ranks(monkeypatch)
    shipped = []

    def ship(step=None, path=None):
        if step is not None:
            shipped.append((step, path.name))
            (path.parent / "shipped").touch()  # the stand-in rank waits for this

    monkeypatch.setattr(d, "ship", ship)
    (realm_home.queue("normal") / "publish.jsonl").write_text(quest_text(2))
    assert d.tick() is True
    assert quest_rows(d, "publish.jsonl")[-1]["status"] == "completed"
    assert shipped == [(12, "checkpoint-12")], "once, while the ranks ran"
    assert (group_dir(realm_home, quest_rows(d, "publish.jsonl")[-1]["run_id"]) / "shipped").exists()


def test_completed_quests_beyond_the_count_kept_are_pruned_oldest_first(daemon, realm_home):
    d = daemon
    realm_home.config_file.write_text(TEST_TOML.replace(
        "[daemon]\n", "[daemon]\nkeep_completed = 2\ncompleted_retention_days = 0\n"))
    d.reload_config()
    done_dir = realm_home.queue("recently_completed")
    now = time.time()
    for i in range(4):  # all recent: only the count decides
        f = done_dir / f"q{i}.jsonl"
        f.write_text("{}\n")
        os.utime(f, (now - 100 + i, now - 100 + i))
    d._prune_completed()
    assert sorted(p.name for p in done_dir.iterdir()) == ["q2.jsonl", "q3.jsonl"]


def test_small_duties_abort_ship_and_the_setup_faults_current_state(daemon, realm_home):
    d = daemon
    assert d.ledger.writer == "daemon"
    assert d.should_abort() is False
    realm_home.control_file("skip").write_text("1")
    assert d.should_abort() is True
    realm_home.control_file("skip").unlink()
    d.shutdown.set()
    assert d.should_abort() is True
    d.checkpoint_published(10, realm_home.checkpoints / "checkpoint-10")  # no shared zone: nothing to ship
    assert d.shipper is None
    d.report_setup_fault("no CUDA\nat line 2")
    d.setup_fixed()
    keyed = d.ledger.query("SELECT kind, key, data FROM events WHERE kind IN ('setup_fault', 'setup_fixed') "
                           "ORDER BY ts")
    assert keyed == [{"kind": "setup_fault", "key": "setup_fault", "data": "no CUDA\nat line 2"},
                     {"kind": "setup_fixed", "key": "setup_fault", "data": "no CUDA\nat line 2"}]


def test_the_demo_hero_is_built_where_the_realm_expects_it(tmp_path):
    d = Daemon(tmp_path / "fresh")
    assert not (d.paths.dio_mini / "config.json").exists()
    d.ensure_demo_hero()
    assert (d.paths.dio_mini / "config.json").is_file()
