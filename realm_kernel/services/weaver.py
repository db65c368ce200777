"""The Weaver: starts the realm's long-running children (the threads of the tapestry),
restarts each with backoff when it dies, and stops them when the Jupyter server shuts
down. Training never runs inside the Jupyter server process.

The threads are data: THREADS lists (name, module) pairs, so the task master (issue 7)
joins with one entry, ("taskmaster", "realm_kernel.services.taskmaster"), once that module exists;
a thread whose module is not importable is listed as "not installed", not spawned. Every
start, death and mend is written to status/weaver.json (what `realm status` and
/realm/api/health show) and to the ledger's events.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ..store.paths import RealmPaths
from ..store.process import ALREADY_RUNNING
from ..store.status import WEAVER, write_status

MENDED_KEPT = 50

# name -> module run as `python -m module --home HOME`.
THREADS: list[tuple[str, str]] = [
    ("daemon", "realm_kernel.services.daemon"),
    ("taskmaster", "realm_kernel.services.taskmaster"),
]


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the server dies, even by kill -9.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Thread:
    """One supervised child process (a thread of the tapestry)."""

    def __init__(self, name: str, argv: list[str], paths: RealmPaths,
                 log: logging.Logger, max_backoff: float = 30.0,
                 on_change=lambda thread, what: None) -> None:
        self.name, self.argv, self.paths, self.log = name, argv, paths, log
        self.max_backoff = max_backoff
        self.on_change = on_change
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self.note = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"weaver-{name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        logfile = open(self.paths.logs / f"{self.name}.log", "ab")  # noqa: SIM115
        try:
            return subprocess.Popen(self.argv, stdout=logfile, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                    env={**os.environ, "REALM_HOME": str(self.paths.home)})
        finally:
            logfile.close()

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            self.proc = self._spawn()
            self.log.info("weaver: %s started (pid %d)", self.name, self.proc.pid)
            self.on_change(self, None)
            code = self.proc.wait()
            self.last_exit = code
            if self._stop.is_set():
                break
            if code == ALREADY_RUNNING:
                self.note = "another daemon holds this realm; checking again in 30 s"
                wait = 30.0
            else:
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it ran a good while: a fresh fault, not a crash loop
                self.restarts += 1
                self.note = f"exited with {code}; mended {self.restarts} time(s)"
                wait, backoff = backoff, min(backoff * 2, self.max_backoff)
            self.log.warning("weaver: %s %s; restarting in %.0f s", self.name, self.note, wait)
            self.on_change(self, {"thread": self.name, "exit": code, "at": time.time(),
                                  "restart_in_s": wait, "note": self.note})
            self._stop.wait(wait)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        proc = self.proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout=2)

    def status(self) -> dict:
        alive = self.proc is not None and self.proc.poll() is None
        return {"name": self.name, "alive": alive, "pid": self.proc.pid if alive else None,
                "restarts": self.restarts, "last_exit": self.last_exit, "note": self.note}


class Weaver:
    def __init__(self, paths: RealmPaths, log: logging.Logger,
                 threads: list[tuple[str, str]] | None = None, ledger=None) -> None:
        self.paths, self.log, self.ledger = paths, log, ledger
        self.mended: list[dict] = []
        self.missing: list[str] = []
        self.threads: list[Thread] = []
        self._lock = threading.Lock()
        for name, module in threads if threads is not None else THREADS:
            if importlib.util.find_spec(module) is None:
                self.missing.append(name)
                continue
            self.threads.append(Thread(name, [sys.executable, "-m", module, "--home",
                                              str(paths.home)], paths, log,
                                       on_change=self._changed))

    def _changed(self, thread: Thread, mend: dict | None) -> None:
        with self._lock:
            if mend:
                self.mended = [*self.mended, mend][-MENDED_KEPT:]
            self.write()
        if mend and self.ledger is not None:
            try:
                self.ledger.event("weaver_mended", f"{thread.name} {mend['note']}",
                                  str(mend["exit"]))
            except Exception:  # a full disk must not stop the mending itself
                self.log.exception("weaver: could not record the mend")

    def write(self) -> None:
        write_status(self.paths, WEAVER, pid=os.getpid(), threads=self.status(),
                     mended=self.mended)

    def start(self) -> None:
        for t in self.threads:
            t.start()
        self.write()

    def stop(self) -> None:
        for t in self.threads:
            t.stop()
        with self._lock:
            self.write()

    def status(self) -> list[dict]:
        return [t.status() for t in self.threads] + [
            {"name": n, "alive": False, "pid": None, "restarts": 0, "last_exit": None,
             "note": "not installed"} for n in self.missing]


def enabled() -> bool:
    return os.environ.get("REALM_WEAVER", "1") not in ("0", "false", "no")



