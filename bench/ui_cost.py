"""UI cost (issue 30): what the Tavern costs while DIO trains, when someone looks and when
nobody does.

A real daemon trains dio-mini on a long generated quest. Phases alternate, each
`--window` seconds, `--rounds` times, and the figures are medians over rounds:

- the Panel app's server process with 0 sessions, 1 and 3 visible sessions (Chromium
  tabs on `/`), and the 3 sessions hidden (the tab's `visibilityState` set to hidden and
  its `visibilitychange` fired: emulated, headless Chromium keeps every tab visible);
- the JupyterLab kernel of a notebook showing all seven pages: visible, hidden
  (emulated as above) and with the browser tab closed;
- DIO's training tokens/s (the ledger's `metrics.tokens_per_s`) in each phase, as a
  ratio to the same round's window with no page shown (Panel: its 0-session window;
  the notebook: a window before its tab opens), median over rounds.

CPU is the process's user+system time over the window (psutil), as a share of one core;
beside it, in the same window, Chromium's processes (drawing the pages) and, in the
notebook's phases, the Jupyter server: what else watching takes from DIO's cores.
Targets: <= 10% of a core shown, <= 1% hidden or closed; tokens/s >= 0.95x headless.

`--idle-loop 30` measures instead the issue's level-ups in a 30-minute idle loop with the
Tavern open and visible vs headless (>= 0.9x): two loops, one after the other (an hour).
`--profile DIR` samples each phase's process with py-spy and prints where its CPU goes.

    .venv/bin/python bench/ui_cost.py [--rounds 3] [--window 30] [--hosts panel,lab]
    .venv/bin/python bench/ui_cost.py --idle-loop 30
    .venv/bin/python bench/ui_cost.py --rounds 1 --window 20 --profile /tmp/ui-profile
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import report  # noqa: E402
from realm_kernel.api import Realm  # noqa: E402
from realm_widgets.pages import PAGES as ALL_PAGES  # noqa: E402
from tests.helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    TEST_TOML,
    Procs,
    make_home,
    run_notebook,
    start_daemon,
    start_lab,
    start_panel,
    wait_for,
)

HIDE = ("v => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => v}); "
        "document.dispatchEvent(new Event('visibilitychange')); }")
PAGES = tuple(ALL_PAGES)  # every page the Tavern has, as the app routes them


def cpu_times(procs) -> dict[int, float]:
    """user+system seconds of each process still alive, by pid."""
    import psutil
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # ended meanwhile (a Chromium helper process)
            continue
        out[p.pid] = t.user + t.system
    return out


def cpu_share(proc, seconds: float, others: dict | None = None) -> tuple[float, dict[str, float]]:
    """The process's (and its threads') CPU over `seconds`, as a share of one core; and the
    same for each group in `others` (name -> a function listing its processes now: the
    browser's process tree, the Jupyter server), a process new in the window counted whole."""
    groups = {name: cpu_times(lister()) for name, lister in (others or {}).items()}
    t = proc.cpu_times()
    t0, c0 = time.monotonic(), t.user + t.system
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    t = proc.cpu_times()
    span = time.monotonic() - t0
    shares = {}
    for name, before in groups.items():
        after = cpu_times((others or {})[name]())
        shares[name] = sum(v - before.get(pid, 0.0) for pid, v in after.items()) / span
    return (t.user + t.system - c0) / span, shares


def tokens_per_s(realm: Realm, since: datetime) -> float | None:
    rows = realm.ledger.query("SELECT tokens_per_s FROM metrics WHERE ts >= ? AND tokens_per_s IS NOT NULL",
                              [since])
    return statistics.median(r["tokens_per_s"] for r in rows) if rows else None


def phase(realm: Realm, proc, window: float, profile: Path | None = None, name: str = "",
          others: dict | None = None) -> dict:
    """One window: the process's CPU (and the `others` groups'), and DIO's tokens/s; with
    `profile`, py-spy samples the process's busy threads meanwhile (collapsed stacks to
    profile/<name>.txt)."""
    since = datetime.now(UTC)
    spy = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking",
                                "--format", "raw", "-r", "50", "-d", str(int(window)), "-p", str(proc.pid),
                                "-o", str(profile / f"{name}.txt")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cpu, shares = cpu_share(proc, window, others)
    if spy is not None:
        spy.wait(timeout=window + 60)
    return {"cpu": cpu, "tokens_per_s": tokens_per_s(realm, since), **shares}


def top_frames(profile: Path, n: int = 12) -> dict[str, list]:
    """Per profile: the functions with the most samples anywhere on the stack (self + below)."""
    out = {}
    for f in sorted(profile.glob("*.txt")):
        counts: dict[str, int] = {}
        total = 0
        for line in f.read_text().splitlines():
            stack, _, k = line.rpartition(" ")
            total += int(k)
            for frame in set(stack.split(";")):
                counts[frame] = counts.get(frame, 0) + int(k)
        out[f.stem] = [(total, "samples")] + sorted(((c, fr) for fr, c in counts.items()), reverse=True)[:n]
    return out


def show_all(page, visible: bool) -> None:
    page.evaluate(HIDE, "visible" if visible else "hidden")


def med(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 4) if xs else None


def idle_loop_compare(minutes: float, note: str) -> None:
    """Level-ups in the idle loop (bench/idle_loop.py: `realm play --headless` from an empty
    realm) headless, then with the Tavern open and visible (the Panel app and one
    Chromium tab on `/` from the ledger's first moment): the ratio of level-ups."""
    from playwright.sync_api import sync_playwright

    from bench import idle_loop
    from realm_kernel.store.paths import RealmPaths
    got: dict[str, dict] = {}
    for mode in ("headless", "tavern"):
        tmp = Path(tempfile.mkdtemp(prefix=f"ui-cost-idle-{mode}-"))
        home = tmp / "realm"
        loop = threading.Thread(target=idle_loop.main, name=f"idle-loop-{mode}", args=(
            ["--minutes", str(minutes), "--home", str(home), "--out", str(tmp / "results")],))
        loop.start()
        procs = Procs(tmp)
        try:
            if mode == "tavern":
                wait_for(lambda h=home, t=loop: (h / "ledger").exists() or not t.is_alive(), 600,
                         "the realm's ledger")
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    _, url = start_panel(procs, RealmPaths.at(home), REALM_WEAVER="0")
                    tab = browser.new_page(viewport={"width": 1280, "height": 800})
                    tab.goto(f"{url}/")
                    loop.join()
                    browser.close()
            loop.join()
        finally:
            procs.stop_all()
        got[mode] = json.loads((tmp / "results" / "idle_loop.json").read_text())
        shutil.rmtree(tmp, ignore_errors=True)
    ups = {m: g["level_ups"] for m, g in got.items()}
    ratio = round(ups["tavern"] / ups["headless"], 3) if ups["headless"] else None
    figures = {"minutes": minutes, "note": note, "load_avg": os.getloadavg(),
               **{f"{m}_level_ups": n for m, n in ups.items()},
               **{f"{m}_steps": g["steps"] for m, g in got.items()}, "level_ups_ratio": ratio}
    report("ui_cost_idle", figures,
           f"idle loop {minutes:.0f} min from an empty realm: level-ups with the Tavern open and "
           f"visible {ups['tavern']} vs headless {ups['headless']} (ratio {ratio}; target >= 0.9), "
           f"steps {got['tavern']['steps']} vs {got['headless']['steps']}; load avg "
           f"{figures['load_avg'][0]:.1f} on {os.cpu_count()} cores. {note}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--note", default="", help="the machine's load, said with the figures")
    ap.add_argument("--hosts", default="panel,lab", help="which hosts to measure: panel, lab or both")
    ap.add_argument("--profile", type=Path, help="py-spy each phase into this folder (no figures written)")
    ap.add_argument("--idle-loop", type=float, metavar="MINUTES",
                    help="instead: level-ups in two idle loops of MINUTES, headless and with the Tavern open")
    args = ap.parse_args()
    if args.idle_loop:
        return idle_loop_compare(args.idle_loop, args.note)
    import psutil
    from playwright.sync_api import sync_playwright

    from realm_kernel.train.dio_mini import build_dio_mini
    tmp = Path(tempfile.mkdtemp(prefix="ui-cost-"))
    hero = build_dio_mini(tmp / "hero" / "dio-mini")
    paths = make_home(tmp / "realm", hero, TEST_TOML)
    realm = Realm(paths.home, writer="bench")
    realm.ledger.ensure_views()
    nb_dir = tmp / "lab" / "notebooks"
    nb_dir.mkdir(parents=True)
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": f"from realm_widgets import show\nshow('{name}')"} for i, name in enumerate(PAGES)]
    # The last cell leaves a mark: Run All queues every cell, so the mark means every page's
    # cell has run, and the visible window measures the pages, not their cells still running
    # (JupyterLab renders only the cells near the viewport: their prompts cannot tell).
    ran = nb_dir / "all-cells-ran"
    cells.append({"cell_type": "code", "execution_count": None, "id": "mark", "metadata": {}, "outputs": [],
                  "source": f"open({str(ran)!r}, 'w').close()"})
    (nb_dir / "Cost.ipynb").write_text(json.dumps({
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))
    runs: dict[str, list] = {}
    hosts = set(args.hosts.split(","))

    me = psutil.Process()

    def chromium_procs() -> list:
        """Chromium's processes (Playwright's driver starts them under this one)."""
        return [c for c in me.children(recursive=True) if "chrom" in c.name().lower()]

    def measure(name: str, proc, **others) -> dict:
        # What else watching costs DIO's cores: Chromium drawing the pages (every phase),
        # and the Jupyter server beside the kernel (the notebook's phases).
        return phase(realm, proc, args.window, args.profile, f"{name}-r{len(runs.get(name, []))}",
                     {"browser": chromium_procs, **others})
    procs = Procs(tmp)
    try:
        start_daemon(procs, paths)
        # Long enough to train through every phase (one quest of 20,000 lasted only through
        # the Panel phases on a quiet machine): three queued, trained one after another.
        for _ in range(3):
            realm.quests.generate("bin", 1, 20000)
        wait_for(lambda: tokens_per_s(realm, datetime(2000, 1, 1, tzinfo=UTC)), 300, "DIO to train")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            app, url = start_panel(procs, paths, REALM_WEAVER="0") if "panel" in hosts else (None, "")
            server = psutil.Process(app.pid) if app else None
            for _ in range(args.rounds if app else 0):
                runs.setdefault("panel_0", []).append(measure("panel_0", server))
                tabs = []
                for n in (1, 3):
                    while len(tabs) < n:
                        tab = browser.new_page(viewport={"width": 1280, "height": 800})
                        tab.goto(f"{url}/")
                        tab.locator("[data-stat=events]").first.wait_for(state="attached", timeout=60_000)
                        tabs.append(tab)
                    runs.setdefault(f"panel_{n}", []).append(measure(f"panel_{n}", server))
                for tab in tabs:
                    show_all(tab, False)
                runs.setdefault("panel_3_hidden", []).append(measure("panel_3_hidden", server))
                for tab in tabs:
                    tab.close()
            if app:
                procs.stop(app)
            token = "ui-cost"
            lab, base = start_lab(procs, paths, tmp, root_dir=tmp / "lab", token=token, REALM_WEAVER="0")
            for _ in range(args.rounds if "lab" in hosts else 0):
                # the lab phases' own baseline: nobody looking, right before them
                runs.setdefault("lab_headless", []).append(measure("lab_headless", psutil.Process(lab.pid)))
                jupyter = {"server": lambda: [psutil.Process(lab.pid)]}
                ran.unlink(missing_ok=True)
                tab = browser.new_page(viewport={"width": 1280, "height": 2400})
                run_notebook(tab, base, token, "notebooks/Cost.ipynb")
                tab.locator("[data-stat=events]").first.wait_for(state="attached", timeout=120_000)
                wait_for(ran.exists, 300, "the notebook's last cell to run")
                kernel = next(c for c in psutil.Process(lab.pid).children(recursive=True)
                              if "ipykernel" in " ".join(c.cmdline()))
                runs.setdefault("lab_visible", []).append(measure("lab_visible", kernel, **jupyter))
                show_all(tab, False)
                runs.setdefault("lab_hidden", []).append(measure("lab_hidden", kernel, **jupyter))
                tab.close()
                runs.setdefault("lab_closed", []).append(measure("lab_closed", kernel, **jupyter))
                kernel.terminate()  # the next round opens the notebook on a fresh kernel
            browser.close()
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.profile is not None:
        for name, top in top_frames(args.profile).items():
            print(f"== {name}", *(f"{c:7d}  {fr}" for c, fr in top), sep="\n")
        return
    figures: dict = {"rounds": args.rounds, "window_s": args.window, "note": args.note,
                     "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()}
    for name, phases in runs.items():
        figures[f"{name}_cpu_core_share"] = med([p["cpu"] for p in phases])
        figures[f"{name}_tokens_per_s"] = med([p["tokens_per_s"] for p in phases])
        for other in ("browser", "server"):
            if all(other in p for p in phases):
                figures[f"{name}_{other}_cpu_core_share"] = med([p[other] for p in phases])
    for name, phases in runs.items():
        # Each round's phase against its own round's headless window (DIO's pace drifts
        # over a run: a baseline from the first round alone does not describe the last).
        base = runs["lab_headless" if name.startswith("lab") else "panel_0"]
        ratios = [p["tokens_per_s"] / b["tokens_per_s"] for p, b in zip(phases, base, strict=True)
                  if p["tokens_per_s"] and b["tokens_per_s"]]
        figures[f"{name}_tokens_ratio"] = med(ratios)
        figures[f"{name}_tokens_ratios"] = ", ".join(f"{r:.3f}" for r in ratios)
    report("ui_cost", figures,
           "Tavern cost while DIO trains (share of one core, medians of "
           f"{args.rounds} rounds x {args.window:.0f} s): Panel server 0/1/3 sessions "
           f"{figures.get('panel_0_cpu_core_share')}/{figures.get('panel_1_cpu_core_share')}/"
           f"{figures.get('panel_3_cpu_core_share')}, "
           f"3 hidden {figures.get('panel_3_hidden_cpu_core_share')}; "
           f"notebook kernel visible/hidden/closed {figures.get('lab_visible_cpu_core_share')}/"
           f"{figures.get('lab_hidden_cpu_core_share')}/{figures.get('lab_closed_cpu_core_share')}; "
           f"DIO tokens/s with 1 / 3 Panel tabs / the notebook visible vs nobody looking (same round) "
           f"{figures.get('panel_1_tokens_ratio')}x / {figures.get('panel_3_tokens_ratio')}x / "
           f"{figures.get('lab_visible_tokens_ratio')}x; Chromium with 1 / 3 Panel tabs / the notebook "
           f"visible {figures.get('panel_1_browser_cpu_core_share')}/"
           f"{figures.get('panel_3_browser_cpu_core_share')}/"
           f"{figures.get('lab_visible_browser_cpu_core_share')}, the Jupyter server with the "
           f"notebook visible {figures.get('lab_visible_server_cpu_core_share')}; "
           f"load avg {figures['load_avg'][0]:.1f} on {os.cpu_count()} cores. {args.note}")


if __name__ == "__main__":
    main()
