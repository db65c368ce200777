import json
import subprocess
import sys
import time

import duckdb
import pytest

from realm_kernel.store.ledger import Ledger, MetricBuffer
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.schema import TABLES
from tests.helpers import wait_for


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
    with pytest.raises(KeyError, match="bogus"):
        led.append("metrics", [{"step": 1, "bogus": 2}])
    assert led.scalar("SELECT count(*) FROM metrics") == 0


# flush() must not wait out the 1-hour interval: one that did fails here in 20 s, not
# after pytest's 10 minutes (a mutation run's own limit would call it a timeout)
@pytest.mark.timeout(20)
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


def test_metric_buffer_writes_off_the_callers_thread_and_flush_waits_for_it(tmp_path):
    """Rows, events and status files are queued by the caller and written by the buffer's
    own thread within its interval; flush() returns only once everything is on disk."""
    import threading
    led = make(tmp_path)
    buf = MetricBuffer(led, interval=0.05)
    status = led.paths.status / "training.json"
    writers: set[str] = set()
    append = led.append
    led.append = lambda table, rows: (writers.add(threading.current_thread().name), append(table, rows))[1]
    for step in range(20):
        buf.add({"step": step, "loss": 1.0})
        buf.put_file(status, {"step": step})
    buf.event("battle_paused", "paused at 19")
    from ..helpers import wait_for
    wait_for(lambda: led.scalar("SELECT count(*) FROM metrics") == 20, 10, "the rows, unflushed")
    buf.flush()
    assert json.loads(status.read_text()) == {"step": 19}, "the newest status wins"
    assert led.scalar("SELECT count(*) FROM events WHERE kind = 'battle_paused'") == 1
    assert writers == {"realm-metrics"}, "never written on the caller's thread"
    # A write's error reaches the caller (a full disk fails the job as before).
    buf.add({"step": 20, "bogus": 1})
    with pytest.raises(KeyError, match="bogus"):
        buf.flush()
    buf.close(quiet=True)


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
    import realm_kernel.store.ledger as ledger_mod
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
import json, sys, time, duckdb
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
raw = duckdb.connect(sys.argv[1], read_only=True)   # a user's own connection, held throughout
ours = Ledger(RealmPaths.at(sys.argv[2]))           # the API's reader
polls, errors, ours_seen = [], [], []
deadline = time.time() + 120
ready = open(sys.argv[4], "w")  # the writer starts once this reader is polling
while time.time() < deadline:
    try:  # rows are steps 0..k appended in order: exactly once means count == distinct == max + 1
        polls.append(raw.execute("SELECT count(*), count(DISTINCT step), coalesce(max(step), -1) "
                                 "FROM metrics").fetchone())
    except duckdb.Error as e:
        errors.append(f"{type(e).__name__}: {e}")
    ours_seen.append(ours.scalar("SELECT count(*) FROM metrics"))
    if not ready.closed:
        ready.close()
    if ours_seen[-1] >= int(sys.argv[3]):
        break
final = raw.execute("SELECT count(*), count(DISTINCT step) FROM metrics").fetchone()
print(json.dumps({"polls": polls, "errors": errors[:5], "n_errors": len(errors), "ours": ours_seen,
                  "final": final}))
