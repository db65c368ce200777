"""Crash faults on a real daemon, shared by tests/reliability and bench/soak.py.

A fault is `point@n` (see realm_kernel/store/faults.py): the daemon is started with
REALM_FAULT_PAUSE=point@n, blocks the n-th time it reaches the point and says so in
status/fault.json; we then `kill -9` its process group, exactly there. `delay:<s>` kills
at a delay after the daemon started instead (no hook at all). Schedules come from a seed,
so a run is reproducible: the same seed gives the same faults in the same order.

After every kill we note what a correct restart must do (resume from the newest complete
checkpoint on disk); `check_realm` then verifies, once every quest is done, that no quest
was lost or doubled, that the checkpoint ledger and the disk agree both ways, that every
run after a crash started from the checkpoint noted for it, and that no half-written
checkpoint was ever used.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realm_kernel.api import Realm
from realm_kernel.store.checkpoint_repair import ledger_consistency
from realm_kernel.store.paths import RealmPaths

from ..helpers import Procs, child_env, wait_for
from ..helpers import start_daemon as helpers_start_daemon

# Each point names a place where one step writes two things; see realm_kernel/store/faults.py.
CI_SCHEDULE = ["step@4", "checkpoint_write@1", "checkpoint_publish@1", "checkpoint_ledger@1",
               "queue_move:high@1", "ledger_write@7", "queue_move:recently_completed@1",
               "queue_move:processing@1", "step@{rng:3:15}", "checkpoint_write@2"]
SOAK_POINTS = ["step@{rng:2:25}", "checkpoint_write@{rng:1:2}", "checkpoint_publish@{rng:1:2}",
               "checkpoint_ledger@{rng:1:2}", "queue_move:high@1",
               "queue_move:recently_completed@1", "queue_move:processing@1",
               "ledger_write@{rng:2:40}", "delay:{rng:3:12}"]

# Small quests, frequent checkpoints: many fault points per minute of training.
FAULT_TOML = """
[training]
batch_size = 8
save_steps = 5
max_length = 128
threads = 1

[daemon]
poll_seconds = 0.3
settle_seconds = 0.2
"""


def schedule(seed: int, n: int, base: list[str] | None = None) -> list[str]:
    """`n` faults from a seed: the CI list's fixed order when `base` is given (its
    {rng:a:b} filled from the seed), else seeded draws from SOAK_POINTS."""
    rng = random.Random(seed)

    def fill(spec: str) -> str:
        while "{rng:" in spec:
            head, rest = spec.split("{rng:", 1)
            lo_hi, tail = rest.split("}", 1)
            lo, hi = (int(x) for x in lo_hi.split(":"))
            spec = f"{head}{rng.randint(lo, hi)}{tail}"
        return spec

    if base is not None:
        return [fill(s) for s in base[:n]]
    return [fill(rng.choice(SOAK_POINTS)) for _ in range(n)]


@dataclass
class Kill:
    fault: str
    reached: bool
    point: str | None
    at: float  # time.time() of the kill
    expected_model: str | None  # the newest complete checkpoint on disk after the kill
    processing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def complete_dirs(paths: RealmPaths) -> list[Path]:
    """Checkpoint directories a correct restart may use, by our own test of complete: a
    canonical name, the sidecar, the config and the weights."""
    out = []
    for d in paths.checkpoints.glob("checkpoint-*"):
        if all((d / f).is_file() for f in (".ledger.json", "config.json", "model.safetensors")):
            out.append(d)
    return sorted(out, key=lambda d: json.loads((d / ".ledger.json").read_text())["step"])


def start_daemon(procs: Procs, paths: RealmPaths, name: str, fault: str | None = None):
    pause = {"REALM_FAULT_PAUSE": fault} if fault and not fault.startswith("delay:") else {}
    return helpers_start_daemon(procs, paths, name, **pause)


def crash(procs: Procs, paths: RealmPaths, fault: str, index: int, timeout: float = 120) -> Kill:
    """Start the daemon with one fault armed and kill -9 it there."""
    marker = paths.status / "fault.json"
    marker.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = start_daemon(procs, paths, f"daemon-fault-{index:03d}", fault)
    reached, point = False, None
    if fault.startswith("delay:"):
        time.sleep(float(fault.split(":", 1)[1]))  # sleep-ok: a delay fault kills at a time, not a code point
        reached, point = proc.poll() is None, "delay"
    else:
        end = time.monotonic() + timeout
        while time.monotonic() < end and proc.poll() is None:
            try:
                hit = json.loads(marker.read_text())
            except (FileNotFoundError, ValueError):
                hit = None
            if hit and hit.get("pid") == proc.pid:
                reached, point = True, hit["point"]
                break
            time.sleep(0.05)  # sleep-ok: poll interval of the wait on the fault marker
    procs.stop(proc, signal.SIGKILL)
    at = time.time()
    marker.unlink(missing_ok=True)
    done = complete_dirs(paths)
    return Kill(fault, reached, point, at, str(done[-1]) if done else None,
                sorted(p.name for p in paths.queue("processing").iterdir()),
                time.monotonic() - t0)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest(folder: Path) -> str:
    """One hash over a directory's file names and contents."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def finish(procs: Procs, paths: RealmPaths, quests: dict[str, str], timeout: float = 600) -> None:
    """A clean daemon until every quest is completed, then SIGTERM."""
    from realm_kernel.store.status import DAEMON, read_status
    proc = start_daemon(procs, paths, "daemon-final")
    done = paths.queue("recently_completed")
    wait_for(lambda: {p.name for p in done.iterdir()} >= set(quests), timeout,
             "every quest to complete after the faults")
    wait_for(lambda: read_status(paths, DAEMON).get("pid") == proc.pid and
             read_status(paths, DAEMON).get("state") == "idle", 120, "the daemon to settle")
    assert procs.stop(proc) == 0


