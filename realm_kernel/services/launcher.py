"""Leave the realm running and come back: what `realm up` / `realm play --detach`,
`realm ps` and `realm down` do.

`realm play` (foreground or detached) records itself in status/play.json: its pid, the
mode (lab or headless), the port and the URL with its token, and its log. `up` starts
`realm play` in its own session (the terminal can close), its output through a rotated
log (logs/play.log), and returns once the realm answers. `ps` lists what runs for this
realm from the status files, checking every pid. `down` sends SIGTERM to `realm play`
(JupyterLab stops its extension, whose Weaver stops the daemon at a step boundary with a
checkpoint, then the Task Master), or, with no `realm play`, to a daemon or Task Master
started on their own, and waits for all of them to exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..store.config import load_config
from ..store.paths import RealmPaths, atomic_write_json, read_json
from ..store.process import pid_alive
from ..store.status import DAEMON, WEAVER, read_status

PLAY = "play.json"
TASKMASTER = "taskmaster.json"


def record_play(paths: RealmPaths, mode: str, port: int | None = None,
                token: str | None = None, log: Path | None = None) -> dict:
    url = f"http://127.0.0.1:{port}/lab?token={token}" if mode == "lab" and port else None
    data = {"pid": os.getpid(), "mode": mode, "port": port, "url": url, "token": token,
            "log": str(log) if log else None, "home": str(paths.home), "started": time.time()}
    atomic_write_json(paths.status / PLAY, data)
    return data


def new_token() -> str:
    return secrets.token_hex(24)


def start_detached(paths: RealmPaths, play_args: list[str], headless: bool,
                   timeout: float = 180.0) -> dict:
    """Start `realm play PLAY_ARGS` in the background; return play.json once it answers."""
    if (running := play_status(paths)).get("alive"):
        raise RuntimeError(f"the realm at {paths.home} already runs (pid {running['pid']}); "
                           "`realm ps` shows it, `realm down` stops it")
    (paths.status / PLAY).unlink(missing_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    cfg = load_config(paths.home)
    log = paths.logs / "play.log"
    env = {**os.environ, "REALM_HOME": str(paths.home), "REALM_PLAY_LOG": str(log)}
    play = subprocess.Popen([sys.executable, "-m", "realm_kernel.cli", "play", *play_args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    rotator = subprocess.Popen([sys.executable, "-m", "realm_kernel.store.logs", str(log),
                                str(cfg.logs.max_mb), str(cfg.logs.files)],
                               stdin=play.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    play.stdout.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if play.poll() is not None:
            # The rotator ends at the end of play's output: waited for, the log we name
            # holds play's last words, and no zombie is left in a long-lived caller.
            with contextlib.suppress(subprocess.TimeoutExpired):
                rotator.wait(timeout=60)
            raise RuntimeError(f"realm play exited with {play.returncode}; see {log}")
        st = play_status(paths)
        if st.get("pid") == play.pid and _answers(paths, st, headless):
            return st
        time.sleep(0.5)
    raise RuntimeError(f"the realm did not answer within {timeout:.0f} s; see {log}")


def _answers(paths: RealmPaths, st: dict, headless: bool) -> bool:
    if headless:
        return pid_alive(read_status(paths, WEAVER).get("pid"))
    import urllib.request
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{st['port']}/realm/api/health",
                                     headers={"Authorization": f"token {st['token']}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def play_status(paths: RealmPaths) -> dict:
    data = read_json(paths.status / PLAY, {})
    if not isinstance(data, dict) or not data:
        return {}
    return {**data, "alive": pid_alive(data.get("pid"))}


def ps(paths: RealmPaths) -> dict:
    """What runs for this realm: `realm play`, the Weaver's services, a daemon or Task
    Master started on their own; every pid checked."""
    procs = []
    play = play_status(paths)
    if play.get("alive"):
        procs.append({"name": f"play ({play['mode']})", "pid": play["pid"],
                      "port": play.get("port"), "url": play.get("url"), "log": play.get("log")})
    weaver = read_status(paths, WEAVER)
    seen = {p["pid"] for p in procs}
    if pid_alive(weaver.get("pid")):
        for t in weaver.get("services", []):
            if pid_alive(t.get("pid")):
                procs.append({"name": t["name"], "pid": t["pid"], "supervised_by": weaver["pid"],
                              "restarts": t.get("restarts"), "hangs": t.get("hangs", 0),
                              "log": str(paths.logs / f"{t['name']}.log")})
                seen.add(t["pid"])
    for name, status in (("daemon", DAEMON), ("taskmaster", TASKMASTER)):
        pid = read_status(paths, status).get("pid")
        if pid_alive(pid) and pid not in seen:
            procs.append({"name": name, "pid": pid, "supervised_by": None})
    return {"home": str(paths.home), "running": bool(procs), "processes": procs}


def down(paths: RealmPaths, timeout: float | None = None) -> dict:
    """Stop this realm cleanly from any shell; returns what was stopped."""
    cfg = load_config(paths.home)
    timeout = timeout if timeout is not None else cfg.daemon.stop_timeout_s + 60
    now = ps(paths)["processes"]
    play = [p for p in now if p["name"].startswith("play")]
    # `realm play` stops its own children in order; alone, the daemon goes first.
    targets = play or sorted(now, key=lambda p: p["name"] != "daemon")
    stopped = []
    for p in targets:
        try:
            os.kill(p["pid"], signal.SIGTERM)
        except ProcessLookupError:
            continue
        _wait_gone(p["pid"], timeout)
        stopped.append({"name": p["name"], "pid": p["pid"], "stopped": not pid_alive(p["pid"])})
    left = [p for p in now if pid_alive(p["pid"])]
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:  # the children of `realm play`
        time.sleep(0.2)
        left = [p for p in left if pid_alive(p["pid"])]
    return {"home": str(paths.home), "stopped": stopped,
            "still_running": [{"name": p["name"], "pid": p["pid"]} for p in left]}


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        try:  # reap it if it is our own child (the tests start it so)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
