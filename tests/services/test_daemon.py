"""The real daemon as a subprocess on a temp realm home."""

import json
import subprocess
import sys

import duckdb
import pytest

from realm_kernel.api import Realm
from realm_kernel.store.status import DAEMON, TRAINING, read_status

from ..helpers import child_env, read_json, start_daemon, wait_for

pytestmark = pytest.mark.slow


def cli(paths, *args):
    return subprocess.run([sys.executable, "-m", "realm_kernel.cli", *args], env=child_env(paths.home),
                          capture_output=True, text=True, timeout=120)


def test_generated_quest_trains_and_bad_quest_fails_while_daemon_lives(realm_home, procs):
    out = cli(realm_home, "quest", "generate", "bin", "--level", "1", "--count", "300", "--seed", "1")
    assert out.returncode == 0, out.stderr
    quest = realm_home.inbox / "bin-L1-300-s1.jsonl"
    assert quest.exists() and len(quest.read_text().splitlines()) == 300
    good = json.dumps({"messages": [{"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": "hello"}]})
    (realm_home.inbox / "broken.jsonl").write_text(good + "\n{oops\n")

    daemon = start_daemon(procs, realm_home)
    done = realm_home.queue("recently_completed") / quest.name
    wait_for(done.exists, 120, "the quest to complete")
    assert daemon.poll() is None, "the daemon survives a malformed quest"

    failed = realm_home.queue("failed") / "broken.jsonl"
    reason = read_json(failed.with_name("broken.jsonl.reason.json"))
    assert reason["problems"][0]["line"] == 2 and "invalid JSON" in reason["problems"][0]["message"]
    assert failed.read_text().startswith(good), "nothing of the rejected file is lost"

    # A user's read-only DuckDB connection works while the daemon runs.
    con = duckdb.connect(str(realm_home.ledger_db), read_only=True)
    try:
        steps = con.execute("SELECT max(step) FROM metrics").fetchone()[0]
        ckpts = con.execute("SELECT name, path, step FROM checkpoints ORDER BY step").fetchall()
        status = dict(con.execute("SELECT quest_id, status FROM quest_status").fetchall())
    finally:
        con.close()
    assert steps > 0 and ckpts[-1][2] == steps
    for name, _path, step in ckpts:
        sidecar = read_json(realm_home.checkpoints / name / ".ledger.json")
        assert sidecar["step"] == step and sidecar["training_file"] == quest.name
    assert status == {quest.name: "completed", "broken.jsonl": "failed"}

    hero = Realm(realm_home.home).hero()
    assert hero["xp"] == steps and hero["gold"] == 100 and hero["atk"] > 0

    # Still alive and working: the next quest continues from the last checkpoint.
    (realm_home.inbox / "more.jsonl").write_text("\n".join([good] * 40) + "\n")
    wait_for((realm_home.queue("recently_completed") / "more.jsonl").exists, 120, "second quest")
    assert Realm(realm_home.home).hero()["xp"] > steps
    assert daemon.poll() is None


def test_second_daemon_refuses_and_names_the_holder(realm_home, procs):
    first = start_daemon(procs, realm_home, "first")
    wait_for(lambda: read_status(realm_home, "daemon.json").get("pid") == first.pid, 60, "first daemon")
    second = subprocess.run([sys.executable, "-m", "realm_kernel.services.daemon",
                             "--home", str(realm_home.home)],
                            env=child_env(realm_home.home), capture_output=True, text=True, timeout=120)
    assert second.returncode == 3
    assert f"pid {first.pid}" in second.stderr and "already runs" in second.stderr
    assert first.poll() is None


