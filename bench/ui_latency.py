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
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import report  # noqa: E402
from realm_kernel.api import Realm  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
TARGET_S = 1.0


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


@contextmanager
def server(argv: list[str], env: dict, log: Path):
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALM_")}
    env.update(REALM_HOME=str(home), REALM_WEAVER="0", PYTHONUNBUFFERED="1",
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-ws"))
    nb_dir = tmp / "lab" / "notebooks"
    nb_dir.mkdir(parents=True)
    (nb_dir / "Latency.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                   "source": "from widgets import show\nshow('tavern')"}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))
    figures: dict = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            port = free_port()
            with server([sys.executable, "-m", "widgets.app", "--port", str(port)], env, tmp / "panel.log"):
                url = f"http://127.0.0.1:{port}/"
                wait_for(lambda: requests.get(url, timeout=5).ok, 90, "the Panel app")
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                page.locator("[data-stat=events]").first.wait_for(state="attached", timeout=60_000)
                panel = rounds_on(page, realm, args.rounds)
                panel_dom = detection_rounds(page, args.rounds)
                page.close()
            port, token = free_port(), "ui-latency"
            play = [sys.executable, "-m", "realm_kernel.cli", "play", f"--port={port}",
                    f"--root-dir={tmp / 'lab'}", f"--IdentityProvider.token={token}"]
            with server(play, env, tmp / "lab.log"):
                base = f"http://127.0.0.1:{port}"
                auth = {"Authorization": f"token {token}"}
                wait_for(lambda: requests.get(f"{base}/api/status", timeout=5, headers=auth).ok, 120,
                         "JupyterLab")
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{base}/lab/tree/notebooks/Latency.ipynb?token={token}")
                page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
                wait_for(lambda: "Idle" in str(page.locator(".jp-StatusBar-TextItem").all_inner_texts()), 90,
                         "the kernel")
                page.get_by_role("menuitem", name="Run").first.click()
                page.get_by_text("Run All Cells", exact=True).click()
                page.locator("[data-stat=events]").first.wait_for(state="attached", timeout=120_000)
                lab = rounds_on(page, realm, args.rounds)
                lab_dom = detection_rounds(page, args.rounds)
                page.close()
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for host, xs in (("panel", panel), ("jupyterlab", lab), ("panel_dom_only", panel_dom),
                     ("jupyterlab_dom_only", lab_dom)):
        s = summary(xs)
        figures.update({f"{host}_{k}": v for k, v in s.items()})
        figures[f"{host}_ratio_to_target"] = round(s["median_s"] / TARGET_S, 3)
    figures["target_s"] = TARGET_S
    report("ui_latency", figures,
           f"ledger row -> visible in Chromium: Panel median {figures['panel_median_s']:.2f} s "
           f"(p90 {figures['panel_p90_s']:.2f}), JupyterLab median {figures['jupyterlab_median_s']:.2f} s "
           f"(p90 {figures['jupyterlab_p90_s']:.2f}) over {args.rounds} writes each; "
           f"Playwright's own detection of a DOM insert (baseline): "
           f"{figures['panel_dom_only_median_s']:.2f} / {figures['jupyterlab_dom_only_median_s']:.2f} s; "
           f"ratio to the {TARGET_S:.0f} s target {figures['panel_ratio_to_target']:.2f} / "
           f"{figures['jupyterlab_ratio_to_target']:.2f}")


if __name__ == "__main__":
    main()
