"""Reader processes for the concurrency check (tests/reliability, bench/soak.py).

    python -m tests.reliability.readers KIND HOME SECONDS [BASE_URL TOKEN]

KIND is what a user runs while DIO trains:
  panel       the Panel app's poller (the Tavern page's session state, at its poll rate)
  rest        the Jupyter REST API (training/status, ledger) with the token
  notebook    a notebook's own `duckdb.connect("ledger.duckdb", read_only=True)`, held open
  taskmaster  the Task Master's reads (Realm.tasks(), task_status, evals, the latest
              checkpoint, eval requests) through the Realm API, plus one `tasks` row
              written per poll (rows written are counted, to be found later)

Prints "ready", then after SECONDS one JSON line: polls, errors (what a user would have
seen), latencies in ms (p50, p99, max), and for `notebook` the re-runs a compaction swap
asked for (docs/ledger.md: a raw connection may, rarely, need to re-run a query).
"""

from __future__ import annotations

import json
import sys
import time


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def poller(kind: str, home: str, base: str | None, token: str | None):
    """(one poll: returns the newest step it saw, pause between polls)."""
    if kind == "panel":
        from realm_kernel.api import Realm
        from realm_widgets.pages import PAGES
        spec = PAGES["tavern"]
        session = spec.session(Realm(home, writer="widgets"))
        return lambda: session.state()["hero"]["xp"], spec.poll_seconds
    if kind == "rest":
        import requests

        from tests.helpers import auth
        s = requests.Session()
        s.headers.update(auth(token))

        def rest() -> int:
            r = s.get(f"{base}/realm/api/training/status", timeout=30)
            r.raise_for_status()
            s.get(f"{base}/realm/api/ledger?limit=5", timeout=30).raise_for_status()
            return r.json()["hero"]["xp"]
        return rest, 0.5
    if kind == "notebook":
        import duckdb
        con = duckdb.connect(f"{home}/ledger.duckdb", read_only=True)

        def notebook() -> int:  # no re-run: raw readers never see a compaction (ledger.py)
            n, top = con.execute("SELECT count(*), max(step) FROM metrics").fetchone()
            con.execute("SELECT * FROM checkpoint_ledger ORDER BY step DESC LIMIT 1").fetchall()
            return top or 0
        return notebook, 0.5
    if kind == "taskmaster":
        from realm_kernel.api import Realm
        realm = Realm(home, writer="taskmaster")
        written = [0]

        def taskmaster() -> int:
            realm.tasks.list()  # the Task Master's registry with its last runs (task_status)
            realm.ledger.query("SELECT * FROM task_status ORDER BY ts DESC")
            realm.ledger.query("SELECT * FROM evals ORDER BY ts DESC LIMIT 5")
            realm.ledger.query("SELECT count(*) FROM events WHERE kind = 'eval_requested'")
            latest = realm.checkpoints.latest()
            written[0] += 1
            realm.ledger.append("tasks", [{"task_id": f"probe-{written[0]}", "name": "probe",
                                           "status": "done", "priority": 1}])
            return latest.step if latest else 0
        taskmaster.written = written
        return taskmaster, 1.0
    raise SystemExit(f"unknown reader kind {kind!r}")


def main(argv: list[str]) -> int:
    kind, home, seconds = argv[0], argv[1], float(argv[2])
    base, token = (argv[3], argv[4]) if len(argv) > 4 else (None, None)
    # At least this many polls, however slow a loaded machine is (up to a hard limit):
    # a test asserts on polls made, never on polls per second.
    min_polls = int(argv[5]) if len(argv) > 5 else 0
    poll, pause = poller(kind, home, base, token)
    poll()  # warm: connections and views are made once, not counted as a poll
    print("ready", flush=True)
    lat: list[float] = []
    errors: list[str] = []
    seen, dips = 0, 0
    end = time.monotonic() + seconds
    hard_end = end + 120
    while (time.monotonic() < end or len(lat) + len(errors) < min_polls) and time.monotonic() < hard_end:
        t0 = time.perf_counter()
        try:
            step = poll()
            lat.append((time.perf_counter() - t0) * 1000)
            dips += step < seen
            seen = max(seen, step)
        except Exception as e:  # what the user would have seen
            errors.append(f"{type(e).__name__}: {e}"[:300])
        time.sleep(pause)  # sleep-ok: a reader's pace between polls (a user refreshing), not a wait
    print(json.dumps({
        "kind": kind, "polls": len(lat) + len(errors), "errors": len(errors),
        "first_errors": errors[:3], "dips": dips, "last_step": seen,
        "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99), "max_ms": max(lat, default=None),
        "written": getattr(poll, "written", [0])[0]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
