"""The real daemon as a subprocess on a temp realm home."""

import json
import subprocess
import sys
import time

import duckdb
import pytest

from realm_kernel.api import Realm
from realm_kernel.status import TRAINING, read_status

from .conftest import child_env, read_json, start_daemon, wait_for

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
    second = subprocess.run([sys.executable, "-m", "realm_kernel.daemon", "--home", str(realm_home.home)],
                            env=child_env(realm_home.home), capture_output=True, text=True, timeout=120)
    assert second.returncode == 3
    assert f"pid {first.pid}" in second.stderr and "already runs" in second.stderr
    assert first.poll() is None


def test_pause_resume_stop_at_step_boundaries(realm_home, procs):
    realm = Realm(realm_home.home)
    realm.generate_quest("bin", 1, 8000, seed=5)
    daemon = start_daemon(procs, realm_home)

    def training_step():
        s = read_status(realm_home, TRAINING)
        return s.get("state") == "training" and (s.get("local_step") or 0) > 3 and s

    wait_for(training_step, 120, "training to start")
    realm.control("pause")
    paused = wait_for(lambda: (s := read_status(realm_home, TRAINING)).get("state") == "paused" and s,
                      30, "the battle to pause")
    time.sleep(1.5)
    assert read_status(realm_home, TRAINING)["step"] == paused["step"], "no step while paused"

    realm.control("resume")
    wait_for(lambda: read_status(realm_home, TRAINING).get("step", 0) > paused["step"], 30, "resume")

    realm.control("stop")
    wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "stopped", 60, "the stop")
    queued = list(realm_home.queue("normal").glob("*.jsonl"))
    assert len(queued) == 1, "a stopped quest goes back to its queue"
    step = realm.hero()["xp"]
    last = realm.sql("SELECT step, name FROM checkpoints ORDER BY step DESC LIMIT 1")[0]
    assert last["step"] == step, "stop saves a checkpoint first"
    assert (realm_home.checkpoints / last["name"] / ".ledger.json").exists()
    time.sleep(1.5)
    assert realm.training_status()["state"] == "stopped" and list(realm_home.queue("normal").glob("*"))

    realm.control("resume")
    wait_for(lambda: realm.hero()["xp"] > step, 60, "training to go on after resume")
    # SIGTERM: the daemon saves, puts the quest back and exits cleanly.
    assert procs.stop(daemon) == 0
    assert list(realm_home.queue("normal").glob("*.jsonl")) and not list(
        realm_home.queue("processing").glob("*"))
    assert realm.sql("SELECT max(step) AS s FROM checkpoints")[0]["s"] == realm.hero()["xp"]
