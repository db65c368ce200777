"""The Weaver: starts the training daemon as a child process, restarts it with
backoff when it dies, and stops it when the Jupyter server shuts down. Training never
runs inside the Jupyter server process."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ..paths import RealmPaths

ALREADY_RUNNING = 3  # daemon exit code when another daemon holds the realm


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the server dies, even by kill -9.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Thread:
    """One supervised child process (a thread of the tapestry)."""

    def __init__(self, name: str, argv: list[str], paths: RealmPaths,
                 log: logging.Logger, max_backoff: float = 30.0) -> None:
        self.name, self.argv, self.paths, self.log = name, argv, paths, log
        self.max_backoff = max_backoff
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
    def __init__(self, paths: RealmPaths, log: logging.Logger) -> None:
        self.threads = [Thread("daemon", [sys.executable, "-m", "realm_kernel.daemon",
                                          "--home", str(paths.home)], paths, log)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        for t in self.threads:
            t.stop()

    def status(self) -> list[dict]:
        return [t.status() for t in self.threads]


def enabled() -> bool:
    return os.environ.get("REALM_WEAVER", "1") not in ("0", "false", "no")



