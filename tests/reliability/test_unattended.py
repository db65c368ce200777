"""Days unattended (issue 18): a hung step is noticed and mended, Ctrl-C to the group of
`realm play` stops everything once with no mend, `realm up/ps/down`, setup faults keep
quests queued, backups restore the hero, logs rotate, the checkout stays clean. Real
processes throughout (realm play --headless, the Weaver, the daemon, dio-mini)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from realm_kernel.store.ledger import Ledger
from realm_kernel.store.logs import RotatingLog, log_files
from realm_kernel.store.schema import SCHEMA_VERSION
from realm_kernel.store.status import DAEMON, read_status

from ..helpers import REPO, TEST_TOML, child_env, wait_for

WATCHDOG_TOML = TEST_TOML.replace("[daemon]\n", """[daemon]
hang_floor_s = 6
hang_save_floor_s = 60
hang_factor = 10
""")


def quest(paths, name: str, n: int = 160) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"{i} + {i}?"},
                          {"role": "assistant", "content": str(2 * i)}]} for i in range(n)]
    dest = paths.inbox / name
    dest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return dest


def events(paths, kind: str) -> list[dict]:
    return Ledger(paths).query("SELECT * FROM events WHERE kind = ? ORDER BY ts", [kind])


def quest_state(paths, name: str) -> str | None:
    rows = Ledger(paths).query("SELECT status FROM quest_status WHERE quest_id = ?", [name])
    return rows[0]["status"] if rows else None


def realm(*args: str, home: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realm_kernel.cli", *args], env=child_env(home),
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_hung_step_is_killed_resumed_and_ctrl_c_stops_all_once(realm_home, procs):
    """A step blocked forever (REALM_FAULT=hang_step) is a `hang` event with every
    thread's stack; the daemon is killed and restarted and the quest completes from its
    last checkpoint. Then SIGINT to the process group of `realm play` stops it all, once,
    with no restart and no mend."""
    paths = realm_home
    paths.config_file.write_text(WATCHDOG_TOML)
    quest(paths, "hang.jsonl")
    play = procs.start("play", [sys.executable, "-m", "realm_kernel.cli", "play", "--headless"],
                       {**child_env(paths.home), "REALM_FAULT": "hang_step@15"})
    hang = wait_for(lambda: events(paths, "hang"), 120, "the hang event")[0]
    data = json.loads(hang["data"])
    assert data["step"] >= 10 and data["phase"] in ("step", "saving")
    assert "_maybe_hang" in data["stacks"] and "Thread" in data["stacks"]  # every thread
    wait_for(lambda: quest_state(paths, "hang.jsonl") == "completed", 180, "the quest to complete")
    runs = Ledger(paths).query("SELECT status, resume_from FROM runs ORDER BY ts")
    resumed = [r for r in runs if r["status"] == "resumed"]
    assert resumed and "checkpoint-10-" in resumed[0]["resume_from"]  # its last checkpoint
    weaver = json.loads((paths.status / "weaver.json").read_text())
    daemon = next(t for t in weaver["services"] if t["name"] == "daemon")
    assert daemon["hangs"] == 1 and daemon["alive"]
    mends_before = len(events(paths, "weaver_mended"))

    os.killpg(play.pid, signal.SIGINT)  # Ctrl-C in the terminal of `realm play`
    assert play.wait(timeout=120) == 0
    # No pause for "nothing happened": the Weaver runs inside `realm play`, which has
    # exited, and its services are gone (checked below), so nothing is left that could
    # still record a mend; the count is final.
    assert len(events(paths, "weaver_mended")) == mends_before  # a clean exit is not a crash
    # every daemon but the hung one (killed) closed the Arena itself
    assert len(events(paths, "daemon_stopped")) == len(events(paths, "daemon_started")) - 1
    for status in ("daemon.json", "taskmaster.json"):
        f = paths.status / status
        if f.exists():
            pid = json.loads(f.read_text()).get("pid")
            assert not pid or not Path(f"/proc/{pid}").exists() or \
                "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.slow
def test_sigint_mid_battle_checkpoints_and_requeues(realm_home, procs):
    """Ctrl-C during a battle: the daemon stops at a step boundary with a checkpoint and
    the quest is back in its queue (it resumes there next time)."""
    paths = realm_home
    quest(paths, "long.jsonl", 800)
    play = procs.start("play", [sys.executable, "-m", "realm_kernel.cli", "play", "--headless"],
                       child_env(paths.home))
    wait_for(lambda: quest_state(paths, "long.jsonl") == "processing", 120, "the battle")
    wait_for(lambda: Ledger(paths).scalar("SELECT count(*) FROM metrics") > 3, 60, "some steps")
    os.killpg(play.pid, signal.SIGINT)
    assert play.wait(timeout=120) == 0
    assert quest_state(paths, "long.jsonl") == "queued"
    assert (paths.queue("normal") / "long.jsonl").exists()
    stopped = Ledger(paths).query("SELECT * FROM runs WHERE status = 'stopped'")
    assert stopped and Ledger(paths).query(
        "SELECT * FROM checkpoints WHERE step = ?", [stopped[-1]["step_end"]])
    assert not events(paths, "weaver_mended")


@pytest.mark.slow
def test_up_ps_down_headless(realm_home):
    """`realm up --headless` returns at once; `realm ps` lists the Weaver's services with
    their pids; `realm down` from another shell stops everything cleanly."""
    paths = realm_home
    out = realm("up", "--headless", home=paths.home)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "realm down" in out.stdout
    try:
        ps = wait_for(lambda: (p := json.loads(realm("ps", home=paths.home).stdout))
                      and len(p["processes"]) >= 2 and p, 60, "ps to list the services")
        names = {p["name"] for p in ps["processes"]}
        assert {"play (headless)", "daemon"} <= names, names
        pids = [p["pid"] for p in ps["processes"]]
        again = realm("up", "--headless", home=paths.home)
        assert again.returncode == 2 and "already runs" in again.stderr
    finally:
        down = realm("down", home=paths.home)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not json.loads(down.stdout)["still_running"]
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert json.loads(realm("ps", home=paths.home).stdout)["processes"] == []
    assert not events(paths, "weaver_mended")


@pytest.mark.slow
def test_up_ps_down_jupyterlab(realm_home):
    """`realm up` (JupyterLab mode) returns once JupyterLab answers and prints the URL with
    its token; `realm ps` gives the same URL; the API answers with that token and refuses
    without it; `realm down` stops JupyterLab and the Weaver's services."""
    import re

    import requests

    from ..helpers import free_port
    paths = realm_home
    port = free_port()
    out = realm("up", "--port", str(port), home=paths.home)
    assert out.returncode == 0, out.stderr + out.stdout
    url = re.search(r"Open: (\S+)", out.stdout).group(1)
    assert url.startswith(f"http://127.0.0.1:{port}/") and "token=" in url, out.stdout
    token = url.split("token=")[1]
    try:
        ps = wait_for(lambda: (p := json.loads(realm("ps", home=paths.home).stdout))
                      and {"daemon", "play (lab)"} <= {x["name"] for x in p["processes"]} and p,
                      60, "ps to list JupyterLab's play and the daemon")
        play = next(x for x in ps["processes"] if x["name"] == "play (lab)")
        assert play["url"] == url and play["port"] == port
        pids = [x["pid"] for x in ps["processes"]]
        api = f"http://127.0.0.1:{port}/realm/api/health"
        assert requests.get(api, headers={"Authorization": f"token {token}"}, timeout=30).status_code == 200
        assert requests.get(api, timeout=30).status_code == 403
    finally:
        down = realm("down", home=paths.home)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not json.loads(down.stdout)["still_running"]
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not events(paths, "weaver_mended")


