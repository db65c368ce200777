"""Shared fixtures: a temp realm home with dio-mini, real subprocesses, free ports."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from realm_kernel.store.paths import RealmPaths

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"

# Small, fast training for tests: many steps, frequent checkpoints.
TEST_TOML = """
[training]
batch_size = 8
save_steps = 10
max_length = 128
threads = 1

[daemon]
poll_seconds = 0.5
settle_seconds = 0.2

# The Weaver starts a Task Master beside the daemon; tests that want its pipelines
# turn it on (tests/test_taskmaster.py), the rest keep their realm to themselves.
[taskmaster]
enabled = false
"""


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # e.g. a status file not yet written
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dio_mini_dir(tmp_path_factory) -> Path:
    from realm_kernel.train.dio_mini import build_dio_mini
    return build_dio_mini(tmp_path_factory.mktemp("hero") / "dio-mini")


@pytest.fixture
def realm_home(tmp_path, dio_mini_dir, monkeypatch) -> RealmPaths:
    paths = RealmPaths.at(tmp_path / "realm").ensure()
    shutil.copytree(dio_mini_dir, paths.dio_mini)
    paths.config_file.write_text(TEST_TOML)
    monkeypatch.setenv("REALM_HOME", str(paths.home))
    return paths


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALM_")}
    env["REALM_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Procs:
    """Subprocesses started by a test, always stopped after it."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str],
              cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(argv, env=env, cwd=cwd or REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = self.logdir / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            try:
                self.stop(p)
            except ProcessLookupError:
                pass


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def start_daemon(procs: Procs, paths: RealmPaths, name: str = "daemon", **env: str) -> subprocess.Popen:
    """A real daemon subprocess on this realm; `env` adds variables (fault hooks)."""
    return procs.start(name, [sys.executable, "-m", "realm_kernel.services.daemon", "--home",
                              str(paths.home)], {**child_env(paths.home), **env})


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def start_lab(procs: Procs, paths: RealmPaths, tmp_path: Path, token: str = "browser-test") -> str:
    """`realm play` (JupyterLab, the extension's daemon and Task Master) on a free port,
    serving a copy of notebooks/; its base URL once the realm API answers."""
    from realm_kernel.store.paths import REPO_ROOT
    root = tmp_path / "lab-root"
    shutil.copytree(REPO_ROOT / "notebooks", root / "notebooks")
    port = free_port()
    env = child_env(paths.home)
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "lab-settings")  # theme changes stay here
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "lab-workspaces")
    procs.start("play", [sys.executable, "-m", "realm_kernel.cli", "play", f"--port={port}",
                         f"--root-dir={root}", f"--IdentityProvider.token={token}"], env)
    base = f"http://127.0.0.1:{port}"
    import requests
    wait_for(lambda: requests.get(f"{base}/realm/api/health", timeout=5,
                                  headers={"Authorization": f"token {token}"}).ok, 90, "JupyterLab")
    return base


def run_notebook(page, base: str, token: str = "browser-test", path: str = "notebooks/Tavern.ipynb") -> None:
    """Open a notebook in JupyterLab and Run All Cells once its kernel is idle."""
    page.goto(f"{base}/lab/tree/{path}?token={token}")
    page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
    wait_for(lambda: "Idle" in str(page.locator(".jp-StatusBar-TextItem").all_inner_texts()),
             90, "the kernel to start")
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()


def xp_of(page) -> int:
    """DIO's XP as the hero card shows it."""
    text = page.locator("[data-stat=xp]").first.text_content()  # cells off screen skip layout
    return int(re.search(r"XP (\d+)", text).group(1))


def watch_xp_rise(page, timeout: float = 60) -> tuple[int, int]:
    """XP read once the hero card is there, and a later, higher reading."""
    page.locator("[data-stat=xp]").first.wait_for(timeout=60_000)
    first = xp_of(page)
    later = wait_for(lambda: (x := xp_of(page)) > first and x, timeout, "XP to rise in the page")
    return first, later
