"""Bounded logs: logs/<name>.log rotated by size, at most `files` files of max_bytes/files
each (`[logs] max_mb`, `files`), so a realm left running for weeks keeps a fixed total.

The Weaver pumps each child's output through a RotatingLog; `python -m
realm_kernel.store.logs PATH [MAX_MB FILES]` does the same for a stream on stdin (the
detached `realm up` pipes JupyterLab's output through it)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import IO


class RotatingLog:
    """Append-only log file rotated at a size: name.log -> name.log.1 -> ... -> dropped."""

    def __init__(self, path: Path, max_bytes: int = 64 << 20, files: int = 4) -> None:
        self.path, self.files = Path(path), max(2, files)
        self.part_bytes = max(4096, max_bytes // self.files)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "ab")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._f.tell() + len(data) > self.part_bytes and self._f.tell() > 0:
                self._rotate()
            self._f.write(data)
            self._f.flush()

    def _rotate(self) -> None:
        self._f.close()
        for i in range(self.files - 1, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        self._f = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        with self._lock:
            self._f.close()


def pump(stream: IO[bytes], log: RotatingLog) -> None:
    """Copy a stream into the log, line by line, until EOF (the child exited)."""
    try:
        for line in iter(stream.readline, b""):
            log.write(line)
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def log_files(path: Path) -> list[Path]:
    """The log and its rotated parts, newest first."""
    return [p for p in [path, *sorted(path.parent.glob(f"{path.name}.*"),
                                      key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)]
            if p.exists()]


if __name__ == "__main__":  # python -m realm_kernel.store.logs PATH [MAX_MB FILES]
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # drain to EOF: the writer's exit ends us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args = sys.argv[1:]
    max_mb = float(args[1]) if len(args) > 1 else 64.0
    pump(sys.stdin.buffer, RotatingLog(Path(args[0]), int(max_mb * (1 << 20)),
                                       int(args[2]) if len(args) > 2 else 4))
