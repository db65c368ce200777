"""Helpers shared by the benchmarks: machine facts and result recording. Importing it puts
the repo root on sys.path, so a script run as `python bench/X.py` can import
`realm_kernel` and the helpers it shares with the tests, `tests.helpers` (free_port,
wait_for, child_env, Procs, start_daemon, make_home, start_lab, auth, ...)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} ({os.cpu_count()} CPU cores)"
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def commit() -> str:
    """The checkout's commit, "+dirty" when tracked files differ from it (the figure then
    measured code no commit holds); "unknown" outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=9", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def record(name: str, figures: dict, summary: str, out_dir: Path | None = None) -> Path:
    """Write bench/results/NAME.json (with machine, date and commit) and a dated line in
    bench/RESULTS.md."""
    out_dir = out_dir or BENCH / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {**figures, "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "commit": figures.get("commit") or commit()}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    results_md = out_dir.parent / "RESULTS.md"
    with results_md.open("a", encoding="utf-8") as f:
        f.write(f"- {figures['date']} `{name}` on {figures['machine']}: {summary}\n")
    return path


def report(name: str, figures: dict, summary: str, out_dir: Path | None = None) -> Path:
    """record(), then print the summary and where the figures went."""
    path = record(name, figures, summary, out_dir)
    print(summary)
    print(f"wrote {path}")
    return path


def run_engine(model_dir: Path, examples: list[dict], training, workdir: Path):
    """One quest through our TrainerEngine in a fresh realm home; its TrainingResult."""
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.store.paths import RealmPaths
    from realm_kernel.train import Job, TrainerEngine

    paths = RealmPaths.at(workdir).ensure()
    job = Job(quest_id="bench.jsonl", examples=examples, model_path=model_dir, run_id="bench",
              training=training)
    result = TrainerEngine(paths, Ledger(paths, "bench")).run_job(job)
    if not result.success:
        raise SystemExit(result.error_message)
    return result


def load_average() -> str:
    """The 1/5/15-minute load averages, as `uptime` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def alternating(ours, baseline, pairs: int) -> tuple[list[float], list[float], list[float]]:
    """A warm-up run of each side, then `pairs` pairs in alternating order (ours, baseline,
    baseline, ours, ...) so neither side always runs first on a warmer or quieter machine.
    `ours` and `baseline` take no arguments and return a rate. (ratios, ours, baseline)."""
    ours(), baseline()
    mine, theirs = [], []
    for i in range(pairs):
        if i % 2 == 0:
            mine.append(ours())
            theirs.append(baseline())
        else:
            theirs.append(baseline())
            mine.append(ours())
    return [m / b for m, b in zip(mine, theirs, strict=True)], mine, theirs