@pytest.mark.slow
def test_setup_fault_keeps_quest_queued_then_trains(realm_home, procs):
    """A missing base model: the quest stays queued, the cause is recorded once, the
    daemon waits and retries; once the model is there, DIO trains."""
    paths = realm_home
    paths.config_file.write_text(TEST_TOML + '\n[hero]\nbase_model = "models/not-yet"\n')
    quest(paths, "waits.jsonl", 40)
    start = [sys.executable, "-m", "realm_kernel.services.daemon", "--home", str(paths.home)]
    procs.start("daemon", start, child_env(paths.home))
    wait_for(lambda: events(paths, "setup_fault"), 60, "the setup fault")
    # It retries (the daemon's heartbeat counts the tries), and says so only once.
    wait_for(lambda: read_status(paths, DAEMON).get("setup_tries", 0) >= 2, 90, "a retry")
    assert len(events(paths, "setup_fault")) == 1
    assert "no HF model directory" in events(paths, "setup_fault")[0]["message"]
    assert quest_state(paths, "waits.jsonl") == "queued"
    assert not list(paths.queue("failed").iterdir())
    os.symlink(paths.dio_mini, paths.models / "not-yet")
    wait_for(lambda: quest_state(paths, "waits.jsonl") == "completed", 120, "training")
    assert events(paths, "setup_fixed")


@pytest.mark.slow
def test_fresh_home_daemon_builds_the_demo_hero(tmp_path, procs):
    """`realm daemon` on a fresh home, as a new user would run it: no failed quest."""
    home = tmp_path / "fresh"
    home.mkdir()
    (home / "realm.toml").write_text(TEST_TOML)
    from realm_kernel.store.paths import RealmPaths
    paths = RealmPaths.at(home).ensure()
    quest(paths, "first.jsonl", 40)
    procs.start("daemon", [sys.executable, "-m", "realm_kernel.cli", "daemon"], child_env(home))
    wait_for(lambda: quest_state(paths, "first.jsonl") == "completed", 180, "the first quest")
    assert (paths.dio_mini / "config.json").exists()


