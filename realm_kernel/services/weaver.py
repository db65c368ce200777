"""The Weaver: starts the realm's supervised services (its long-running child processes),
restarts each with backoff when it dies, and stops them when the Jupyter server shuts
down. Training never runs inside the Jupyter server process.

The services are data: SERVICES lists (name, module) pairs (called services, not threads:
train/threads.py's threads are CPU threads), so a new one joins with one entry;
a service whose module is not importable is listed as "not installed", not spawned. Every
start, death and mend is written to status/weaver.json (what `realm status` and
/realm/api/health show) and to the ledger's events.

Days unattended (docs/reliability.md):
- each child runs in its own session, so Ctrl-C in the terminal reaches only the Weaver's
  process, which stops the children once, in order (the daemon first, at a step boundary
  with a checkpoint, then the Task Master); a child that exits cleanly (0, or by SIGINT /
  SIGTERM from someone else) is stopped, not mended; a crash is restarted with backoff;
- the daemon's heartbeat (store/heartbeat.py) is watched: a step far slower than the
  recent ones is a hang: the stacks of every thread are dumped (faulthandler, SIGUSR1),
  recorded as a `hang` event, the daemon killed and restarted, and its quest resumes
  from its last checkpoint;
- each child's output goes through a size-rotated log (store/logs.py).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ..store.config import RealmConfig, load_config
from ..store.heartbeat import overdue, read_beat
from ..store.logs import RotatingLog, pump
from ..store.paths import RealmPaths
from ..store.process import ALREADY_RUNNING, stacks_file
from ..store.status import WEAVER, write_status

MENDED_KEPT = 50

CLEAN_EXITS = (0, -signal.SIGINT, -signal.SIGTERM)  # asked to stop: not a crash
WATCHED = {"daemon"}  # services whose heartbeat the hang watchdog reads

# name -> module run as `python -m module --home HOME`, stopped in this order.
SERVICES: list[tuple[str, str]] = [
    ("daemon", "realm_kernel.services.daemon"),
    ("taskmaster", "realm_kernel.services.taskmaster"),
]


def _config(paths: RealmPaths) -> RealmConfig:
    try:
        return load_config(paths.home)
    except Exception:  # a bad realm.toml must not stop the supervision (the daemon says why)
        return RealmConfig()


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the server dies, even by kill -9.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Service:
    """One supervised child process."""

    def __init__(self, name: str, argv: list[str], paths: RealmPaths,
                 log: logging.Logger, max_backoff: float = 30.0,
                 on_change=lambda service, what: None, watch: bool = False) -> None:
        self.name, self.argv, self.paths, self.log = name, argv, paths, log
        self.max_backoff = max_backoff
        self.on_change = on_change
        self.watch = watch
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.hangs = 0
        self.last_exit: int | None = None
        self.note = ""
        self.config = _config(paths)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"weaver-{name}",
                                        daemon=True)
        self._log = RotatingLog(paths.logs / f"{name}.log",
                                int(self.config.logs.max_mb * (1 << 20)), self.config.logs.files)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        # Its own session: a terminal's Ctrl-C reaches the Weaver, which stops it in order.
        proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                start_new_session=True,
                                env={**os.environ, "REALM_HOME": str(self.paths.home)})
        threading.Thread(target=pump, args=(proc.stdout, self._log), daemon=True,
                         name=f"weaver-{self.name}-log").start()
        return proc

    def _wait(self, proc: subprocess.Popen) -> tuple[int, dict | None]:
        """Wait for the child to exit; with a watchdog, kill it when its step hangs.
        Returns (exit code, the hang's record or None)."""
        if not self.watch:
            return proc.wait(), None
        while True:
            try:
                return proc.wait(timeout=1.0), None
            except subprocess.TimeoutExpired:
                pass
            if self._stop.is_set():
                continue  # stop() is ending it
            d = self.config.daemon
            beat = read_beat(self.paths)
            late = overdue(beat, proc.pid, d.hang_factor, d.hang_floor_s, d.hang_save_floor_s)
            if late is not None:
                return self._kill_hung(proc, beat, late)

    def _kill_hung(self, proc: subprocess.Popen, beat: dict, late: float) -> tuple[int, dict]:
        stacks = stacks_file(self.paths, proc.pid)  # created empty when the child started
        try:
            os.kill(proc.pid, signal.SIGUSR1)  # faulthandler: every thread's stack
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (stacks.exists() and stacks.stat().st_size):
            time.sleep(0.1)
        time.sleep(0.3)  # let the dump finish
        text = stacks.read_text(errors="replace") if stacks.exists() else "(no stack dump)"
        proc.kill()
        code = proc.wait()
        stacks.unlink(missing_ok=True)
        self.hangs += 1
        waited = time.time() - float(beat.get("at", 0))
        record = {"service": self.name, "pid": proc.pid, "step": beat.get("step"),
                  "phase": beat.get("phase"), "waited_s": round(waited, 1),
                  "bound_s": round(waited - late, 1), "recent_max_s": beat.get("recent_max_s"),
                  "stacks": text[-60000:]}
        self.log.error("weaver: %s hung at step %s (%.0f s in %s; bound %.0f s); killed",
                       self.name, beat.get("step"), waited, beat.get("phase"), waited - late)
        return code, record

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            self.config = _config(self.paths)
            self.proc = self._spawn()
            self.log.info("weaver: %s started (pid %d)", self.name, self.proc.pid)
            self.on_change(self, None)
            code, hang = self._wait(self.proc)
            self.last_exit = code
            if self._stop.is_set():
                break
            if hang is not None:
                self.restarts += 1
                self.note = (f"hung at step {hang['step']} ({hang['waited_s']:.0f} s, bound "
                             f"{hang['bound_s']:.0f} s); killed and restarted")
                wait = 1.0
            elif code in CLEAN_EXITS:
                self.note = f"stopped cleanly (exit {code}); not restarted"
                self.log.info("weaver: %s %s", self.name, self.note)
                self.on_change(self, None)
                break
            elif code == ALREADY_RUNNING:
                self.note = "another daemon holds this realm; checking again in 30 s"
                wait = 30.0
            else:
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it ran a good while: a fresh fault, not a crash loop
                self.restarts += 1
                self.note = f"exited with {code}; mended {self.restarts} time(s)"
                wait, backoff = backoff, min(backoff * 2, self.max_backoff)
            self.log.warning("weaver: %s %s; restarting in %.0f s", self.name, self.note, wait)
            self.on_change(self, {"service": self.name, "exit": code, "at": time.time(),
                                  "restart_in_s": wait, "note": self.note, "hang": hang})
            self._stop.wait(wait)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then wait: the daemon stops at a step boundary and saves first."""
        self._stop.set()
        timeout = timeout if timeout is not None else (
            self.config.daemon.stop_timeout_s if self.watch else 30.0)
        proc = self.proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.log.warning("weaver: %s did not stop in %.0f s; killing it", self.name, timeout)
                proc.kill()
                proc.wait()
        self._thread.join(timeout=5)

    def status(self) -> dict:
        alive = self.proc is not None and self.proc.poll() is None
        return {"name": self.name, "alive": alive, "pid": self.proc.pid if alive else None,
                "restarts": self.restarts, "hangs": self.hangs, "last_exit": self.last_exit,
                "note": self.note}


class Weaver:
    def __init__(self, paths: RealmPaths, log: logging.Logger,
                 services: list[tuple[str, str]] | None = None, ledger=None) -> None:
        self.paths, self.log, self.ledger = paths, log, ledger
        self.mended: list[dict] = []
        self.missing: list[str] = []
        self.services: list[Service] = []
        self._lock = threading.Lock()
        self._stopped = False
        for name, module in services if services is not None else SERVICES:
            if importlib.util.find_spec(module) is None:
                self.missing.append(name)
                continue
            self.services.append(Service(name, [sys.executable, "-m", module, "--home",
                                                str(paths.home)], paths, log,
                                         on_change=self._changed, watch=name in WATCHED))

    def _changed(self, service: Service, mend: dict | None) -> None:
        hang = mend.pop("hang", None) if mend else None  # its stacks go to the ledger only
        with self._lock:
            if mend:
                self.mended = [*self.mended, mend][-MENDED_KEPT:]
            self.write()
        if mend and self.ledger is not None:
            try:
                if hang:
                    self.ledger.event("hang", f"{service.name} hung at step {hang['step']}: "
                                      "killed and restarted; it resumes from its last "
                                      "checkpoint", json.dumps(hang))
                self.ledger.event("weaver_mended", f"{service.name} {mend['note']}",
                                  str(mend["exit"]))
            except Exception:  # a full disk must not stop the mending itself
                self.log.exception("weaver: could not record the mend")

    def write(self) -> None:
        write_status(self.paths, WEAVER, pid=os.getpid(), services=self.status(),
                     mended=self.mended)

    def start(self) -> None:
        for s in self.services:
            s.start()
        self.write()

    def stop(self) -> None:
        """Once, in SERVICES order: the daemon (step boundary, checkpoint), then the rest.
        A second Ctrl-C meanwhile (JupyterLab's shutdown runs this in the main thread)
        says so instead of breaking off with the Task Master still running; each child's
        stop is bounded by its timeout, then it is killed."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._still_stopping)
        try:
            for s in self.services:
                s.stop()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        with self._lock:
            self.write()

    def _still_stopping(self, _signum, _frame) -> None:
        self.log.warning("still stopping: the daemon finishes its step and saves a checkpoint "
                         "first (at most [daemon] stop_timeout_s), then the Task Master")

    def status(self) -> list[dict]:
        return [s.status() for s in self.services] + [
            {"name": n, "alive": False, "pid": None, "restarts": 0, "last_exit": None,
             "note": "not installed"} for n in self.missing]


def enabled() -> bool:
    return os.environ.get("REALM_WEAVER", "1") not in ("0", "false", "no")



