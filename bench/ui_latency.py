"""UI latency: from a ledger row being written to the change being visible in the
browser, in the Panel app and in the Tavern notebook in JupyterLab (target < 1 s).

Each round appends a real event to the realm's ledger (a new Parquet segment, as the
daemon writes them) and times until Debian's Chromium (Playwright) shows its message in
the Tavern's "Recent events". Prints median and p90 per host and their ratio to the 1 s
target; writes bench/results/ui_latency.json and a line in bench/RESULTS.md.

    .venv/bin/python bench/ui_latency.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import load_average, report  # noqa: E402
from realm_kernel.api import Realm  # noqa: E402
from tests.helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    Procs,
    run_notebook,
    start_lab,
    start_panel,
)

TARGET_S = 1.0


def rounds_on(page, realm: Realm, n: int) -> list[float]:
    out = []
    for _ in range(n):
        time.sleep(random.uniform(0.2, 0.7))  # de-phase from the page's poll
        msg = f"ui-latency {uuid.uuid4().hex[:10]}"
        t0 = time.perf_counter()
        realm.ledger.event("bench_ping", msg)
        page.get_by_text(msg).first.wait_for(state="attached", timeout=15_000)
        out.append(time.perf_counter() - t0)
    return out


def detection_rounds(page, n: int) -> list[float]:
    """The baseline: how long Playwright takes to see text the page itself inserts."""
    out = []
    for _ in range(n):
        msg = f"dom-only {uuid.uuid4().hex[:10]}"
        t0 = time.perf_counter()
        page.evaluate("m => { const d = document.createElement('div'); d.textContent = m; "
                      "document.body.append(d); }", msg)
        page.get_by_text(msg).first.wait_for(state="attached", timeout=15_000)
        out.append(time.perf_counter() - t0)
    return out


def summary(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median_s": round(statistics.median(xs), 3), "p90_s": round(xs[int(0.9 * (len(xs) - 1))], 3),
            "p95_s": round(xs[int(0.95 * (len(xs) - 1))], 3),
            "min_s": round(xs[0], 3), "max_s": round(xs[-1], 3), "rounds": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ui-latency-"))
    home = tmp / "realm"
    realm = Realm(home)
    realm.ledger.ensure_views()
    nb_dir = tmp / "lab" / "notebooks"
    nb_dir.mkdir(parents=True)
    (nb_dir / "Latency.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                   "source": "from realm_widgets import show\nshow('tavern')"}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))
    figures: dict = {}
    procs = Procs(tmp)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            panel_app, url = start_panel(procs, realm.paths, REALM_WEAVER="0")
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/")
            page.locator("[data-stat=events]").first.wait_for(state="attached", timeout=60_000)
            panel = rounds_on(page, realm, args.rounds)
            panel_dom = detection_rounds(page, args.rounds)
            page.close()
            procs.stop(panel_app)
            token = "ui-latency"
            _, base = start_lab(procs, realm.paths, tmp, play=True, root_dir=tmp / "lab", token=token,
                                REALM_WEAVER="0")
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            run_notebook(page, base, token, "notebooks/Latency.ipynb")
            page.locator("[data-stat=events]").first.wait_for(state="attached", timeout=120_000)
            lab = rounds_on(page, realm, args.rounds)
            lab_dom = detection_rounds(page, args.rounds)
            page.close()
            browser.close()
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    for host, xs in (("panel", panel), ("jupyterlab", lab), ("panel_dom_only", panel_dom),
                     ("jupyterlab_dom_only", lab_dom)):
        s = summary(xs)
        figures.update({f"{host}_{k}": v for k, v in s.items()})
        figures[f"{host}_ratio_to_target"] = round(s["median_s"] / TARGET_S, 3)
    figures["target_s"] = TARGET_S
    report("ui_latency", figures,
           f"ledger row -> visible in Chromium: Panel median {figures['panel_median_s']:.2f} s "
           f"(p90 {figures['panel_p90_s']:.2f}, p95 {figures['panel_p95_s']:.2f}), JupyterLab median "
           f"{figures['jupyterlab_median_s']:.2f} s (p90 {figures['jupyterlab_p90_s']:.2f}, p95 "
           f"{figures['jupyterlab_p95_s']:.2f}) over {args.rounds} writes each; "
           f"Playwright's own detection of a DOM insert (baseline): "
           f"{figures['panel_dom_only_median_s']:.2f} / {figures['jupyterlab_dom_only_median_s']:.2f} s; "
           f"ratio to the {TARGET_S:.0f} s target {figures['panel_ratio_to_target']:.2f} / "
           f"{figures['jupyterlab_ratio_to_target']:.2f}; load average {load_average()} on "
           f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