@pytest.mark.slow
def test_backup_while_training_wipe_restore(realm_home, procs, tmp_path):
    """Back up while DIO trains, wipe the realm, restore: the hero's stats and every
    ledger table's rows match the backup, and every restored row was in the realm."""
    from realm_kernel.api import Realm
    paths = realm_home
    quest(paths, "b.jsonl", 400)
    daemon = procs.start("daemon", [sys.executable, "-m", "realm_kernel.services.daemon",
                                    "--home", str(paths.home)], child_env(paths.home))
    wait_for(lambda: Ledger(paths).scalar("SELECT count(*) FROM checkpoints") >= 1, 120,
             "a checkpoint")
    live = Realm(paths.home)
    live.checkpoints.promote(Ledger(paths).scalar("SELECT max(step) FROM checkpoints"))
    snap = live.backup(tmp_path / "snap")
    assert snap["champion"] and snap["checkpoints"] == [snap["champion"]]
    assert snap["rows"]["metrics"] > 0
    from realm_kernel.api import Realm as SnapRealm
    expected_hero = SnapRealm(snap["path"]).hero()
    wait_for(lambda: Ledger(paths).scalar("SELECT count(*) FROM metrics") > snap["rows"]["metrics"],
             60, "training to go on after the backup")
    procs.stop(daemon)
    before = {t: {json.dumps(r, default=str, sort_keys=True) for r in
                  Ledger(paths).query(f"SELECT * FROM {t}")} for t in ("metrics", "events", "runs")}
    import shutil
    for d in ("ledger", "checkpoints"):
        shutil.rmtree(paths.home / d)
    (paths.home / "ledger.duckdb").unlink()
    out = realm("restore", str(snap["path"]), home=paths.home)
    assert out.returncode == 0, out.stderr
    restored = Realm(paths.home)
    assert restored.hero() == expected_hero
    led = Ledger(paths)
    for table, n in snap["rows"].items():
        assert led.scalar(f"SELECT count(*) FROM {table}") == n, table
    for t, rows in before.items():
        now = {json.dumps(r, default=str, sort_keys=True) for r in led.query(f"SELECT * FROM {t}")}
        assert now <= rows, t
    assert (paths.checkpoints / snap["champion"] / "config.json").exists()
    import duckdb
    con = duckdb.connect(str(paths.ledger_db), read_only=True)
    assert con.execute("SELECT count(*) FROM metrics").fetchall()[0][0] == snap["rows"]["metrics"]
    con.close()


def test_rotating_log_keeps_a_bounded_total(tmp_path):
    log = RotatingLog(tmp_path / "daemon.log", max_bytes=40_000, files=4)
    for i in range(5000):
        log.write(f"line {i:05d} {'x' * 40}\n".encode())
    log.close()
    files = log_files(tmp_path / "daemon.log")
    assert len(files) == 4
    assert sum(f.stat().st_size for f in files) <= 40_000 + 100
    assert b"line 04999" in files[0].read_bytes()  # the newest is in daemon.log


def test_play_serves_copies_so_the_checkout_stays_clean(tmp_path):
    from realm_kernel.cli.jupyter import run_folder
    from realm_kernel.store.paths import RealmPaths
    paths = RealmPaths.at(tmp_path / "home").ensure()
    run = run_folder(paths)
    copy = run / "notebooks" / "Tavern.ipynb"
    assert copy.read_bytes() == (REPO / "notebooks" / "Tavern.ipynb").read_bytes()
    copy.write_text(copy.read_text().replace("The Tavern", "My Tavern"))  # autosave, edits
    run_folder(paths)
    assert "My Tavern" in copy.read_text()  # the user's copy is kept
    status = subprocess.run(["git", "status", "--porcelain", "notebooks/"], cwd=REPO,
                            capture_output=True, text=True)
    assert status.stdout == ""