def check_realm(paths: RealmPaths, quests: dict[str, str], kills: list[Kill],
                base_model: Path) -> dict:
    """Every invariant after a fault run; returns counts for the report."""
    realm = Realm(paths.home, writer="check")
    problems: list[str] = []
    # No quest lost or doubled: each quest file exactly once, where it belongs, unchanged.
    seen: dict[str, list[str]] = {}
    for state_dir in (paths.home / "queue").iterdir():
        for f in state_dir.iterdir():
            if f.is_file() and not f.name.endswith(".reason.json"):
                seen.setdefault(sha(f), []).append(f"{state_dir.name}/{f.name}")
    for name, digest in quests.items():
        where = seen.get(digest, [])
        if where != [f"recently_completed/{name}"]:
            problems.append(f"quest {name} is at {where}")
    status = {r["quest_id"]: r["status"] for r in realm.sql("SELECT quest_id, status FROM quest_status")}
    for name in quests:
        if status.get(name) != "completed":
            problems.append(f"quest {name}: ledger says {status.get(name)!r}")
    # The checkpoint ledger and the disk agree both ways; nothing half-done is left.
    problems += ledger_consistency(paths, realm.ledger)
    leftovers = [d.name for d in paths.checkpoints.iterdir()
                 if d.name.startswith((".run-", ".replaced-", ".deleting-"))]
    if leftovers:
        problems.append(f"left in checkpoints/: {leftovers}")
    # Every run after a crash started from the newest complete checkpoint at the crash.
    runs = realm.sql("SELECT ts, status, model_path, run_id, quest_id FROM runs "
                     "WHERE status IN ('started', 'resumed') ORDER BY ts")
    checked = 0
    for run in runs:
        before = [k for k in kills if k.at < run["ts"].timestamp()]
        if not before:
            continue
        k = before[-1]
        if any(r["ts"].timestamp() > k.at and r["ts"] < run["ts"] for r in runs):
            continue  # not the first run after that kill
        want = k.expected_model or str(base_model)
        if run["model_path"] != want:
            problems.append(f"run {run['run_id']} after fault {k.fault} started from "
                            f"{run['model_path']}, not {want}")
        checked += 1
    used = {r["model_path"] for r in runs}
    partial = [p for p in used if "/.run-" in p or (p != str(base_model)
                                                     and not (Path(p) / ".ledger.json").exists())]
    if partial:
        problems.append(f"runs started from incomplete checkpoints: {partial}")
    # Every trained step has its loss row; the last checkpoint is the last step.
    top = realm.ledger.scalar("SELECT max(step) FROM metrics")
    logged = {r["step"] for r in realm.sql("SELECT DISTINCT step FROM metrics WHERE loss IS NOT NULL")}
    if logged != set(range(1, top + 1)):
        problems.append(f"missing loss rows for steps {sorted(set(range(1, top + 1)) - logged)[:10]}")
    last = realm.checkpoints.latest()
    if last is None or last.step != top:
        problems.append(f"latest checkpoint {last and last.step} != last step {top}")
    errors = realm.sql("SELECT kind, message FROM events WHERE kind IN ('daemon_error', 'quest_error')")
    problems += [f"event {e['kind']}: {e['message']}" for e in errors]
    return {"faults": len(kills), "reached": sum(k.reached for k in kills),
            "runs_checked": checked, "steps": top, "problems": problems,
            "metric_rows": realm.ledger.scalar("SELECT count(*) FROM metrics"),
            "kills": [asdict(k) for k in kills]}


READERS = ("panel", "rest", "notebook", "taskmaster")


def run_readers(procs: Procs, paths: RealmPaths, base: str, token: str, seconds: float,
                min_polls: int = 0) -> dict:
    """The four readers of tests/reliability/readers.py at once, for `seconds` and at least
    `min_polls` polls each, while whatever trains keeps writing; their JSON reports by kind."""
    import subprocess
    env = child_env(paths.home)
    started = []
    for kind in READERS:
        err = open(paths.home / f"reader-{kind}.err", "w+")  # noqa: SIM115 (closed below)
        p = subprocess.Popen([sys.executable, "-m", "tests.reliability.readers", kind, str(paths.home),
                              str(seconds), base, token, str(min_polls)], env=env,
                             cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=err, text=True)
        p.err = err  # type: ignore[attr-defined]
        started.append((kind, p))

    def stderr_of(p) -> str:
        p.err.seek(0)
        return p.err.read()[-2000:]
    try:
        for kind, p in started:  # all ready before the clock runs
            assert p.stdout.readline().strip() == "ready", (kind, stderr_of(p))
        out = {}
        for kind, p in started:
            # Read on from the same buffered stream readline() used: communicate() would
            # miss what that buffer already holds.
            stdout = p.stdout.read()
            assert p.wait(seconds + 240) == 0, (kind, stderr_of(p))
            lines = stdout.strip().splitlines()
            assert lines, (kind, "no report", stderr_of(p))
            out[kind] = json.loads(lines[-1])
        return out
    finally:
        for _, p in started:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.err.close()
