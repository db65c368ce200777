"""Ledger speed: hero stats and the Tavern's poll over 1M metric rows, and write
throughput while 4 reader processes poll (against the same writes with no readers, in
the same run).

Writes go through `Ledger.append` in batches the size the trainer's MetricBuffer
produces at full speed (`--batch` rows per segment), so compaction runs as in a real
daemon. Readers are separate processes polling `Realm.tavern_state()` back to back.

    python bench/ledger.py [--rows 1000000] [--batch 2000] [--polls 30]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import report  # noqa: E402

from realm_kernel.api import Realm  # noqa: E402
from realm_kernel.store.ledger import Ledger  # noqa: E402
from realm_kernel.store.paths import RealmPaths  # noqa: E402


def metric_rows(start: int, n: int) -> list[dict]:
    return [{"run_id": "bench", "quest": "bench.jsonl", "step": s, "local_step": s,
             "loss": 2.0 / (1 + s * 1e-4), "learning_rate": 1e-4, "grad_norm": 1.0,
             "epoch": s / 1e4, "tokens_per_s": 8000.0, "tokens_seen": s * 300}
            for s in range(start, start + n)]


def write(led: Ledger, start: int, rows: int, batch: int) -> float:
    """Rows per second appended, `batch` rows per segment."""
    t0 = time.perf_counter()
    for s in range(start, start + rows, batch):
        led.append("metrics", metric_rows(s, min(batch, start + rows - s)))
    return rows / (time.perf_counter() - t0)


def poller(home: str, stop, ready, counts) -> None:
    realm = Realm(home, writer="reader")
    realm.tavern_state()  # warm: imports, connections, views
    ready.put(1)
    n = 0
    while not stop.is_set():
        realm.tavern_state()
        n += 1
    counts.put(n)


def timed(fn, polls: int) -> float:
    """Median milliseconds of `polls` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(polls):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--write-rows", type=int, default=200_000, help="rows per throughput run")
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = RealmPaths.at(tmp).ensure()
        led = Ledger(paths, "daemon")
        led.ensure_views()
        fill = write(led, 1, a.rows, 10_000)
        realm = Realm(paths.home, writer="reader")
        hero_ms = timed(realm.hero, a.polls)
        poll_ms = timed(realm.tavern_state, a.polls)
        # A user's raw connection (ledger.duckdb's views keep one copy per origin) against
        # our own views, the same two queries over the same rows.
        import duckdb
        scan = "SELECT count(*), avg(loss) FROM metrics"
        top = "SELECT step, loss FROM metrics ORDER BY step DESC LIMIT 500"
        raw = duckdb.connect(str(paths.ledger_db), read_only=True)
        raw_scan_ms = timed(lambda: raw.execute(scan).fetchall(), a.polls)
        raw_top_ms = timed(lambda: raw.execute(top).fetchall(), a.polls)
        raw.close()
        own_scan_ms = timed(lambda: realm.ledger.query(scan), a.polls)
        own_top_ms = timed(lambda: realm.ledger.query(top), a.polls)

        step = a.rows + 1
        alone = write(led, step, a.write_rows, a.batch)
        step += a.write_rows
        ctx = mp.get_context("spawn")
        stop, ready, counts = ctx.Event(), ctx.Queue(), ctx.Queue()
        readers = [ctx.Process(target=poller, args=(str(paths.home), stop, ready, counts))
                   for _ in range(a.readers)]
        for p in readers:
            p.start()
        for _ in readers:  # every reader polling before the clock starts, however loaded the machine
            ready.get(timeout=300)
        contended = write(led, step, a.write_rows, a.batch)
        step += a.write_rows
        stop.set()
        polls = sum(counts.get(timeout=60) for _ in readers)
        for p in readers:
            p.join(30)
        total = realm.ledger.scalar("SELECT count(*) FROM metrics")
        distinct = realm.ledger.scalar("SELECT count(DISTINCT step) FROM metrics")
    figures = {
        "metric_rows": a.rows, "hero_stats_ms": round(hero_ms, 2), "tavern_poll_ms": round(poll_ms, 2),
        "write_rows_per_s_alone": round(alone), "write_rows_per_s_with_readers": round(contended),
        "write_ratio_with_readers": round(contended / alone, 3), "readers": a.readers,
        "reader_polls_during_writes": polls, "segment_rows": a.batch,
        # Lost: expected steps never seen; doubled: rows beyond one per step. Counted apart
        # so one cannot cancel the other.
        "rows_after": total, "rows_lost": step - 1 - distinct, "rows_doubled": total - distinct,
        "rows_lost_or_doubled": (step - 1 - distinct) + (total - distinct),
        "fill_rows_per_s": round(fill),
        "raw_scan_ms": round(raw_scan_ms, 2), "own_scan_ms": round(own_scan_ms, 2),
        "raw_scan_ratio": round(raw_scan_ms / own_scan_ms, 2),
        "raw_top500_ms": round(raw_top_ms, 2), "own_top500_ms": round(own_top_ms, 2),
        "raw_top500_ratio": round(raw_top_ms / own_top_ms, 2),
    }
    summary = (f"{a.rows} metric rows: hero stats {hero_ms:.1f} ms, Tavern poll {poll_ms:.1f} ms "
               f"(target < 50); writes {contended:.0f} rows/s with {a.readers} readers polling vs "
               f"{alone:.0f} alone (ratio {contended / alone:.2f}; target > 10k rows/s); "
               f"{polls} reader polls, rows lost or doubled: {figures['rows_lost_or_doubled']}; "
               f"a raw connection's full scan {raw_scan_ms:.1f} ms vs ours {own_scan_ms:.1f} "
               f"(ratio {raw_scan_ms / own_scan_ms:.2f}), last 500 steps {raw_top_ms:.1f} vs "
               f"{own_top_ms:.1f} ms")
    report("ledger", figures, summary, a.out)


if __name__ == "__main__":
    main()