def test_each_risky_operation_takes_an_automatic_snapshot_first(tmp_path, monkeypatch):
    """A champion change, a retention --apply, a compaction's deletion and a schema
    migration each leave backups/auto/<time>-<reason>/ holding what came before, kept by
    `[backup] keep` per reason."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import realm_kernel.store.ledger as ledger_mod
    from realm_kernel.api import Realm
    from realm_kernel.store.backup import auto_dir, list_backups
    from realm_kernel.store.config import RetentionConfig
    from realm_kernel.store.paths import RealmPaths

    from ..store.test_vault import fake_checkpoint

    def snaps(paths, reason: str) -> list[Path]:
        return [Path(b["path"]) for b in list_backups(paths) if b["reason"] == reason]

    paths = RealmPaths.at(tmp_path / "home").ensure()
    paths.config_file.write_text("[backup]\nkeep = 2\n")
    realm = Realm(paths.home)
    realm.ledger.append("checkpoints", [fake_checkpoint(paths, s, loss) for s, loss in
                                        ((10, 2.0), (20, 0.4), (30, 1.5), (40, 1.0), (50, 0.9))])
    # A champion change: the snapshot holds the ledger as it was before it.
    realm.checkpoints.promote(10)
    [first] = snaps(paths, "champion")
    assert Realm(first).checkpoints.champion() is None
    realm.checkpoints.promote(30)
    before = [(c := Realm(s).checkpoints.champion()) and c["step"] for s in snaps(paths, "champion")]
    assert before == [None, 10]  # oldest first: before the first change, before the second
    for step in (20, 40, 10):
        realm.checkpoints.promote(step)
    assert len(snaps(paths, "champion")) == 2  # kept by count

    # A retention --apply: the ledger before the deletion.
    done = realm.vault.retention(dry_run=False, policy=RetentionConfig(keep_best=1, keep_latest=1,
                                                                       keep_every=0))
    assert done["delete"]
    [ret] = snaps(paths, "retention")
    kept_rows = {r["step"] for r in Realm(ret).ledger.query("SELECT step FROM checkpoints")}
    assert {d["step"] for d in done["delete"]} <= kept_rows

    # A compaction's deletion: the old generation moves there instead.
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    for step in range(3 * ledger_mod.COMPACT_AT):
        realm.ledger.append("metrics", [{"step": step, "loss": 1.0}])
    moved = [g for s in snaps(paths, "compaction") for g in (s / "ledger" / "metrics").glob("gen-*")]
    assert moved and all(list(g.glob("*.parquet")) for g in moved)
    assert len(snaps(paths, "compaction")) <= 2

    # A schema migration: an older ledger is kept as it was before the new columns.
    old = RealmPaths.at(tmp_path / "old").ensure()
    gen = old.segments / "events" / "gen-000000"
    gen.mkdir(parents=True)
    v1 = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("kind", pa.string()), ("message", pa.string()),
                    ("data", pa.string()), ("source", pa.string())])
    pq.write_table(v1.empty_table(), gen / "_schema-v1.parquet")
    pq.write_table(pa.Table.from_pylist([{"kind": "old", "message": "v1"}], schema=v1),
                   gen / "0001-old.parquet")
    (old.segments / "events" / "current").symlink_to("gen-000000")
    Ledger(old, "new")
    [mig] = snaps(old, "migration")
    kept = [p.name for p in (mig / "ledger" / "events").rglob("*.parquet")]
    assert "0001-old.parquet" in kept and f"_schema-v{SCHEMA_VERSION}.parquet" not in kept
    assert auto_dir(old) == mig.parent


SLOW_TO_STOP = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0)))  # sleep-ok: slow to stop
print("up", flush=True)
while True:
    time.sleep(0.1)  # sleep-ok: a child idling until it is stopped
"""

STOPPER = """
import logging, os, signal, sys, threading, time
from pathlib import Path
from realm_kernel.services.weaver import Weaver
from realm_kernel.store.paths import RealmPaths
logging.basicConfig(level=logging.INFO)
weaver = Weaver(RealmPaths.at(sys.argv[1]).ensure(), logging.getLogger("t"),
                services=[("daemon", "slow_to_stop"), ("taskmaster", "slow_to_stop")])
weaver.start()
logs = [RealmPaths.at(sys.argv[1]).logs / f"{s.name}.log" for s in weaver.services]
# Both children have their slow SIGTERM handler (each logs "up" after setting it), then stop.
while not all(f.exists() and "up" in f.read_text() for f in logs):
    time.sleep(0.05)  # sleep-ok: poll interval of the wait on the children's "up"
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # Ctrl-C again, mid-stop
weaver.stop()
print("stopped", [s.status()["alive"] for s in weaver.services], flush=True)
"""


def test_a_second_ctrl_c_while_stopping_keeps_stopping_in_order(tmp_path):
    """The Weaver's orderly stop is not broken off by another Ctrl-C: no traceback, and
    every child (the Task Master after the daemon) is stopped."""
    (tmp_path / "slow_to_stop.py").write_text(SLOW_TO_STOP)
    env = {**child_env(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", ""), str(REPO)])}
    run = subprocess.run([sys.executable, "-c", STOPPER, str(tmp_path / "home")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr[-3000:]
    assert "still stopping" in run.stderr
    assert "stopped [False, False]" in run.stdout
