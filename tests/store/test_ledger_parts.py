"""The ledger's parts one by one, exactly: segment statistics, the statistics cache, tail
reads that open only the segments that can hold the answer, writer names, segment names
and layout, compaction's new generation and the old one's sweep, the metric buffer's
errors and close. (Whole-ledger behaviour under readers and crashes: test_ledger.py and
tests/reliability/.)"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import realm_kernel.store.ledger as ledger_mod
from realm_kernel.store.backup import auto_dir
from realm_kernel.store.ledger import (
    COMPACT_AT,
    Ledger,
    MetricBuffer,
    raw_readers_attached,
    segment_stats,
)
from realm_kernel.store.schema import SCHEMA_VERSION, SEG, TABLES

from .test_ledger import make


def test_segment_stats_are_the_exact_max_and_non_null_counts_over_row_groups(tmp_path):
    data = pa.table({"step": pa.array([3, None, 9, 7], pa.int64()),
                     "loss": pa.array([None, None, 0.5, 0.25], pa.float64()),
                     "flag": pa.array([True, False, True, None]),
                     "name": pa.array(["a", "z", None, "b"]),
                     "ts": pa.array([datetime(2026, 1, d, tzinfo=UTC) for d in (4, 1, 9, 2)],
                                    pa.timestamp("us", tz="UTC"))})
    path = tmp_path / "seg.parquet"
    pq.write_table(data, path, row_group_size=2)  # two row groups: [3, None], [9, 7]
    st = segment_stats(path)
    assert st.path == path and st.rows == 4
    # numbers and timestamps (no bool, no string) ordered by hi; strings by their span
    assert st.hi == {"step": 9, "loss": 0.5, "ts": datetime(2026, 1, 9, tzinfo=UTC)}
    assert st.spans == {"name": ("a", "z")}
    assert st.nonnull == {"step": 3, "loss": 2, "flag": 3, "name": 3, "ts": 4}
    assert st.may_hold("name", ["b"]) and st.may_hold("name", ["zz", "a"])
    assert not st.may_hold("name", ["0", "zz"])  # outside a..z: proven absent
    assert not st.may_hold("name", [])
    assert st.may_hold("flag", ["x"])  # no span for the column: anything may be there
    one = tmp_path / "one.parquet"
    pq.write_table(pa.table({"step": pa.array([-5, -2], pa.int64())}), one)
    assert segment_stats(one).hi == {"step": -2} and segment_stats(one).nonnull == {"step": 2}
    empty = tmp_path / "empty.parquet"
    pq.write_table(TABLES["metrics"].empty_table(), empty)
    assert segment_stats(empty).rows == 0 and segment_stats(empty).hi == {}
    assert not segment_stats(empty).may_hold("kind", ["x"])  # no value at all
    bare = tmp_path / "bare.parquet"  # written without statistics: nothing is proven absent
    pq.write_table(pa.table({"kind": ["a", "b"]}), bare, write_statistics=False)
    assert segment_stats(bare).spans == {} and segment_stats(bare).may_hold("kind", ["zz"])


def test_snapshot_lists_the_live_generation_and_forgets_merged_away_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 3600.0)
    led = make(tmp_path)
    for step in range(COMPACT_AT - 1):  # with the schema segment: COMPACT_AT files, no merge yet
        led.append("metrics", [{"step": step, "loss": 1.0}])
    snap = led.snapshot("metrics")
    assert [s.path.name for s in snap] == [p.name for p in led.segment_files("metrics")]
    assert [s.rows for s in snap] == [1] * (COMPACT_AT - 1) + [0]  # the schema segment sorts last
    cache = led._stats[led.table_dir("metrics")]
    assert len(cache) == COMPACT_AT
    assert led.snapshot("metrics")[0] is snap[0]  # cached: a segment never changes
    led.append("metrics", [{"step": 99, "loss": 1.0}])  # over COMPACT_AT files: one merge
    snap = led.snapshot("metrics")
    assert [s.rows for s in snap] == [COMPACT_AT, 0]
    assert len(led._stats[led.table_dir("metrics")]) == COMPACT_AT + 2  # stale entries kept while few
    for step in range(100, 100 + COMPACT_AT - 1):  # the second merge comes at the last one
        led.append("metrics", [{"step": step, "loss": 1.0}])
        led.snapshot("metrics")
    snap = led.snapshot("metrics")
    assert [s.rows for s in snap] == [2 * COMPACT_AT - 1, 0]
    # Over 4 x live files + 64 cached entries: the merged-away ones are forgotten.
    assert sorted(led._stats[led.table_dir("metrics")]) == sorted(s.path for s in snap)
    # Each table's sweep is its own: a table of few segments keeps the others' cache.
    led.event("achievement", "First Blood")
    led.snapshot("events")
    assert sorted(led._stats[led.table_dir("metrics")]) == sorted(s.path for s in snap)


def test_tail_opens_only_the_segments_that_can_hold_the_top_rows(tmp_path, monkeypatch):
    led = make(tmp_path)
    for start in (100, 1, 300, 200):  # four segments of 50 steps, out of order
        led.append("metrics", [{"step": s, "loss": float(s)} for s in range(start, start + 50)])
    led.append("metrics", [{"step": 120, "val_loss": 0.5}, {"step": 20, "val_loss": 0.7}])
    opened: list[int] = []
    real_connection = Ledger._connection

    def spying(self):
        con = real_connection(self)

        class Spy:
            def cursor(self):
                cur = con.cursor()

                class C:
                    def execute(self, sql, *a):
                        if "read_parquet([" in sql:
                            opened.append(len(re.findall(r"'[^']+\.parquet'", sql)))
                        return cur.execute(sql, *a)

                    def close(self):
                        cur.close()
                return C()
        return Spy()
    monkeypatch.setattr(Ledger, "_connection", spying)

    def tail(limit, notnull=None, cols="step"):
        opened.clear()
        got = led.tail("metrics", cols, limit, notnull=notnull)
        return got, list(opened)

    assert tail(1) == ([{"step": 349}], [1])  # the newest range alone
    assert tail(50, "loss") == ([{"step": s} for s in range(349, 299, -1)], [1])
    got, reads = tail(51, "loss")  # one row more than a segment: two segments, one read
    assert got == [{"step": s} for s in [*range(349, 299, -1), 249]] and reads == [2]
    got, reads = tail(1000, "loss")
    assert len(got) == 200 and reads == [4]
    # val_loss sits in one segment only: it is the only one read.
    assert tail(2, "val_loss", "step, val_loss") == (
        [{"step": 120, "val_loss": 0.5}, {"step": 20, "val_loss": 0.7}], [1])
    assert tail(0) == ([], [1])
    assert tail(3, "accuracy") == ([], [])  # no segment has the column: nothing opened
    # A segment left out whose range overlaps the answer forces a wider read, never a wrong one.
    led.append("metrics", [{"step": 348, "loss": 9.0}, {"step": 1, "loss": 9.0}])
    full = led.query("SELECT step, loss FROM metrics WHERE loss IS NOT NULL "
                     "ORDER BY step DESC, ts DESC LIMIT 3")
    got, reads = tail(3, "loss", "step, loss")
    assert got == full and got[1] == {"step": 348, "loss": 9.0}
    assert reads == [1, 2]  # the newest range gave one row above the bound: widened once


def test_a_kept_tail_reads_only_the_segments_written_since(tmp_path, monkeypatch):
    """A page polls the same tail while DIO trains: with nothing new it opens no segment,
    after an append it opens that one segment, and every answer equals the full query
    (steps repeated across segments, ties broken by ts, a compaction in between)."""
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    led = make(tmp_path)
    for start in (1, 200, 100):
        led.append("metrics", [{"step": s, "loss": 1.0 / s} for s in range(start, start + 60)])

    def full(n, cols="step, loss"):
        return led.query(f"SELECT {cols} FROM metrics WHERE loss IS NOT NULL "
                         f"ORDER BY step DESC, ts DESC LIMIT {n}")

    def tail(n, cols="step, loss"):
        before = led.segments_read
        got = led.tail("metrics", cols, n, notnull="loss")
        return got, led.segments_read - before

    for n in (3, 100, 500):
        got, _ = tail(n)
        assert got == full(n)
        assert tail(n) == (got, 0)  # nothing changed: nothing opened, the same answer
    led.append("metrics", [{"step": 259, "loss": 7.0}, {"step": 5, "loss": 8.0}])  # a repeated step
    led.append("metrics", [{"step": 1, "val_loss": 0.5}])  # no loss: never opened for this tail
    for n in (3, 100, 500):
        got, opened = tail(n)
        assert got == full(n) and opened == 1
    assert tail(2)[0][0] == {"step": 259, "loss": 7.0}  # the newer row of a repeated step first
    assert tail(2, "loss")[0] == [{"loss": 7.0}, {"loss": 1.0 / 259}]  # key and ts never leak out
    for i in range(COMPACT_AT):  # a compaction: segments gone, read afresh
        led.append("metrics", [{"step": 1000 + i, "loss": 0.1}])
    got, opened = tail(100)
    assert got == full(100) and opened >= 1
    assert tail(0)[0] == [] and tail(0) == ([], 0)


def test_the_newest_events_of_some_kinds_open_only_the_segments_that_can_hold_them(tmp_path,
                                                                                   monkeypatch):
    """What the Tavern's feed, toasts and loss marks poll: the newest events (of some
    kinds), ordered by ts. Each answer equals the full query; a poll after an event of
    another kind opens nothing, after one of its kinds it opens that one segment."""
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    led = make(tmp_path)
    kinds = ["checkpoint_saved", "eval_done", "loss_alarm", "achievement"]
    for i in range(40):  # one event per segment, as the daemon writes them
        led.event(kinds[i % 4], f"e{i}", json.dumps({"step": i}))
    at = datetime.now(UTC)  # a batch of five (ties in ts are unordered in SQL too: none here)
    led.append("events", [{"kind": "eval_done", "message": f"b{i}", "ts": at.replace(microsecond=i)}
                          for i in range(5)])

    def full(n, only=None):
        where = f"WHERE kind IN ({', '.join(repr(k) for k in only)})" if only else ""
        return led.query(f"SELECT ts, kind, message FROM events {where} ORDER BY ts DESC LIMIT {n}")

    def tail(n, only=None):
        before = led.segments_read
        got = led.tail("events", "ts, kind, message", n, key="ts", kinds=only)
        return got, led.segments_read - before

    for n, only in ((1, None), (10, None), (100, None), (3, ["loss_alarm"]),
                    (50, ["achievement", "loss_alarm"]), (5, ["eval_done"]), (5, ["never"])):
        got, opened = tail(n, only)
        assert got == full(n, only), (n, only)
        assert tail(n, only) == (got, 0)  # nothing new: nothing opened
    assert tail(1)[1] == 0 and tail(3, ["never"]) == ([], 0)  # no segment can hold it
    got, opened = tail(3, ["loss_alarm"])
    led.event("checkpoint_saved", "not an alarm")
    assert tail(3, ["loss_alarm"]) == (got, 0)  # another kind: its statistics rule it out
    assert tail(10)[1] == 1 and tail(10)[0] == full(10)  # every kind: that one segment
    led.event("loss_alarm", "loss spiked", json.dumps({"step": 77}))
    got, opened = tail(3, ["loss_alarm"])
    assert got == full(3, ["loss_alarm"]) and got[0]["message"] == "loss spiked" and opened == 1
    steps = led.tail("events", "CAST(json_extract(data, '$.step') AS BIGINT) AS step", 2,
                     key="ts", kinds=["loss_alarm"])
    assert steps == [{"step": 77}, {"step": 38}]  # the newest alarm before it: i = 38
    for i in range(COMPACT_AT):  # a compaction: segments gone, read afresh
        led.event("eval_done", f"c{i}")
    assert tail(100)[0] == full(100) and tail(7, ["loss_alarm"])[0] == full(7, ["loss_alarm"])


def test_a_kinds_stamp_changes_only_with_rows_of_its_kinds(tmp_path, monkeypatch):
    """The change stamp of some kinds of events (the Tavern's toasts, the Vault's champion):
    an event of another kind leaves it, one of its kinds or a compaction changes it."""
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 0.0)
    led = make(tmp_path)
    toast = ("achievement", "champion")
    first = led.kinds_generation("events", toast)
    led.event("checkpoint_saved", "saved")
    led.event("eval_done", "scored")
    assert led.kinds_generation("events", toast) == first
    led.event("champion", "a new champion")
    second = led.kinds_generation("events", toast)
    assert second != first and second[1] == first[1] + 1
    assert led.kinds_generation("events", ("eval_done",)) != led.kinds_generation("events", toast)
    # A batch spanning kinds (the metric buffer's) may hold one: it changes the stamp.
    led.append("events", [{"kind": "a_first", "message": ""}, {"kind": "z_last", "message": ""}])
    third = led.kinds_generation("events", toast)
    assert third != second
    for i in range(COMPACT_AT):
        led.event("eval_done", f"c{i}")
    assert led.kinds_generation("events", toast)[0] != third[0]  # a new generation


def test_a_kept_query_runs_again_only_when_a_table_it_reads_changed(tmp_path, monkeypatch):
    led = make(tmp_path)
    ran: list[str] = []
    real_run = Ledger._run
    monkeypatch.setattr(Ledger, "_run", lambda self, con, sql, params: ran.append(sql) or real_run(
        self, con, sql, params))
    sql = ("SELECT (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy, "
           "(SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed")
    assert ledger_mod.tables_read(sql) == ("evals", "quests")  # quest_status is a view over quests
    assert ledger_mod.tables_read("SELECT step FROM champion") == ("events",)  # its body says 'champion'
    assert ledger_mod.tables_read("SELECT * FROM hero") == ("evals", "metrics", "quests")
    # A CTE or a column named like a table is not that table (DuckDB's parser says which are).
    assert ledger_mod.tables_read("WITH runs AS (SELECT * FROM evals) SELECT count(*) AS tasks "
                                  "FROM runs") == ("evals",)
    assert ledger_mod.tables_read("SELEC oops FROM evals, runs") == ("evals", "runs")  # unparsed: words
    # A table beside a view: both kept (the view's tables are added, not swapped in).
    assert ledger_mod.tables_read("SELECT * FROM metrics JOIN champion ON true") == ("events", "metrics")
    both = ledger_mod.tables_read("SELECT * FROM quest_status, checkpoint_ledger")
    assert both == ("checkpoints", "quests")
    assert led.kept_query(sql) == [{"accuracy": None, "completed": 0}] and len(ran) == 1
    first = led.kept_query(sql)
    assert first == [{"accuracy": None, "completed": 0}] and len(ran) == 1  # nothing changed
    first[0]["accuracy"] = 9.9  # a caller's edit never reaches the kept answer
    led.append("metrics", [{"step": 1, "loss": 1.0}])  # a table it does not read
    assert led.kept_query(sql) == [{"accuracy": None, "completed": 0}] and len(ran) == 1
    led.append("evals", [{"accuracy": 0.5}])
    assert led.kept_query(sql) == [{"accuracy": 0.5, "completed": 0}] and len(ran) == 2
    led.append("quests", [{"quest_id": "q", "status": "completed"}])
    assert led.kept_query(sql) == [{"accuracy": 0.5, "completed": 1}] and len(ran) == 3
    above = "SELECT count(*) AS n FROM evals WHERE accuracy > ?"
    assert led.kept_query(above, [0.1]) == [{"n": 1}] and len(ran) == 4  # kept per parameters too
    assert led.kept_query(above, [0.9]) == [{"n": 0}] and len(ran) == 5
    assert led.kept_query(above, [0.1]) == [{"n": 1}] and len(ran) == 5


def test_writer_names_segment_names_and_layout(tmp_path):
    assert make(tmp_path, "daemon:7/../x y").writer == "daemon7xy"
    assert make(tmp_path, "a-b_c").writer == "a-b_c"
    assert make(tmp_path, "!!/").writer == "w"
    led = make(tmp_path, "w1")
    assert led._stats == {} and led._conn is None
    seg = led.paths.segments
    assert led.table_dir("runs") == seg / "runs"
    assert led.current_dir("runs") == seg / "runs" / "current"
    assert led.raw_dir("runs") == seg / "runs" / "raw"
    with pytest.raises(KeyError, match=r"unknown ledger table 'nope'; known: \['achievements', 'assets'"):
        led.table_dir("nope")
    assert os.readlink(led.current_dir("runs")) == "gen-000000"
    assert led.generations() == tuple("gen-000000" for _ in TABLES)
    marker = f"_schema-v{SCHEMA_VERSION}.parquet"
    for t in TABLES:
        assert [p.name for p in led.segment_files(t)] == [marker]
        assert (led.raw_dir(t) / marker).samefile(led.current_dir(t) / marker)
    assert led.append("runs", []) is None
    dest = led.append("runs", [{"run_id": "r1"}, {"run_id": "r2"}])
    assert dest.parent == led.current_dir("runs").resolve()
    assert re.fullmatch(rf"\d{{20}}-w1-{os.getpid()}-\d{{6}}\.parquet", dest.name)
    assert (led.raw_dir("runs") / dest.name).samefile(dest)  # raw readers see it at once
    table = pq.read_table(dest)
    assert table.column(SEG).to_pylist() == [dest.name, dest.name]
    assert table.schema == TABLES["runs"]
    ts = table.column("ts").to_pylist()
    assert all(t is not None and abs(t.timestamp() - time.time()) < 600 for t in ts)
    with pytest.raises(KeyError, match=r"ledger table 'runs' has no column\(s\) \['a', 'b'\]"):
        led.append("runs", [{"run_id": "x", "b": 1}, {"a": 2}])
    second = led.append("runs", [{"run_id": "r3"}])
    assert second.name > dest.name  # names sort in write order
    assert led.scalar("SELECT count(*) FROM runs") == 3
    assert led.scalar("SELECT run_id FROM runs WHERE run_id = ?", ["r9"]) is None
    assert led.query("SELECT run_id FROM runs WHERE run_id IN (?, ?) ORDER BY run_id", ["r1", "r3"]) == [
        {"run_id": "r1"}, {"run_id": "r3"}]
    led.event("note", "hello", data="{}", key="k")
    assert led.query("SELECT kind, message, data, source, key FROM events") == [
        {"kind": "note", "message": "hello", "data": "{}", "source": "w1", "key": "k"}]
    led.event("note", "again", source="tm")
    assert led.scalar("SELECT source FROM events WHERE message = 'again'") == "tm"
    led.close()
    assert led._conn is None
    assert led.scalar("SELECT count(*) FROM runs") == 3  # reopens


def test_compaction_makes_the_next_generation_and_sweeps_old_ones_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_mod, "OLD_GENERATION_GRACE_S", 3600.0)
    led = make(tmp_path)
    assert led.compact("metrics") == 0  # nothing to merge (the schema segment never is)
    first = led.append("metrics", [{"step": 1, "loss": 1.0}])
    assert led.compact("metrics") == 0  # one small segment: nothing to merge
    monkeypatch.setattr(ledger_mod, "SMALL_SEGMENT_BYTES", 1 << 30)
    second = led.append("metrics", [{"step": 2, "loss": 1.0}])
    big = led.append("metrics", [{"step": s, "loss": 0.5} for s in range(3, 40)])
    monkeypatch.setattr(ledger_mod, "SMALL_SEGMENT_BYTES", big.stat().st_size - 1)  # `big` stays as is
    assert led.compact("metrics") == 2
    assert os.readlink(led.current_dir("metrics")) == "gen-000001"
    names = sorted(p.name for p in led.segment_files("metrics"))
    assert names == sorted([f"_schema-v{SCHEMA_VERSION}.parquet", big.name, f"{second.stem}-m2.parquet"])
    assert (led.current_dir("metrics") / big.name).samefile(big)  # linked, not copied
    merged = pq.read_table(led.current_dir("metrics") / f"{second.stem}-m2.parquet")
    assert sorted(merged.column(SEG).to_pylist()) == sorted([first.name, second.name])
    assert led.scalar("SELECT count(*) FROM metrics") == 39
    gens = led.table_dir("metrics")
    assert sorted(p.name for p in gens.glob("gen-*")) == ["gen-000000", "gen-000001"]
    # The old generation stays through the grace period, then goes (auto snapshots keep it
    # in backups/ when they are on; this realm has them on).
    old = gens / "gen-000000"
    past = time.time() - 7200
    os.utime(old, (past, past))
    led._drop_old_generations("metrics", keep={"gen-000001"})
    assert not old.exists()
    kept = list(auto_dir(led.paths).glob("*-compaction/ledger/metrics/gen-000000"))
    assert len(kept) == 1
    led.append("metrics", [{"step": 50, "loss": 1.0}])
    led.append("metrics", [{"step": 51, "loss": 1.0}])
    assert led.compact("metrics") == 3 and os.readlink(led.current_dir("metrics")) == "gen-000002"
    assert (gens / "gen-000001").exists()  # kept as the generation just left: inside its grace


def test_raw_reader_check_and_raw_sync_respect_the_grace(tmp_path, monkeypatch):
    led = make(tmp_path)
    assert not raw_readers_attached(tmp_path / "no-such.duckdb")
    a = led.append("metrics", [{"step": 1}])
    b = led.append("metrics", [{"step": 2}])
    led.compact("metrics")
    raw = led.raw_dir("metrics")
    assert (raw / a.name).exists() and (raw / b.name).exists()  # merged away, inside the grace
    monkeypatch.setattr(ledger_mod, "RAW_GRACE_S", 0.0)
    con = duckdb.connect(str(led.paths.ledger_db))  # a raw reader holds the file: kept
    try:
        led._sync_raw("metrics")
        assert (raw / a.name).exists()
    finally:
        con.close()
    led._sync_raw("metrics")
    assert not (raw / a.name).exists() and not (raw / b.name).exists()
    live = {p.name for p in led.segment_files("metrics")}
    assert {p.name for p in raw.glob("*.parquet")} == live


# flush() must not wait out the 1-hour interval: one that did fails here in 20 s, not
# after pytest's 10 minutes (a mutation run's own limit would call it a timeout)
@pytest.mark.timeout(20)
def test_metric_buffer_raises_a_write_error_on_the_next_call_and_close_can_stay_quiet(tmp_path):
    led = make(tmp_path)
    buf = MetricBuffer(led, interval=3600)
    assert buf.interval == 3600 and buf.ledger is led
    buf.add({"step": 1, "loss": 1.0})
    buf.event("pause", "paused", "{}")
    status = tmp_path / "status.json"
    buf.put_file(status, {"v": 1})
    buf.put_file(status, {"v": 2})  # the newest content per path counts
    buf.flush()
    assert led.scalar("SELECT count(*) FROM metrics") == 1
    assert led.query("SELECT kind, message, data, source FROM events") == [
        {"kind": "pause", "message": "paused", "data": "{}", "source": "test"}]
    assert json.loads(status.read_text()) == {"v": 2}
    buf.add({"step": 2, "nope": 1})  # an unknown column: the writer thread fails
    with pytest.raises(KeyError, match="nope"):
        buf.flush()
    with pytest.raises(KeyError, match="nope"):
        buf.add({"step": 3})  # the error stays until the job ends
    with pytest.raises(KeyError, match="nope"):
        buf.close()
    buf.close(quiet=True)  # already failing elsewhere: says nothing more
    ok = MetricBuffer(led, interval=3600)
    ok.close()  # nothing queued, no thread: returns at once
    ok.add({"step": 9, "loss": 0.1})
    ok.close()  # writes what was queued before stopping
    assert led.scalar("SELECT count(*) FROM metrics WHERE step = 9") == 1
    assert ok._thread is None


def test_a_row_queued_while_the_writer_takes_its_batch_goes_into_the_next_batch(tmp_path):
    """The writer swaps the queued lists for empty ones under the lock; a row put at that
    moment must land in the new list, never in the batch being written (it made the
    batch's columns differ in length: ArrowInvalid under load)."""
    buf = MetricBuffer(make(tmp_path), interval=3600)
    buf._thread = threading.current_thread()  # as if the writer ran: none is started
    cv, taken = buf._cv, []

    class WriterTakesTheBatchFirst:  # the writer wins the lock just before the put does
        def __enter__(self):
            taken.append((buf._rows, buf._events, buf._files))
            buf._rows, buf._events, buf._files = [], [], {}
            return cv.__enter__()

        def __exit__(self, *exc):
            return cv.__exit__(*exc)

        def notify(self):
            cv.notify()

    buf._cv = WriterTakesTheBatchFirst()
    buf.add({"step": 1})
    assert taken[-1][0] == [] and buf._rows == [{"step": 1}]
    buf.event("pause", "paused")
    assert taken[-1][1] == [] and [e["kind"] for e in buf._events] == ["pause"]
    buf.put_file(tmp_path / "s.json", {"v": 1})
    assert taken[-1][2] == {} and list(buf._files.values()) == [{"v": 1}]


def test_json_data_is_canonical():
    from datetime import date

    from realm_kernel.store.ledger import json_data
    assert json_data({"b": 1, "a": date(2026, 12, 1), "p": Path("/x")}) == (
        '{"a": "2026-12-01", "b": 1, "p": "/x"}')
