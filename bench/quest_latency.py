"""Quest drop to first training step with a warm daemon, on CPU (dio-mini).

A real daemon subprocess runs on a temp realm home with the default realm.toml (so
`daemon.settle_seconds` = 0.5 s of the time is the inbox waiting for a file to settle).
Each round drops a small BIN quest into the inbox by atomic rename and times until
status/training.json reports the quest's first optimizer step. Median of `--rounds`.

    python bench/quest_latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import report  # noqa: E402

import skills  # noqa: E402
from realm_kernel.quests.formats import write_quest  # noqa: E402
from realm_kernel.store.config import load_config  # noqa: E402
from realm_kernel.store.ledger import Ledger  # noqa: E402
from realm_kernel.store.paths import RealmPaths, read_json  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from tests.helpers import Procs, start_daemon, wait_for  # noqa: E402

POLL = 0.01  # s between status reads: the latency measured is this fine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = RealmPaths.at(tmp).ensure()
        build_dio_mini(paths.dio_mini)
        procs = Procs(paths.logs)
        start_daemon(procs, paths)  # its output in logs/daemon.log
        status = paths.status / "training.json"
        times, drops = [], {}
        try:
            wait_for(lambda: (read_json(status, {}) or {}).get("state") == "idle", 120,
                     "the daemon to be idle (see logs/daemon.log)", interval=POLL)
            for i in range(a.rounds + 1):  # round 0 warms the daemon (imports, first model load)
                exs = [p.as_example() for p in skills.generate("bin", 1, a.examples, seed=100 + i)]
                staged = paths.inbox / f".q{i}.jsonl"
                write_quest(staged, exs)
                t0 = time.monotonic()
                drops[f"q{i}.jsonl"] = time.time()
                os.replace(staged, paths.inbox / f"q{i}.jsonl")
                wait_for(lambda i=i: (s := read_json(status, {}) or {}).get("quest") == f"q{i}.jsonl"
                         and (s.get("local_step") or 0) >= 1, 120, f"q{i}'s first step", interval=POLL)
                if i:
                    times.append(time.monotonic() - t0)
                wait_for(lambda i=i: (paths.queue("recently_completed") / f"q{i}.jsonl").exists(), 300,
                         f"q{i} to complete", interval=POLL)
        finally:
            procs.stop_all()
        # Where the time goes: drop -> queued (admission) -> battle started -> first step.
        led = Ledger(paths)
        phases = {"admit_s": [], "start_s": [], "first_step_s": []}
        for q, dropped in list(drops.items())[1:]:
            row = led.query(
                "SELECT min(epoch(ts)) FILTER (status = 'queued') AS queued, "
                "min(epoch(ts)) FILTER (status = 'processing') AS started, "
                "(SELECT min(epoch(ts)) FROM metrics WHERE quest = ?) AS first "
                "FROM quests WHERE quest_id = ?", [q, q])[0]
            phases["admit_s"].append(row["queued"] - dropped)
            phases["start_s"].append(row["started"] - row["queued"])
            phases["first_step_s"].append(row["first"] - row["started"])
    settle = load_config(tmp).daemon.settle_seconds
    med = statistics.median(times)
    figures = {"drop_to_first_step_s": round(med, 3), "min_s": round(min(times), 3),
               "max_s": round(max(times), 3), "rounds": a.rounds, "quest_examples": a.examples,
               "settle_seconds": settle, "model": "dio-mini", "target_s": 3.0,
               "runs": [round(t, 3) for t in times],
               **{k: round(statistics.median(v), 3) for k, v in phases.items()}}
    summary = (f"quest drop to first training step (warm daemon, dio-mini, CPU): median "
               f"{med:.2f} s over {a.rounds} rounds (min {min(times):.2f}, max {max(times):.2f}; "
               f"includes the {settle} s inbox settle; target < 3 s); medians: admission "
               f"{figures['admit_s']:.2f} s, queue to battle {figures['start_s']:.2f} s, battle to "
               f"first logged step {figures['first_step_s']:.2f} s")
    report("quest_latency", figures, summary, a.out)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