def test_pause_resume_stop_at_step_boundaries(realm_home, procs):
    realm = Realm(realm_home.home)
    realm.quests.generate("bin", 1, 8000, seed=5)
    daemon = start_daemon(procs, realm_home)

    def training_step():
        s = read_status(realm_home, TRAINING)
        return s.get("state") == "training" and (s.get("local_step") or 0) > 3 and s

    wait_for(training_step, 120, "training to start")
    realm.training.control("pause")
    paused = wait_for(lambda: (s := read_status(realm_home, TRAINING)).get("state") == "paused" and s,
                      30, "the battle to pause")
    # A later heartbeat of the paused battle proves the trainer looked again: no step since.
    later = wait_for(lambda: (s := read_status(realm_home, TRAINING))["updated"] > paused["updated"] and s,
                     30, "a heartbeat of the paused battle")
    assert later["state"] == "paused" and later["step"] == paused["step"], "no step while paused"

    realm.training.control("resume")
    wait_for(lambda: read_status(realm_home, TRAINING).get("step", 0) > paused["step"], 30, "resume")

    realm.training.control("stop")
    wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "stopped", 60, "the stop")
    # The battle reports "stopped" from the trainer's last callback; the daemon then
    # moves the quest back, a moment later.
    queued = wait_for(lambda: list(realm_home.queue("normal").glob("*.jsonl")), 30,
                      "the stopped quest back in its queue")
    assert len(queued) == 1, "a stopped quest goes back to its queue"
    step = realm.hero()["xp"]
    last = realm.sql("SELECT step, name FROM checkpoints ORDER BY step DESC LIMIT 1")[0]
    assert last["step"] == step, "stop saves a checkpoint first"
    assert (realm_home.checkpoints / last["name"] / ".ledger.json").exists()
    # The daemon's next rounds see the stop file and leave the quest waiting.
    seen = read_status(realm_home, DAEMON)["updated"]
    wait_for(lambda: (s := read_status(realm_home, DAEMON))["updated"] > seen and s["state"] == "stopped",
             30, "a daemon round after the stop")
    assert realm.training.status()["state"] == "stopped" and list(realm_home.queue("normal").glob("*"))

    realm.training.control("resume")
    wait_for(lambda: realm.hero()["xp"] > step, 60, "training to go on after resume")
    # SIGTERM: the daemon saves, puts the quest back and exits cleanly.
    assert procs.stop(daemon) == 0
    assert list(realm_home.queue("normal").glob("*.jsonl")) and not list(
        realm_home.queue("processing").glob("*"))
    assert realm.sql("SELECT max(step) AS s FROM checkpoints")[0]["s"] == realm.hero()["xp"]


def test_kill_9_mid_quest_resumes_from_the_last_checkpoint(realm_home, procs):
    """A crash loses no quest file and no ledger row; the quest resumes where its run
    last saved (same run id, steps continue) and ends where an uninterrupted run would."""
    import signal

    realm = Realm(realm_home.home)
    quest = realm.quests.generate("bin", 1, 2400, seed=11)
    content = quest.read_bytes()
    daemon = start_daemon(procs, realm_home)
    processing = realm_home.queue("processing") / quest.name

    def saved_twice():
        s = read_status(realm_home, TRAINING)
        n = realm.sql("SELECT count(*) AS n FROM checkpoints")[0]["n"]
        return s.get("state") == "training" and n >= 2 and (s.get("local_step") or 0) % 10 > 3 and s

    before = wait_for(saved_twice, 180, "two checkpoints mid-quest")
    total = before["total_steps"]
    procs.stop(daemon, signal.SIGKILL)
    assert processing.read_bytes() == content, "the quest file survives the crash"
    ckpts_before = realm.sql("SELECT step, name, run_id FROM checkpoints ORDER BY step")
    metrics_before = realm.sql("SELECT count(*) AS n FROM metrics")[0]["n"]
    last = ckpts_before[-1]
    assert last["step"] < total

    start_daemon(procs, realm_home, "daemon-2")
    done = realm_home.queue("recently_completed") / quest.name
    wait_for(done.exists, 240, "the resumed quest to complete")
    assert done.read_bytes() == content and not list(realm_home.queue("processing").iterdir())

    runs = realm.sql("SELECT status, run_id, resume_from, step_start FROM runs ORDER BY ts")
    assert [r["status"] for r in runs] == ["started", "resumed", "completed"]
    assert len({r["run_id"] for r in runs}) == 1 and runs[1]["run_id"] == last["run_id"]
    assert runs[1]["resume_from"].endswith(last["name"]) and runs[1]["step_start"] == 0
    after = realm.sql("SELECT step, name FROM checkpoints ORDER BY step")
    assert {(r["step"], r["name"]) for r in ckpts_before} <= {(r["step"], r["name"]) for r in after}
    assert realm.sql("SELECT count(*) AS n FROM metrics")[0]["n"] > metrics_before
    final = realm.checkpoints.latest()
    assert final.step == total, "the resumed run ends where an uninterrupted one would"
    logged = {r["step"] for r in realm.sql("SELECT DISTINCT step FROM metrics WHERE loss IS NOT NULL")}
    assert logged == set(range(1, total + 1)), "every step has its loss row"
    first_after = realm.sql("SELECT min(step) AS s FROM metrics WHERE ts > (SELECT max(ts) FROM runs "
                            "WHERE status = 'resumed')")[0]["s"]
    assert first_after == last["step"] + 1, "training picked up right after the checkpoint"
    status = realm.ledger.query("SELECT status, run_id FROM quest_status WHERE quest_id = ?",
                                [quest.name])[0]
    assert status == {"status": "completed", "run_id": last["run_id"]}
    kinds = [r["kind"] for r in realm.sql("SELECT kind FROM events ORDER BY ts")]
    assert "quest_recovered" in kinds


