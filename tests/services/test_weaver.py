"""The Weaver in this process, over real child processes (small modules written here, run
as `python -m MODULE --home HOME` as it runs the daemon): a crash is mended with a
back-off, a clean exit is not, a hung step is killed with its stacks recorded, a service
that is not installed is listed as such, and stopping goes in order, killing what does
not stop in time (services/weaver.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading

import pytest

from realm_kernel.services import weaver
from realm_kernel.services.weaver import Service, Weaver
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.status import WEAVER, read_status

from ..helpers import wait_for

LOG = logging.getLogger("test.weaver")

# Each child: `python -m NAME --home HOME`; what it does is its module's text.
HANGS_ONCE = '''
import os, sys, threading, time
from realm_kernel.store.paths import RealmPaths, atomic_write_json
from realm_kernel.store.process import _dump_stacks_on_sigusr1
home = sys.argv[sys.argv.index("--home") + 1]
paths = RealmPaths.at(home)
if (paths.home / "hung-once").exists():
    sys.exit(0)
(paths.home / "hung-once").write_text("")
_dump_stacks_on_sigusr1(home)
# A step that began an hour ago: far past the 300 s floor.
atomic_write_json(paths.status / "heartbeat.json", {"pid": os.getpid(), "phase": "step", "step": 41,
                  "at": time.time() - 3600, "recent_max_s": None})
print("stepping", flush=True)
threading.Event().wait()
'''
CRASHES_ONCE = '''
import sys
from pathlib import Path
home = Path(sys.argv[sys.argv.index("--home") + 1])
print("worker says hello", flush=True)
if not (home / "crashed-once").exists():
    (home / "crashed-once").write_text("")
    sys.exit(5)
'''
RUNS_UNTIL_TERM = '''
import signal, sys, threading
from pathlib import Path
home = Path(sys.argv[sys.argv.index("--home") + 1])
name = sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py")
def bye(*_):
    with open(home / "stopped.txt", "a") as f:
        f.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
(home / f"{name}.up").write_text("")
threading.Event().wait()
'''
IGNORES_TERM = '''
import signal, sys, threading
from pathlib import Path
home = Path(sys.argv[sys.argv.index("--home") + 1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
(home / "stubborn.up").write_text("")
threading.Event().wait()
'''
HELD_ELSEWHERE = '''
import sys
sys.exit(3)  # store.process.ALREADY_RUNNING: another daemon holds the realm
'''


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Writes each child module under a folder on this process's and the children's path."""
    where = tmp_path / "mods"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    paths = [str(where), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))

    def write(name: str, text: str) -> str:
        (where / f"{name}.py").write_text(text)
        return name
    return write


def finished(w: Weaver) -> bool:
    return all(not s._thread.is_alive() for s in w.services)


def events(ledger: Ledger, kind: str) -> list[dict]:
    return ledger.query("SELECT message, data FROM events WHERE kind = ? ORDER BY ts", [kind])


def test_a_crash_is_mended_a_hang_is_killed_a_clean_exit_is_left(realm_home, modules):
    ledger = Ledger(realm_home, "weaver")
    w = Weaver(realm_home, LOG, services=[("daemon", modules("realm_t_hangs_once", HANGS_ONCE)),
                                          ("worker", modules("realm_t_crashes_once", CRASHES_ONCE)),
                                          ("ghost", "realm_t_no_such_module")], ledger=ledger)
    assert [s.name for s in w.services] == ["daemon", "worker"] and w.missing == ["ghost"]
    assert [s.watch for s in w.services] == [True, False], "only the daemon's heartbeat is watched"
    assert w.services[1].argv == [sys.executable, "-m", "realm_t_crashes_once", "--home",
                                  str(realm_home.home)]
    w.start()
    wait_for(lambda: finished(w), 120, "both services to end cleanly after one mend each")
    daemon, worker = (s.status() for s in w.services)
    assert worker == {"name": "worker", "alive": False, "pid": None, "restarts": 1, "hangs": 0,
                      "last_exit": 0, "note": "stopped cleanly (exit 0); not restarted"}
    assert daemon["restarts"] == 1 and daemon["hangs"] == 1 and daemon["last_exit"] == 0
    assert w.status()[2] == {"name": "ghost", "alive": False, "pid": None, "restarts": 0,
                             "last_exit": None, "note": "not installed"}
    saved = read_status(realm_home, WEAVER)
    assert [s["name"] for s in saved["services"]] == ["daemon", "worker", "ghost"]
    mended = {m["service"]: m for m in saved["mended"]}
    assert mended["worker"]["exit"] == 5 and mended["worker"]["restart_in_s"] == 1.0
    assert mended["worker"]["note"] == "exited with 5; mended 1 time(s)"
    assert mended["daemon"]["exit"] == -signal.SIGKILL and "hang" not in mended["daemon"]
    assert mended["daemon"]["note"].startswith("hung at step 41 (")
    assert mended["daemon"]["note"].endswith(" s, bound 300 s); killed and restarted")
    hang = events(ledger, "hang")
    assert len(hang) == 1
    assert hang[0]["message"] == ("daemon hung at step 41: killed and restarted; it resumes from its "
                                  "last checkpoint")
    record = json.loads(hang[0]["data"])
    assert record["step"] == 41 and record["phase"] == "step" and record["service"] == "daemon"
    assert isinstance(record["pid"], int) and record["pid"] not in (os.getpid(), daemon["pid"])
    # bound_s: the wait less how late it was when seen (seconds pass between the two)
    assert 3500 < record["waited_s"] < 7200 and 300 <= record["bound_s"] < 400
    assert "Thread 0x" in record["stacks"] or "Current thread" in record["stacks"], record["stacks"]
    assert not list(realm_home.status.glob("stacks-*.txt")), "the stack dump is not left behind"
    assert sorted((e["message"], e["data"]) for e in events(ledger, "weaver_mended")) == [
        (f"daemon {mended['daemon']['note']}", str(-signal.SIGKILL)),
        ("worker exited with 5; mended 1 time(s)", "5")]
    assert "worker says hello" in (realm_home.logs / "worker.log").read_text()
    assert "stepping" in (realm_home.logs / "daemon.log").read_text()


