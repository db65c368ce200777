"""`realm ps` / `realm down` / `realm up` in this process, over real child processes that
stand for `realm play`, the daemon and the Task Master (services/launcher.py); the slow
tests in tests/reliability/test_unattended.py run the real realm end to end."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from realm_kernel.services import launcher
from realm_kernel.store.paths import atomic_write_json
from realm_kernel.store.status import DAEMON, WEAVER, write_status

from ..helpers import TEST_TOML, wait_for

# A process that says it is up, and on SIGTERM writes its name to stopped.txt and exits.
STANDS_IN = '''
import signal, sys, threading
from pathlib import Path
home, name = Path(sys.argv[1]), sys.argv[2]
def bye(*_):
    with open(home / "stopped.txt", "a") as f:
        f.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
(home / f"{name}.up").write_text("")
threading.Event().wait()
'''


@pytest.fixture
def stand_in(realm_home):
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", STANDS_IN, str(realm_home.home), name])
        started.append(p)
        wait_for(lambda: (realm_home.home / f"{name}.up").exists(), 60, f"{name} to start")
        return p
    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def gone_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def stopped(realm_home) -> list[str]:
    f = realm_home.home / "stopped.txt"
    return f.read_text().split() if f.exists() else []


def test_ps_lists_what_runs_once_each_and_checks_every_pid(realm_home, stand_in):
    assert launcher.ps(realm_home) == {"home": str(realm_home.home), "running": False, "processes": []}
    log = realm_home.logs / "play.log"
    play = launcher.record_play(realm_home, "lab", 8888, "tok", log)
    assert play["url"] == "http://127.0.0.1:8888/lab?token=tok" and play["pid"] == os.getpid()
    assert launcher.record_play(realm_home, "headless", 8888, "tok")["url"] is None
    assert launcher.record_play(realm_home, "lab")["url"] is None, "no port: no URL"
    launcher.record_play(realm_home, "lab", 8888, "tok", log)
    assert launcher.play_status(realm_home) | {"started": 0} == {
        "pid": os.getpid(), "mode": "lab", "port": 8888, "url": "http://127.0.0.1:8888/lab?token=tok",
        "token": "tok", "log": str(log), "home": str(realm_home.home), "started": 0, "alive": True}
    daemon, alone = stand_in("daemon"), stand_in("taskmaster")
    write_status(realm_home, WEAVER, pid=os.getpid(), services=[
        {"name": "daemon", "pid": daemon.pid, "restarts": 2, "hangs": 1},
        {"name": "taskmaster", "pid": gone_pid(), "restarts": 0}])
    write_status(realm_home, DAEMON, pid=daemon.pid)  # the Weaver's daemon: listed once
    atomic_write_json(realm_home.status / launcher.TASKMASTER, {"pid": alone.pid})
    now = launcher.ps(realm_home)
    assert now["running"] is True and now["home"] == str(realm_home.home)
    assert now["processes"] == [
        {"name": "play (lab)", "pid": os.getpid(), "port": 8888,
         "url": "http://127.0.0.1:8888/lab?token=tok", "log": str(log)},
        {"name": "daemon", "pid": daemon.pid, "supervised_by": os.getpid(), "restarts": 2, "hangs": 1,
         "log": str(realm_home.logs / "daemon.log")},
        {"name": "taskmaster", "pid": alone.pid, "supervised_by": None}]
    # A Weaver that died supervises nothing: its services are not listed through it.
    write_status(realm_home, WEAVER, pid=gone_pid(), services=[{"name": "daemon", "pid": daemon.pid}])
    names = [(p["name"], p["supervised_by"]) for p in launcher.ps(realm_home)["processes"][1:]]
    assert names == [("daemon", None), ("taskmaster", None)]
    atomic_write_json(realm_home.status / launcher.PLAY, {"pid": gone_pid(), "mode": "lab"})
    assert launcher.play_status(realm_home)["alive"] is False
    assert [p["name"] for p in launcher.ps(realm_home)["processes"]] == ["daemon", "taskmaster"]
    atomic_write_json(realm_home.status / launcher.PLAY, ["not", "a", "record"])
    assert launcher.play_status(realm_home) == {}


def test_down_stops_the_daemon_first_then_the_rest(realm_home, stand_in):
    tm, daemon = stand_in("taskmaster"), stand_in("daemon")
    write_status(realm_home, DAEMON, pid=daemon.pid)
    atomic_write_json(realm_home.status / launcher.TASKMASTER, {"pid": tm.pid})
    out = launcher.down(realm_home, timeout=60)
    assert stopped(realm_home) == ["daemon", "taskmaster"]
    assert out == {"home": str(realm_home.home), "still_running": [],
                   "stopped": [{"name": "daemon", "pid": daemon.pid, "stopped": True},
                               {"name": "taskmaster", "pid": tm.pid, "stopped": True}]}
    assert launcher.down(realm_home)["stopped"] == [], "nothing left to stop"


def test_down_stops_realm_play_which_stops_its_own_children(realm_home, stand_in):
    play = stand_in("play")
    atomic_write_json(realm_home.status / launcher.PLAY, {"pid": play.pid, "mode": "headless"})
    out = launcher.down(realm_home, timeout=60)
    assert out["stopped"] == [{"name": "play (headless)", "pid": play.pid, "stopped": True}]
    assert stopped(realm_home) == ["play"] and out["still_running"] == []


def test_down_names_what_would_not_stop(realm_home, stand_in):
    daemon = stand_in("daemon")
    write_status(realm_home, DAEMON, pid=daemon.pid)
    assert launcher.down(realm_home)["stopped"] == [{"name": "daemon", "pid": daemon.pid, "stopped": True}], \
        "no timeout given: the config's"
    deaf = subprocess.Popen([sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print('up', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert deaf.stdout.readline() == "up\n"  # SIGTERM is ignored from here on
        atomic_write_json(realm_home.status / launcher.TASKMASTER, {"pid": deaf.pid})
        out = launcher.down(realm_home, timeout=1)
        assert out["stopped"] == [{"name": "taskmaster", "pid": deaf.pid, "stopped": False}]
        assert out["still_running"] == [{"name": "taskmaster", "pid": deaf.pid}]
    finally:
        deaf.kill()
        deaf.wait()


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        ok = self.path == "/realm/api/health" and self.headers.get("Authorization") == "token tok"
        self.send_response(200 if ok else 403)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_up_waits_until_the_realm_answers_and_refuses_a_second_realm(realm_home):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert launcher._answers(realm_home, {"port": port, "token": "tok"}, headless=False)
        assert not launcher._answers(realm_home, {"port": port, "token": "wrong"}, headless=False)
    finally:
        server.shutdown()
        server.server_close()
    assert not launcher._answers(realm_home, {"port": port, "token": "tok"}, headless=False)
    assert not launcher._answers(realm_home, {}, headless=True), "no Weaver yet"
    write_status(realm_home, WEAVER, pid=os.getpid())
    assert launcher._answers(realm_home, {}, headless=True)
    # `realm play` that fails at once: said with its exit code and its log.
    realm_home.config_file.write_text(TEST_TOML)
    with pytest.raises(RuntimeError) as e:
        launcher.start_detached(realm_home, ["--port", "not-a-port"], headless=True, timeout=300)
    log = realm_home.logs / "play.log"
    assert str(e.value) == f"realm play exited with 2; see {log}"
    assert "Invalid value for '--port'" in log.read_text(), "the log named holds play's error"
    me = psutil.Process()
    assert not [c for c in me.children() if c.status() == psutil.STATUS_ZOMBIE], "play and its log reaped"
    launcher.record_play(realm_home, "headless")
    with pytest.raises(RuntimeError, match=f"already runs \\(pid {os.getpid()}\\)"):
        launcher.start_detached(realm_home, [], headless=True)
    assert json.loads((realm_home.status / launcher.PLAY).read_text())["pid"] == os.getpid()


def test_a_token_is_long_and_fresh():
    a, b = launcher.new_token(), launcher.new_token()
    assert a != b and len(a) == 48 and int(a, 16) >= 0


def test_waiting_for_a_pid_reaps_our_own_child(realm_home):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # sleep-ok: a child to stop
    os.kill(p.pid, signal.SIGTERM)
    launcher._wait_gone(p.pid, 30)
    assert not launcher.pid_alive(p.pid), "reaped, not left a zombie"