def test_inbox_subfolders_priorities_and_skip(realm_home, procs):
    realm = Realm(realm_home.home)
    big = realm.quests.generate("bin", 1, 6000, seed=21)
    daemon = start_daemon(procs, realm_home)
    wait_for(lambda: read_status(realm_home, TRAINING).get("quest") == big.name and
             (read_status(realm_home, TRAINING).get("local_step") or 0) > 2, 120, "the first battle")
    good = json.dumps({"messages": [{"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": "hello"}]})
    (realm_home.inbox / "team" / "deep").mkdir(parents=True)
    (realm_home.inbox / "team" / "deep" / "nested.jsonl").write_text(good + "\n")
    (realm_home.inbox / "low").mkdir()
    (realm_home.inbox / "low" / "later.jsonl").write_text((good + "\n") * 2)
    (realm_home.inbox / "urgent.high.jsonl").write_text((good + "\n") * 3)
    (realm_home.inbox / "sparring-bin-1.low.jsonl").write_text(json.dumps(
        {"messages": json.loads(good)["messages"], "meta": {"spec": "sparring", "skill": "bin"}}) + "\n")
    (realm_home.inbox / ".hidden").mkdir()
    (realm_home.inbox / ".hidden" / "secret.jsonl").write_text(good + "\n")

    def admitted():
        q = realm.quests.queue()
        return {p: sorted(e["name"] for e in q[p]) for p in ("high", "normal", "low")}

    wait_for(lambda: admitted() == {"high": ["sparring-bin-1.low.jsonl", "urgent.high.jsonl"],
                                    "normal": ["nested.jsonl"], "low": ["later.jsonl"]},
             30, "subfolders flattened into their priorities")
    assert (realm_home.inbox / ".hidden" / "secret.jsonl").exists(), "hidden folders are left alone"
    # Oldest first within a priority: the order the two high quests must be taken in.
    high_order = [p.name for p in sorted(realm_home.queue("high").glob("*.jsonl"),
                                         key=lambda p: (p.stat().st_mtime, p.name))]
    # The same content again is refused as a duplicate.
    (realm_home.inbox / "again.jsonl").write_text((good + "\n") * 3)
    wait_for((realm_home.queue("failed") / "again.jsonl.reason.json").exists, 30, "duplicate refusal")
    assert "duplicate quest" in read_json(realm_home.queue("failed") / "again.jsonl.reason.json")["summary"]

    step = read_status(realm_home, TRAINING)["step"]
    realm.training.control("skip")
    reason = realm_home.queue("failed") / f"{big.name}.reason.json"
    wait_for(reason.exists, 60, "the skip")
    assert "skipped by request" in read_json(reason)["summary"]
    assert realm.ledger.scalar("SELECT status FROM quest_status WHERE quest_id = ?", [big.name]) == "skipped"
    assert realm.checkpoints.latest().step > step, "a skip saves a checkpoint first"
    assert not realm_home.control_file("skip").exists(), "skip is spent once obeyed"
    # Then the queue drains in priority order: high (oldest first), normal, low.
    wait_for(lambda: len(list(realm_home.queue("recently_completed").iterdir())) == 4, 180, "the rest")
    order = [r["quest_id"] for r in realm.sql(
        "SELECT quest_id FROM quests WHERE status = 'processing' ORDER BY ts")]
    assert order[1:3] == high_order, (order, high_order)
    assert order[3:] == ["nested.jsonl", "later.jsonl"]
    assert daemon.poll() is None