"""


def test_raw_reader_never_fails_and_counts_every_row_once_through_compactions(tmp_path, monkeypatch):
    """A user's raw read-only connection in a tight loop through 600 appends (9 compactions,
    old generations swept): zero errors, every poll sees each row exactly once; raw/ is
    tidied once the connection is closed."""
    import realm_kernel.store.ledger as ledger_mod
    monkeypatch.setattr(ledger_mod, "RAW_GRACE_S", 1.0)  # merged-away sources due within the run
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 1.0)
    led = make(tmp_path)
    assert led.ensure_views()
    total = 600
    ready = tmp_path / "reader-ready"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(led.paths.ledger_db),
                               str(led.paths.home), str(total), str(ready)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: ready.exists() or reader.poll() is not None, 120, "the reader's first poll")
    for step in range(total):
        led.append("metrics", [{"step": step, "loss": 0.5}])
        time.sleep(0.01)  # sleep-ok: ~6 s of appends, so several graces pass while the reader reads
    out, err = reader.communicate(timeout=150)
    assert reader.returncode == 0, err[-2000:]
    got = json.loads(out)
    print(f"raw reader: {len(got['polls'])} polls, {got['n_errors']} errors")
    assert got["n_errors"] == 0, got["errors"]
    # Polled throughout: it saw the table at many sizes (a poll count would depend on the
    # machine's load: at load 8 a reader managed 35 polls in the ~3 s of appends).
    assert len({p[0] for p in got["polls"]}) >= 10, "the reader polled throughout"
    bad = [p for p in got["polls"] if not p[0] == p[1] == p[2] + 1]
    assert not bad, f"rows missing or counted twice in {len(bad)} polls, e.g. {bad[:3]}"
    assert got["final"] == [total, total]
    ours = got["ours"]
    assert ours[-1] == total and all(a <= b for a, b in zip(ours, ours[1:], strict=False))
    # While it was open nothing left raw/; once it is closed, the next append tidies up.
    raw = led.raw_dir("metrics")
    assert len(list(raw.glob("*.parquet"))) > total, "merged-away sources kept under the reader"
    time.sleep(1.1)  # sleep-ok: raw/'s one-second grace must pass: time is what this tests
    led.append("metrics", [{"step": total, "loss": 0.5}])
    live = {f.name for f in led.segment_files("metrics")}
    assert {f.name for f in raw.glob("*.parquet")} == live
    assert led.scalar("SELECT count(*) FROM metrics") == total + 1


def test_raw_readers_attached_sees_other_processes_and_our_own(tmp_path):
    from realm_kernel.store.ledger import raw_readers_attached
    led = make(tmp_path)
    assert led.ensure_views() and not raw_readers_attached(led.paths.ledger_db)
    code = f"import duckdb, sys; c = duckdb.connect({str(led.paths.ledger_db)!r}, read_only=True); " \
           "print('open', flush=True); sys.stdin.readline()"
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "open"
        assert raw_readers_attached(led.paths.ledger_db)
    finally:
        other.communicate("\n", timeout=30)
    assert not raw_readers_attached(led.paths.ledger_db)
    ours = duckdb.connect(str(led.paths.ledger_db), read_only=True)
    assert raw_readers_attached(led.paths.ledger_db)  # this process's own connection
    ours.close()
    assert not raw_readers_attached(led.paths.ledger_db)


def test_raw_views_read_an_old_ledger_and_its_merged_rows_once(tmp_path, monkeypatch):
    """Rows written before v5 (no `_seg`) keep one copy in the raw views while their
    merged file and the source both sit in raw/."""
    from realm_kernel.store.schema import SEG
    led = make(tmp_path)
    gen = led.current_dir("metrics").resolve()
    v4 = pa.schema([f for f in TABLES["metrics"] if f.name != SEG])
    for i in range(3):  # segments of an older writer, without the origin column
        pq.write_table(pa.Table.from_pylist([{"step": i, "loss": 1.0}], schema=v4),
                       gen / f"0000{i}-old.parquet")
    led.append("metrics", [{"step": 3, "loss": 1.0}])  # links the old ones into raw/ too
    assert led.compact("metrics") == 4  # merged into a new slot; the sources stay (grace)
    assert led.ensure_views()
    con = duckdb.connect(str(led.paths.ledger_db), read_only=True)
    rows = con.execute("SELECT step FROM metrics ORDER BY step").fetchall()
    assert rows == [(0,), (1,), (2,), (3,)]
    assert "_seg" not in [d[0] for d in con.execute("SELECT * FROM metrics").description]
    con.close()
    assert led.query("SELECT step FROM metrics ORDER BY step") == [{"step": s} for s in range(4)]
    assert len(list(led.raw_dir("metrics").glob("*.parquet"))) >= 6  # sources + merged + marker


# -- schema versions, the checkpoint ledger, tail reads ---------------------------------

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from realm_kernel.store.schema import SCHEMA_VERSION  # noqa: E402


def test_an_old_ledger_is_migrated_and_keeps_its_rows(tmp_path):
    paths = RealmPaths.at(tmp_path).ensure()
    # A v1 ledger: the events table without the `key` column, one row written.
    gen = paths.segments / "events" / "gen-000000"
    gen.mkdir(parents=True)
    v1 = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("kind", pa.string()),
                    ("message", pa.string()), ("data", pa.string()), ("source", pa.string())])
    pq.write_table(v1.empty_table(), gen / "_schema-v1.parquet")
    pq.write_table(pa.table({"ts": pa.array([None], v1.field("ts").type), "kind": ["old"],
                             "message": ["from v1"], "data": [""], "source": ["daemon"]},
                            schema=v1), gen / "0001-old.parquet")
    (paths.segments / "events" / "current").symlink_to("gen-000000")
    led = Ledger(paths, "new")
    assert (gen / f"_schema-v{SCHEMA_VERSION}.parquet").exists()
    led.event("champion", "new style", key="champion")
    rows = led.query("SELECT kind, key FROM events ORDER BY kind")
    assert rows == [{"kind": "champion", "key": "champion"}, {"kind": "old", "key": None}]
    assert led.ensure_views()
    con = duckdb.connect(str(paths.ledger_db), read_only=True)
    assert con.execute("SELECT schema_version FROM ledger_info").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_tail_reads_match_the_full_query(tmp_path, monkeypatch):
    import realm_kernel.store.ledger as ledger_mod
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    led = make(tmp_path)
    # Steps out of order across segments (a resumed run repeats steps), eval rows sparse.
    for start in (1, 200, 100, 150, 400):
        led.append("metrics", [{"step": s, "loss": 1.0 / s} for s in range(start, start + 60)])
    led.append("metrics", [{"step": s, "val_loss": 2.0 / s} for s in (50, 420)])
    for n in (1, 5, 61, 500):
        full = led.query("SELECT step, loss FROM metrics WHERE loss IS NOT NULL "
                         f"ORDER BY step DESC, ts DESC LIMIT {n}")
        assert led.tail("metrics", "step, loss", n, notnull="loss") == full
    assert led.tail("metrics", "val_loss", 1, notnull="val_loss") == [{"val_loss": 2.0 / 420}]
    assert led.max_value("metrics", "step") == 459
    assert led.tail("evals", "accuracy", 1, notnull="accuracy") == []
    for i in range(80):  # compaction swaps generations under the cached statistics
        led.append("metrics", [{"step": 1000 + i, "loss": 0.1}])
    assert led.max_value("metrics", "step") == 1079
    assert led.tail("metrics", "step", 2, notnull="loss") == [{"step": 1079}, {"step": 1078}]


def test_dead_writers_temp_segments_are_removed_and_live_ones_kept(tmp_path):
    import os

    from realm_kernel.store.ledger import remove_dead_temp_segments
    led = make(tmp_path)
    led.append("metrics", [{"step": 1, "loss": 1.0}])
    gen = led.segment_files("metrics")[0].parent
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a writer that has exited
    dead = gen / f".0009-w.parquet.{gone.pid}.tmp"
    dead_too = gen / f".0011-w.parquet.{gone.pid}.tmp"
    live = gen / f".0010-w.parquet.{os.getpid()}.tmp"  # this process: still writing
    odd = gen / ".notes.tmp"  # no pid in its name: not ours to judge
    for p in (dead, dead_too, live, odd):
        p.write_bytes(b"partial parquet")
    assert remove_dead_temp_segments(led.paths) == 2  # each counted
    assert not dead.exists() and not dead_too.exists() and live.exists() and odd.exists()
    assert led.scalar("SELECT count(*) FROM metrics") == 1, "temp files are never rows"
