"""The reliability soak: many kill -9 faults, every hostile input, and readers under load.

    python bench/soak.py [--faults 50] [--hangs 5] [--seconds 60] [--seed N] [--out DIR]

1. Crash faults: `--faults` kill -9s of a real daemon at seeded points (a step, a
   checkpoint write / publish / ledger row, a queue move, a ledger segment write, or a
   random delay) on one realm that keeps training BIN quests; after each kill every quest
   file must still be there exactly once; at the end a clean daemon finishes the queue
   and every invariant of tests/reliability/harness.py:check_realm is checked.
   Hangs: `--hangs` sessions of `realm play --headless` whose daemon blocks forever at a
   seeded step (REALM_FAULT=hang_step@n): the Weaver's watchdog must record a `hang`,
   kill and restart the daemon, which resumes from its newest checkpoint; each session
   then ends with Ctrl-C to its process group (a clean stop) and every quest file must
   still be there exactly once.
2. Hostile input: the quest files of tests/reliability/test_hostile_input.py dropped on
   a live daemon and the REST bodies of test_api_security.py sent to a live JupyterLab;
   "rejected cleanly" = refused with a reason that names the problem, daemon alive.
3. Readers under load: the Panel poller, the REST API, a notebook's read-only DuckDB
   connection and the Task Master's reads/writes, for `--seconds` while the daemon
   trains. Baseline in the same run: the same readers for a third of that while the
   battle is paused (same ledger, no writes). Reports p99 and worst poll latency, and the
   ratio of training to paused p99.

Prints the table and writes bench/results/soak.json and a line in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import report  # noqa: E402

from realm_kernel.api import Realm  # noqa: E402
from realm_kernel.store.paths import RealmPaths  # noqa: E402
from realm_kernel.store.status import DAEMON, TRAINING, read_status  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from tests.helpers import (  # noqa: E402
    TEST_TOML,
    TOKEN,
    Procs,
    auth,
    child_env,
    make_home,
    start_daemon,
    start_lab,
    wait_for,
)
from tests.reliability.harness import (  # noqa: E402
    FAULT_TOML,
    check_realm,
    crash,
    finish,
    run_readers,
    schedule,
    sha,
)


def quests_intact(paths: RealmPaths, quests: dict[str, str]) -> bool:
    """Every quest file exactly once, in the inbox or a queue folder, unchanged."""
    seen: dict[str, int] = {}
    for f in [*paths.inbox.glob("*.jsonl"), *(paths.home / "queue").glob("*/*.jsonl")]:
        seen[sha(f)] = seen.get(sha(f), 0) + 1
    return all(seen.get(d) == 1 for d in quests.values())


def crash_faults(root: Path, hero: Path, procs: Procs, n: int, seed: int) -> dict:
    paths = make_home(root / "faults", hero, FAULT_TOML)
    realm = Realm(paths.home)
    quests: dict[str, str] = {}
    kills, intact = [], 0
    for i, fault in enumerate(schedule(seed, n)):
        waiting = [p for s in ("high", "normal", "low", "processing") for p in paths.queue(s).iterdir()]
        if not waiting and not list(paths.inbox.glob("*.jsonl")):
            q = realm.quests.generate("bin", 1, 1500, seed=seed * 1000 + i)
            quests[q.name] = sha(q)
        k = crash(procs, paths, fault, i, timeout=90)
        kills.append(k)
        ok = quests_intact(paths, quests)
        intact += ok
        print(f"  fault {i + 1:3d}/{n} {fault:36s} reached={k.reached!s:5s} quests intact={ok}",
              flush=True)
    finish(procs, paths, quests, timeout=1200)
    result = check_realm(paths, quests, kills, paths.dio_mini)
    result["survived"] = intact if not result["problems"] else 0
    return result


def hang_faults(root: Path, hero: Path, procs: Procs, n: int, seed: int) -> dict:
    from tests.reliability.test_unattended import WATCHDOG_TOML
    paths = make_home(root / "hangs", hero, WATCHDOG_TOML)
    realm = Realm(paths.home)
    q = realm.quests.generate("bin", 1, 60000, seed=seed)  # far longer than the sessions
    quests = {q.name: sha(q)}
    rng = random.Random(seed)
    detected = resumed = intact = 0
    waited, problems = [], []
    count = realm.ledger.scalar
    for i in range(n):
        nth = rng.randint(8, 30)
        for spent in paths.status.glob(".fault-hang_step-*"):  # a new session may hang again
            spent.unlink()
        hangs0 = count("SELECT count(*) FROM events WHERE kind = 'hang'")
        play = procs.start(f"play-hang-{i}", [sys.executable, "-m", "realm_kernel.cli", "play", "--headless"],
                           {**child_env(paths.home), "REALM_FAULT": f"hang_step@{nth}"})
        try:
            def newest_hang(hangs0: int = hangs0) -> list[dict] | None:
                rows = realm.ledger.query("SELECT ts, data FROM events WHERE kind = 'hang' ORDER BY ts")
                return rows[-1:] if len(rows) > hangs0 else None

            hang = wait_for(newest_hang, 300, f"hang {i + 1} to be noticed")[0]
            detected += 1
            data = json.loads(hang["data"])
            waited.append(data["waited_s"])
            run = wait_for(lambda at=hang["ts"]: realm.ledger.query(
                "SELECT resume_from FROM runs WHERE status = 'resumed' AND ts > ? ORDER BY ts LIMIT 1", [at]),
                300, f"the daemon to resume after hang {i + 1}")[0]
            newest = realm.ledger.query("SELECT path FROM checkpoints WHERE step <= ? "
                                        "ORDER BY step DESC LIMIT 1", [data["step"]])
            if newest and run["resume_from"] == newest[0]["path"]:
                resumed += 1
            else:
                problems.append(f"hang {i + 1} at step {data['step']}: resumed from "
                                f"{run['resume_from']}, newest checkpoint {newest}")
        except AssertionError as e:
            problems.append(str(e))
        finally:
            os.killpg(play.pid, signal.SIGINT)  # Ctrl-C: a clean stop, not a crash
            if play.wait(timeout=180) != 0:
                problems.append(f"session {i + 1}: realm play exited {play.returncode} on Ctrl-C")
        ok = quests_intact(paths, quests)
        intact += ok
        print(f"  hang {i + 1}/{n} at step {nth} of the process: noticed after "
              f"{waited[-1] if len(waited) > i else '-'} s, quests intact={ok}", flush=True)
    return {"hangs": n, "hangs_detected": detected, "hangs_resumed_from_newest": resumed,
            "hangs_quests_intact": intact, "hang_waited_s_median": round(statistics.median(waited), 1)
            if waited else None, "hang_problems": problems}


def hostile_inputs(root: Path, hero: Path, procs: Procs) -> dict:
    import requests

    from tests.reliability.test_api_security import API_CASES
    from tests.reliability.test_hostile_input import FILE_CASES, TOML, drop, reasons

    paths = make_home(root / "hostile", hero, TOML)
    daemon = start_daemon(procs, paths, "daemon-hostile")
    wait_for(lambda: read_status(paths, DAEMON).get("state") == "idle", 120, "the daemon")
    for name, data, _ in FILE_CASES:
        drop(paths.inbox, name, data)
    names = {name for name, _, _ in FILE_CASES}
    got = wait_for(lambda: (r := reasons(paths)) and names <= set(r) and r, 300, "the refusals")
    files_ok = sum(frag in got[name]["summary"] for name, _, frag in FILE_CASES)
    _, base = start_lab(procs, paths, root / "lab-hostile", root_dir=paths.home, REALM_WEAVER="0")
    api_ok = 0
    for method, route, kwargs, status, fragment in API_CASES:
        r = requests.request(method, f"{base}/realm/api/{route}", headers=auth(), timeout=60, **kwargs)
        api_ok += r.status_code == status and fragment in r.text
    alive = daemon.poll() is None
    return {"hostile_tried": len(FILE_CASES) + len(API_CASES),
            "hostile_rejected": (files_ok + api_ok) if alive else 0,
            "hostile_files": len(FILE_CASES), "hostile_api": len(API_CASES), "daemon_alive": alive}


def readers_under_load(root: Path, hero: Path, procs: Procs, seconds: float) -> dict:
    paths = make_home(root / "readers", hero, TEST_TOML)
    realm = Realm(paths.home)
    realm.quests.generate("bin", 1, 60000, seed=7)
    _, base = start_lab(procs, paths, root / "lab-readers", root_dir=paths.home, REALM_WEAVER="0")
    start_daemon(procs, paths, "daemon-readers")
    wait_for(lambda: (read_status(paths, TRAINING).get("local_step") or 0) > 50, 300, "training")
    realm.training.control("pause")
    wait_for(lambda: read_status(paths, TRAINING).get("state") == "paused", 120, "the pause")
    paused = run_readers(procs, paths, base, TOKEN, max(10.0, seconds / 3))
    realm.training.control("resume")
    step0 = read_status(paths, TRAINING)["step"]
    loaded = run_readers(procs, paths, base, TOKEN, seconds)
    realm.training.control("stop")
    wait_for(lambda: read_status(paths, TRAINING).get("state") == "stopped", 300, "the stop")
    top = realm.ledger.scalar("SELECT max(step) FROM metrics")
    logged = {r["step"] for r in realm.sql("SELECT DISTINCT step FROM metrics WHERE loss IS NOT NULL")}
    written = loaded["taskmaster"]["written"] + paused["taskmaster"]["written"]
    found = realm.ledger.scalar("SELECT count(*) FROM tasks WHERE name = 'probe'")

    def worst(rep: dict, key: str) -> float:
        return max(r[key] or 0 for r in rep.values())

    return {"reader_errors": sum(r["errors"] for r in loaded.values()) +
            sum(r["errors"] for r in paused.values()),
            "reader_polls": sum(r["polls"] for r in loaded.values()),
            "rows_written": top + written, "rows_found": len(logged & set(range(1, top + 1))) + found,
            "steps_during_readers": top - step0,
            "p99_ms_training": round(worst(loaded, "p99_ms"), 1),
            "p99_ms_paused": round(worst(paused, "p99_ms"), 1),
            "worst_poll_ms": round(worst(loaded, "max_ms"), 1),
            "by_reader": {k: {x: v[x] for x in ("polls", "errors", "p50_ms", "p99_ms", "max_ms")}
                          for k, v in loaded.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", type=int, default=50)
    ap.add_argument("--hangs", type=int, default=5, help="hung-step sessions (the watchdog)")
    ap.add_argument("--seconds", type=float, default=60.0, help="readers under load")
    ap.add_argument("--seed", type=int, default=int(time.strftime("%Y%m%d")))
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="realm-soak-"))
    procs = Procs(root)
    t0 = time.monotonic()
    try:
        hero = build_dio_mini(root / "hero" / "dio-mini")
        print(f"soak: seed {args.seed}, {args.faults} faults, readers {args.seconds:.0f}s, in {root}")
        faults = crash_faults(root, hero, procs, args.faults, args.seed)
        procs.stop_all()
        hangs = hang_faults(root, hero, procs, args.hangs, args.seed)
        hostile = hostile_inputs(root, hero, procs)
        procs.stop_all()
        readers = readers_under_load(root, hero, procs, args.seconds)
    finally:
        procs.stop_all()
    ratio = readers["p99_ms_training"] / max(readers["p99_ms_paused"], 0.1)
    rows = [("faults injected / survived", f"{faults['faults']} / {faults['survived']}"),
            ("  reached their named point", f"{faults['reached']}"),
            ("  runs checked to resume from the last complete checkpoint", f"{faults['runs_checked']}"),
            ("hangs injected / noticed / resumed from the newest checkpoint",
             f"{hangs['hangs']} / {hangs['hangs_detected']} / {hangs['hangs_resumed_from_newest']}"),
            ("  noticed after (median)", f"{hangs['hang_waited_s_median']} s"),
            ("hostile inputs tried / rejected cleanly",
             f"{hostile['hostile_tried']} / {hostile['hostile_rejected']}"),
            ("rows written / found", f"{readers['rows_written']} / {readers['rows_found']}"),
            ("reader errors (polls)", f"{readers['reader_errors']} ({readers['reader_polls']})"),
            ("p99 poll latency, training / paused", f"{readers['p99_ms_training']} ms / "
                                                    f"{readers['p99_ms_paused']} ms ({ratio:.2f}x)"),
            ("worst poll latency", f"{readers['worst_poll_ms']} ms")]
    width = max(len(a) for a, _ in rows)
    print("\n" + "\n".join(f"{a:<{width}}  {b}" for a, b in rows))
    if faults["problems"] or hangs["hang_problems"]:
        print("problems:\n  " + "\n  ".join(faults["problems"] + hangs["hang_problems"]))
    figures = {"seed": args.seed, "faults": faults["faults"], "faults_survived": faults["survived"],
               "faults_reached_point": faults["reached"], "runs_checked": faults["runs_checked"],
               "fault_problems": faults["problems"], "fault_schedule": [k["fault"] for k in faults["kills"]],
               **hangs, "faults_all": faults["faults"] + hangs["hangs"],
               **{k: v for k, v in hostile.items()}, **readers,
               "p99_ratio_training_vs_paused": round(ratio, 2), "reader_seconds": args.seconds,
               "minutes": round((time.monotonic() - t0) / 60, 1)}
    summary = (f"soak seed {args.seed}: faults {faults['faults']} injected / {faults['survived']} survived; "
               f"hangs {hangs['hangs']} injected / {hangs['hangs_detected']} noticed (median "
               f"{hangs['hang_waited_s_median']} s) / {hangs['hangs_resumed_from_newest']} resumed from "
               f"the newest checkpoint, quests intact after {hangs['hangs_quests_intact']}; "
               f"hostile {hostile['hostile_tried']} tried / {hostile['hostile_rejected']} rejected cleanly; "
               f"rows {readers['rows_written']} written / {readers['rows_found']} found; "
               f"reader errors {readers['reader_errors']}; p99 poll {readers['p99_ms_training']} ms "
               f"training vs {readers['p99_ms_paused']} ms paused ({ratio:.2f}x), worst "
               f"{readers['worst_poll_ms']} ms")
    report("soak", figures, summary, args.out)
    if os.environ.get("REALM_SOAK_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)
    ok = not faults["problems"] and faults["survived"] == faults["faults"] and \
        not hangs["hang_problems"] and hangs["hangs_resumed_from_newest"] == hangs["hangs"] and \
        hangs["hangs_quests_intact"] == hangs["hangs"] and \
        hostile["hostile_rejected"] == hostile["hostile_tried"] and readers["reader_errors"] == 0 and \
        readers["rows_written"] == readers["rows_found"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