def test_stopping_goes_in_order_and_kills_what_will_not_stop(realm_home, modules):
    home = realm_home.home
    first = modules("realm_t_first", RUNS_UNTIL_TERM)
    second = modules("realm_t_second", RUNS_UNTIL_TERM)
    w = Weaver(realm_home, LOG, services=[("daemon", first), ("taskmaster", second)])
    w.start()
    wait_for(lambda: (home / "realm_t_first.up").exists() and (home / "realm_t_second.up").exists(),
             60, "both children to start")
    alive = w.status()
    assert all(s["alive"] and s["pid"] == svc.proc.pid for s, svc in zip(alive, w.services, strict=True))
    before = signal.getsignal(signal.SIGINT)
    w.stop()
    assert signal.getsignal(signal.SIGINT) is before, "the second-Ctrl-C handler is put back"
    assert (home / "stopped.txt").read_text().split() == ["realm_t_first", "realm_t_second"]
    assert [s.last_exit for s in w.services] == [0, 0] and finished(w)
    assert [s["alive"] for s in read_status(realm_home, WEAVER)["services"]] == [False, False]
    w.stop()  # once only: a second stop is a no-op
    assert (home / "stopped.txt").read_text().split() == ["realm_t_first", "realm_t_second"]
    # A child that ignores SIGTERM is killed once its stop timeout passes.
    stubborn = Service("stubborn", [sys.executable, "-m", modules("realm_t_stubborn", IGNORES_TERM),
                                    "--home", str(home)], realm_home, LOG)
    stubborn.start()
    wait_for(lambda: (home / "stubborn.up").exists(), 60, "the stubborn child to start")
    stubborn.stop(timeout=0.5)
    assert stubborn.proc.returncode == -signal.SIGKILL and not stubborn.status()["alive"]


def test_a_realm_held_by_another_daemon_is_checked_again_later(realm_home, modules):
    seen = []
    s = Service("daemon", [sys.executable, "-m", modules("realm_t_held", HELD_ELSEWHERE), "--home",
                           str(realm_home.home)], realm_home, LOG,
                on_change=lambda service, mend: seen.append(mend))
    s.start()
    wait_for(lambda: any(seen), 60, "the exit to be reported")
    mend = next(m for m in seen if m)
    assert mend["exit"] == 3 and mend["restart_in_s"] == 30.0 and s.restarts == 0
    assert s.note == "another daemon holds this realm; checking again in 30 s"
    done = threading.Event()
    threading.Thread(target=lambda: (s.stop(), done.set()), daemon=True).start()
    assert done.wait(20), "stop() ends the 30 s wait at once"


def test_the_weaver_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("REALM_WEAVER", raising=False)
    assert weaver.enabled()
    for off in ("0", "false", "no"):
        monkeypatch.setenv("REALM_WEAVER", off)
        assert not weaver.enabled()
    monkeypatch.setenv("REALM_WEAVER", "1")
    assert weaver.enabled()
