"""The one home of what the tests and the benchmarks share: a temp realm home with
dio-mini, real subprocesses, free ports, waiting, JupyterLab (plain or `realm play`)
and the REST API's token. Plain functions (no pytest): bench scripts import them as
`tests.helpers` (bench/common.py puts the repo root on sys.path); tests/conftest.py
wraps them in fixtures."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from realm_kernel.store.paths import RealmPaths

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("REALM_CHROMIUM", "/usr/bin/chromium")
NO_CHROMIUM = (f"the browser tests need Debian's chromium at {CHROMIUM}: run `sudo apt-get install "
               "chromium` (`make test` does it when root), or skip them on purpose with BROWSER_TESTS=skip")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "realm-test-token"  # JupyterLab's token in every lab started here

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
# turn it on (tests/services/test_taskmaster.py), the rest keep their realm to themselves.
[taskmaster]
enabled = false
"""


def require_chromium() -> None:
    """Browser tests never skip in silence: without chromium they fail with the command
    to run, unless BROWSER_TESTS=skip asked for the skip."""
    import pytest
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("BROWSER_TESTS") == "skip":
        pytest.skip(f"BROWSER_TESTS=skip ({NO_CHROMIUM})")
    pytest.fail(NO_CHROMIUM, pytrace=False)


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} has them) with a listening TCP socket on
    `port`: what a server really bound, whatever its options said."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            local, state = ln.split()[1], ln.split()[3]
            addr, p = local.rsplit(":", 1)
            if int(p, 16) == port and state == "0A":
                found.add(addr)
    return found


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2) -> object:
    """The predicate's first truthy value, polling every `interval`; an exception counts
    as not yet (e.g. a status file not yet written). AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:
            last_exc = e
        time.sleep(interval)  # sleep-ok: the poll interval of wait_for itself
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def free_port() -> int:
    """A free port below the kernel's ephemeral range. A port from bind(0) is ephemeral, and
    any outgoing connection (the tests poll their servers all the time) may take it before
    the server binds it: JupyterLab once failed so ("port 44019 is already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(20000, max(20001, low - 1))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def make_home(home: Path, hero: Path, toml: str = TEST_TOML) -> RealmPaths:
    """A realm home at `home`: a copy of the dio-mini at `hero` and `toml` as realm.toml."""
    paths = RealmPaths.at(home).ensure()
    shutil.copytree(hero, paths.dio_mini)
    paths.config_file.write_text(toml)
    return paths


def child_env(home: Path) -> dict[str, str]:
    """This environment without REALM_* variables, for a subprocess on the realm at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALM_")}
    env["REALM_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Procs:
    """Subprocesses started by a test or a benchmark, always stopped after it; each one's
    output in logdir/NAME.log."""

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


def start_daemon(procs: Procs, paths: RealmPaths, name: str = "daemon", **env: str) -> subprocess.Popen:
    """A real daemon subprocess on this realm; `env` adds variables (fault hooks)."""
    return procs.start(name, [sys.executable, "-m", "realm_kernel.services.daemon", "--home",
                              str(paths.home)], {**child_env(paths.home), **env})


def auth(token: str = TOKEN) -> dict[str, str]:
    """The header that authenticates a REST request to the lab's realm API."""
    return {"Authorization": f"token {token}"}


def api(base: str, method: str, route: str, **kw):
    """One authenticated request to BASE/realm/api/ROUTE."""
    import requests
    return requests.request(method, f"{base}/realm/api/{route}", headers=auth(), timeout=30, **kw)


def start_lab(procs: Procs, paths: RealmPaths, workdir: Path, *, play: bool = False,
              root_dir: Path | None = None, token: str = TOKEN, name: str = "lab",
              timeout: float = 120, port: int | None = None,
              **extra_env: str) -> tuple[subprocess.Popen, str]:
    """A real JupyterLab with the realm extension on 127.0.0.1 and a free port, once it
    answers: (its process, its base URL). Plain, `python -m jupyterlab` with the repo's
    jupyter-config (its Weaver runs the daemon unless REALM_WEAVER="0" is in `extra_env`),
    serving `root_dir` (default `workdir`). With `play`, `realm play` (JupyterLab, the
    extension's daemon and Task Master), serving `root_dir` (default a copy of notebooks/
    in workdir/lab-root), ready once the realm API answers. Its runtime, settings and
    workspaces folders are in `workdir` (theme changes stay there). `port`: that port (a
    server started again where its clients know it), not a free one."""
    import requests
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**child_env(paths.home), **extra_env}
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(workdir / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(workdir / "lab-workspaces")
    env["JUPYTER_TOKEN"] = token  # never an argument: `ps` shows those to every user
    if play and root_dir is None:
        root_dir = workdir / "lab-root"
        shutil.copytree(REPO / "notebooks", root_dir / "notebooks")
    # A port another test's server took between free_port() and the bind: Jupyter would
    # quietly move to the next port (and the test wait on the first for ever), so it may
    # not (port_retries=0) and exits instead; then a fresh port, a few times at most.
    wanted = port
    for _ in range(3):
        port = wanted or free_port()
        if play:
            argv = [sys.executable, "-m", "realm_kernel.cli", "play", f"--port={port}",
                    f"--root-dir={root_dir}", "--ServerApp.port_retries=0"]
        else:
            env["JUPYTER_CONFIG_PATH"] = str(REPO / "jupyter-config")
            argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
                    "--no-browser", "--allow-root", f"--ServerApp.root_dir={root_dir or workdir}",
                    "--ServerApp.port_retries=0"]
        proc = procs.start(name, argv, env)
        base = f"http://127.0.0.1:{port}"

        def answered(p=proc, base=base) -> bool:
            """Ours answers, or ours exited. Another test's server that took the port first
            answers too (the same token): only ours names this realm home."""
            if p.poll() is not None:
                return True
            r = requests.get(f"{base}/realm/api/health", headers=auth(token), timeout=5)
            return r.ok and Path(r.json()["home"]).resolve() == Path(paths.home).resolve()

        wait_for(answered, timeout, "JupyterLab to answer")
        if proc.poll() is None:
            return proc, base
    raise AssertionError(f"JupyterLab exited at start three times (last exit {proc.returncode})")


