"""The entry point every supervised realm process shares (`python -m realm_kernel.services.daemon`,
`python -m realm_kernel.services.taskmaster`): --home, logs on stdout (the Weaver's log file), and
exit code ALREADY_RUNNING when another instance holds the realm, which the Weaver reads
as "not mine to restart"."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ALREADY_RUNNING = 3


def pid_alive(pid: Any) -> bool:
    """Whether a process with this pid exists (a pid that is not a number: no)."""
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def stacks_file(paths: Any, pid: int) -> Path:
    """Where a supervised process dumps every thread's stack on SIGUSR1."""
    return paths.status / f"stacks-{pid}.txt"


def _dump_stacks_on_sigusr1(home: str | None) -> None:
    # faulthandler writes from the signal handler itself, so a thread stuck in C code
    # (a collective, a driver call) still shows; the Weaver's watchdog reads the file.
    import faulthandler
    import signal

    from .paths import RealmPaths
    paths = RealmPaths.at(home)
    paths.status.mkdir(parents=True, exist_ok=True)
    f = open(stacks_file(paths, os.getpid()), "w")  # noqa: SIM115 - open for the process' life
    faulthandler.register(signal.SIGUSR1, file=f, all_threads=True)
    f.truncate(0)


def service_main(argv: list[str] | None, description: str, name: str,
                 run: Callable[[str | None], None], already: type[Exception]) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--home", default=None, help="realm home (default: REALM_HOME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _dump_stacks_on_sigusr1(args.home)
    try:
        run(args.home)
    except already as e:
        print(f"realm {name}: {e}", file=sys.stderr)
        return ALREADY_RUNNING
    finally:
        from .paths import RealmPaths
        stacks_file(RealmPaths.at(args.home), os.getpid()).unlink(missing_ok=True)
    return 0


def take_instance_lock(path: Path, already: Callable[[str], Exception]) -> int:
    """Hold an exclusive flock on `path` for the life of this process (the kernel drops it
    when the process dies, even by kill -9) with our pid written in it; the fd to keep.
    Raises `already(holder_pid)` when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise already(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
