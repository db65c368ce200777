import subprocess
import sys

import duckdb

from realm_kernel.ledger import TABLES, Ledger, MetricBuffer
from realm_kernel.paths import RealmPaths


def make(tmp_path, writer="test"):
    return Ledger(RealmPaths.at(tmp_path).ensure(), writer)


def test_every_table_answers_before_any_row(tmp_path):
    led = make(tmp_path)
    for table in TABLES:
        assert led.query(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    assert led.query("SELECT * FROM quest_status") == []


def test_append_and_latest_state_per_key(tmp_path):
    led = make(tmp_path)
    led.append("quests", [{"quest_id": "a", "status": "queued"}])
    led.append("quests", [{"quest_id": "a", "status": "processing"}, {"quest_id": "b", "status": "queued"}])
    led.append("quests", [{"quest_id": "a", "status": "completed"}])
    assert {r["quest_id"]: r["status"] for r in led.query("SELECT * FROM quest_status")} == {
        "a": "completed", "b": "queued"}
    assert led.scalar("SELECT count(*) FROM quests") == 4


def test_unknown_column_is_refused_and_nothing_written(tmp_path):
    led = make(tmp_path)
    try:
        led.append("metrics", [{"step": 1, "bogus": 2}])
    except KeyError as e:
        assert "bogus" in str(e)
    assert led.scalar("SELECT count(*) FROM metrics") == 0


def test_metric_buffer_batches_rows(tmp_path):
    led = make(tmp_path)
    buf = MetricBuffer(led, interval=3600)
    for step in range(50):
        buf.add({"step": step, "loss": 1.0 / (step + 1)})
    assert led.scalar("SELECT count(*) FROM metrics") == 0
    buf.flush()
    assert led.scalar("SELECT count(*) FROM metrics") == 50
    segments = [p for p in led.segment_files("metrics") if not p.name.startswith("_")]
    assert len(segments) == 1


def test_user_read_only_connection_sees_new_rows_and_never_blocks_writers(tmp_path):
    led = make(tmp_path, "daemon")
    assert led.ensure_views()
    led.append("metrics", [{"step": 1, "loss": 2.0}])
    # A user's notebook holds the file read-only in another process...
    code = (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(led.paths.ledger_db)!r}, read_only=True)\n"
        "print(con.execute('SELECT count(*) FROM metrics').fetchone()[0], flush=True)\n"
        "sys.stdin.readline()\n"
        "print(con.execute('SELECT count(*) FROM metrics').fetchone()[0], flush=True)\n"
    )
    user = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert user.stdout.readline().strip() == "1"
        # ...while the daemon keeps writing, and even view re-creation fails politely.
        led.append("metrics", [{"step": 2, "loss": 1.5}, {"step": 3, "loss": 1.2}])
        assert led.ensure_views() is False
        user.stdin.write("\n")
        user.stdin.flush()
        assert user.stdout.readline().strip() == "3"
    finally:
        user.kill()
        user.wait()
    # And a plain duckdb read-only connection afterwards sees everything.
    con = duckdb.connect(str(led.paths.ledger_db), read_only=True)
    assert con.execute("SELECT max(step) FROM metrics").fetchone()[0] == 3
    con.close()


def test_compaction_bounds_segments_and_keeps_every_row_once(tmp_path, monkeypatch):
    import realm_kernel.ledger as ledger_mod
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    led = make(tmp_path)
    for step in range(300):
        led.append("metrics", [{"step": step, "loss": 1.0}])
    assert len(led.segment_files("metrics")) <= ledger_mod.COMPACT_AT + 1
    assert led.scalar("SELECT count(*) FROM metrics") == 300
    assert led.scalar("SELECT count(DISTINCT step) FROM metrics") == 300
    gens = sorted(p.name for p in led.table_dir("metrics").glob("gen-*"))
    assert len(gens) <= 2, gens  # old generations are swept after the grace period
    assert led.compact("metrics") >= 2 and led.scalar("SELECT count(*) FROM metrics") == 300


READER = """
import sys, time, duckdb
from realm_kernel.ledger import Ledger
from realm_kernel.paths import RealmPaths
raw = duckdb.connect(sys.argv[1], read_only=True)   # a user's own connection
ours = Ledger(RealmPaths.at(sys.argv[2]))           # the API's reader
raw_seen, ours_seen = [], []
deadline = time.time() + 60
while time.time() < deadline:
    try:
        raw_seen.append(raw.execute("SELECT count(*) FROM metrics").fetchone()[0])
    except duckdb.IOException:  # listed just before a compaction swap: re-run
        raw_seen.append(-1)
    ours_seen.append(ours.scalar("SELECT count(*) FROM metrics"))
    if ours_seen[-1] >= int(sys.argv[3]):
        break
print(",".join(map(str, raw_seen)))
print(",".join(map(str, ours_seen)))
"""


def test_readers_never_see_double_rows_during_compaction(tmp_path):
    led = make(tmp_path)
    assert led.ensure_views()
    total = 400
    reader = subprocess.Popen([sys.executable, "-c", READER, str(led.paths.ledger_db),
                               str(led.paths.home), str(total)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for step in range(total):
        led.append("metrics", [{"step": step, "loss": 0.5}])
    out, err = reader.communicate(timeout=90)
    assert reader.returncode == 0, err[-2000:]
    raw, ours = ([int(x) for x in line.split(",")] for line in out.strip().splitlines())
    print(f"raw reader: {raw.count(-1)} of {len(raw)} queries hit a compaction swap")
    assert max(raw) <= total and max(ours) <= total, "a row was counted twice"
    assert ours[-1] == total
    dips = [(i, a, b) for i, (a, b) in enumerate(zip(ours, ours[1:], strict=False)) if a > b]
    assert not dips, f"our reader saw rows vanish: {dips[:5]} of {len(ours)} polls"