def start_panel(procs: Procs, paths: RealmPaths, *scripts: str, ready: str = "", name: str = "panel",
                timeout: float = 90, **extra_env: str) -> tuple[subprocess.Popen, str]:
    """The Panel app on 127.0.0.1 and a free port: `python -m realm_widgets.app`, or with
    `scripts`, `panel serve SCRIPTS` (its websocket origin that address); (its process,
    its base URL) once BASE/READY answers."""
    import requests
    port = free_port()
    if scripts:
        argv = [sys.executable, "-m", "panel", "serve", *scripts, "--address", "127.0.0.1",
                "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"]
    else:
        argv = [sys.executable, "-m", "realm_widgets.app", "--port", str(port)]
    proc = procs.start(name, argv, {**child_env(paths.home), **extra_env})
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/{ready}", timeout=5).ok, timeout, "the Panel app")
    return proc, base


def run_notebook(page, base: str, token: str = TOKEN, path: str = "notebooks/Tavern.ipynb") -> None:
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


def stop_at(step: int):
    """A TrainerCallback that ends a run after `step` as an interruption would (not at its
    max_steps), so its last periodic save keeps the state a resume needs."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True
            return control

    return StopAt()


HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def realm_routes(value: str = "1", specs: list[tuple[str, type]] | None = None) -> list[tuple[str, str]]:
    """(METHOD, route under /realm/api) for every handler method the realm extension
    mounts, read from `realm_kernel.server.routes` (the list the server registers) or from
    `specs` (a live app's own rules): a route added later is covered without editing a
    test. Each path parameter becomes `value` (URL-encoded by the caller)."""
    from realm_kernel.server import routes
    out = []
    for pattern, handler in specs if specs is not None else routes("/"):
        route = re.sub(r"\([^)]*\)", lambda _: value, pattern.removesuffix("$")).split("realm/api/", 1)[1]
        for m in HTTP_METHODS:
            if m in vars(handler) or any(m in vars(b) for b in handler.__mro__[1:]
                                         if b.__module__.startswith("realm_kernel")):
                out.append((m.upper(), route))
    return out
