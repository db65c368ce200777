"""The daemon trains and writes the ledger while four reader processes poll it for a
while training goes on and a fifth holds a read-only DuckDB connection on ledger.duckdb the whole time:
no error reaches a reader, no row is lost or doubled, and training keeps going."""

import json
import subprocess
import sys

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.status import TRAINING, read_status

from ..helpers import child_env, start_daemon, wait_for

pytestmark = pytest.mark.slow
STEPS_DURING_READS = 20  # training must go this far while the readers poll

# Our readers: what the Tavern, the REST API and a notebook using Realm do.
READER = """
import json, os, pathlib, sys, time
from realm_kernel.api import Realm
realm = Realm(sys.argv[1], writer="reader")
stop, ready = sys.argv[2], pathlib.Path(sys.argv[3])
errors, polls, last, dips = [], 0, 0, 0
while not os.path.exists(stop):  # poll until the test has seen training go on
    try:
        state = realm.tavern_state()
        n = realm.ledger.scalar("SELECT count(*) FROM metrics")
        realm.checkpoints.latest()
        if n < last:
            dips += 1
        last = n
        polls += 1
        if polls == 20:
            ready.touch()
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
    time.sleep(0.05)  # sleep-ok: the reader's pace between polls, not a wait
print(json.dumps({"errors": errors[:5], "n_errors": len(errors), "polls": polls, "dips": dips,
                  "last": last}))
"""

# A user's notebook: one read-only connection to ledger.duckdb, open the whole time.
HOLDER = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
first = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
print(json.dumps({"first": first}), flush=True)
sys.stdin.readline()
last = con.execute("SELECT count(*), count(DISTINCT step) FROM metrics").fetchone()  # never re-run
print(json.dumps({"last": last[0], "distinct": last[1]}), flush=True)
"""


def test_training_with_four_pollers_and_a_held_read_only_connection(realm_home, procs, tmp_path):
    realm = Realm(realm_home.home)
    realm.quests.generate("bin", 1, 40000, seed=31)
    start_daemon(procs, realm_home)
    wait_for(lambda: (read_status(realm_home, TRAINING).get("local_step") or 0) > 5, 120,
             "training to start")
    env = child_env(realm_home.home)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(realm_home.ledger_db)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    stop = tmp_path / "stop-readers"
    ready = [tmp_path / f"reader-{i}.ready" for i in range(4)]
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(realm_home.home), str(stop),
                                 str(ready[i])], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(4)]
    try:
        first = json.loads(holder.stdout.readline())["first"]
        # Training never waits on the readers: once every reader is polling, the step
        # still rises by STEPS_DURING_READS while they go on.
        wait_for(lambda: all(p.exists() for p in ready), 180, "every reader to poll 20 times")
        start = read_status(realm_home, TRAINING)["step"]
        wait_for(lambda: read_status(realm_home, TRAINING)["step"] >= start + STEPS_DURING_READS,
                 300, f"{STEPS_DURING_READS} steps while four readers poll")
        assert all(r.poll() is None for r in readers), "a reader died while polling"
        stop.touch()
        results = []
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        realm.training.control("stop")
        wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "stopped", 120, "stop")
        holder.stdin.write("\n")
        holder.stdin.flush()
        held = json.loads(holder.stdout.readline())
    finally:
        for p in (holder, *readers):
            if p.poll() is None:
                p.kill()
                p.wait()
    for res in results:
        assert res["n_errors"] == 0, res["errors"]
        assert res["polls"] > 10 and res["dips"] == 0, res
    # Nothing lost, nothing doubled: one loss row per trained step, seen by every reader.
    top = realm.ledger.scalar("SELECT max(step) FROM metrics")
    losses = realm.ledger.query("SELECT step FROM metrics WHERE loss IS NOT NULL ORDER BY step")
    assert [r["step"] for r in losses] == list(range(1, top + 1))
    total = realm.ledger.scalar("SELECT count(*) FROM metrics")
    assert held["last"] == total and held["distinct"] == top, held
    assert held["last"] > first, "the held connection never saw the rows written after it opened"
    assert not realm.sql("SELECT * FROM events WHERE kind IN ('daemon_error', 'quest_error')")
    print(f"readers: {[r['polls'] for r in results]} polls; {top} steps trained")
