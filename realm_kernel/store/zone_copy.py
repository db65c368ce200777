"""The copy of one checkpoint's weights onto a zone, done in a child process of the shipper
(`python -m realm_kernel.store.zone_copy`: a request per line of JSON on its stdin, a
reply per line on its stdout), and the zone file operations it needs (fingerprints, a
rename).

Why a child: paramiko (fsspec's SFTP filesystem) frames, encrypts and hashes each 32 KiB
packet in Python, so a copy in a thread of the training process takes the GIL from the
training thread at every packet, whatever the thread's nice value. A child has its own
interpreter; it runs at the nice value the request names (the shipper's: 10 above the
process's), so on a busy machine it takes what the trainer leaves. It imports only fsspec
and this module (no ledger, no DuckDB) and lives as long as its parent (`Copier`), so
its start-up is paid once; the parent records each outcome in the ledger (one writer,
as before).
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from .paths import SIDECAR

OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


class ShipRefused(FileExistsError):
    """The zone already holds a different file under the checkpoint's name."""


class CopyFailed(OSError):
    """The copy process failed: the zone could not be reached, or the process died."""


def local_fs():
    import fsspec
    return fsspec.filesystem("file")


def open_zone(url: str, fresh: bool = False, **options: Any):
    """(fsspec filesystem, root path in it) for a zone URL or local folder. fsspec caches
    one instance per URL; `fresh` makes a new one (a connection that died with its server
    stays dead in the cached instance). `options` go to the filesystem (a timeout)."""
    import fsspec
    if "://" not in url:
        return fsspec.filesystem("file"), url.rstrip("/")
    if fresh:
        options["skip_instance_cache"] = True
    fs, root = fsspec.core.url_to_fs(url, **options)
    return fs, root.rstrip("/")


def move(fs, src: str, dst: str) -> None:
    """Rename a file or folder inside one zone. fsspec's SFTP `mv` is one posix rename and
    takes no `recursive`; the others need it for a folder (on an object store it is a
    server-side copy, then a delete: not atomic)."""
    if "recursive" in inspect.signature(fs.mv).parameters:
        fs.mv(src, dst, recursive=True)
    else:
        fs.mv(src, dst)


def fingerprint(fs, path: str, keep: Callable[[str], bool] = lambda rel: True,
                ) -> dict[str, tuple[int, str]]:
    """{relative file path: (bytes, sha256)} of a file or a folder, through fsspec (so a
    local copy and a zone's compare the same way); only the files `keep` accepts."""
    path = path.rstrip("/")
    files = {"": path} if fs.isfile(path) else {
        p[len(path):].lstrip("/"): p for p, info in fs.find(path, detail=True).items()
        if info.get("type") == "file" and keep(p[len(path):].lstrip("/"))}
    out = {}
    for rel, full in sorted(files.items()):
        h, n = hashlib.sha256(), 0
        with fs.open(full, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
        out[rel] = (n, h.hexdigest())
    return out


def object_store(fs) -> bool:
    """An object store has no rename: a "move" is a copy of every object."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return bool(set(protocols) & OBJECT_STORES)


def close(fs) -> None:
    """Close an SFTP filesystem's SSH connection: a fresh one per copy, so a NAS that
    restarted is met with a new connection, and none is left open behind (fsspec's SFTP
    filesystem has no close of its own)."""
    client = getattr(fs, "client", None) if "sftp" in getattr(fs, "protocol", ()) else None
    if client is not None:
        client.close()


def not_resume_state(rel: str, resume_state: Sequence[str]) -> bool:
    """Whether a checkpoint file (its path inside the checkpoint) is shipped: all but the
    resume state (files matching `resume_state`'s globs) at its top level."""
    return "/" in rel or not any(fnmatch.fnmatch(rel, g) for g in resume_state)


def copy_weights(fs, root: str, ckpt: Path, rel: str, zone: str, files: Sequence[str],
                 resume_state: Sequence[str]) -> str:
    """A file system copies `files` (the sidecar last) into `<name>.partial` and renames
    it; an object store writes the objects in place, sidecar last (a checkpoint without
    its sidecar is not complete, store/paths.checkpoint_complete), resuming a copy cut
    short: objects already there with the same bytes as ours, and no sidecar yet."""
    def keep(f: str) -> bool:
        return not_resume_state(f, resume_state)

    dest, part = f"{root}/{rel}", f"{root}/{rel}.partial"
    if fs.exists(dest):
        mine = fingerprint(local_fs(), str(ckpt), keep=keep)
        theirs = fingerprint(fs, dest, keep=keep)
        if theirs == mine:
            return "already there"
        cut_short = object_store(fs) and SIDECAR not in theirs and all(
            mine.get(f) == v for f, v in theirs.items())
        if not cut_short:
            raise ShipRefused(f"zone {zone!r} already holds a different {rel!r}; nothing was "
                              "overwritten (remove or rename it there first)")
    target = dest if object_store(fs) else part
    if target == part and fs.exists(part):  # a copy cut short (the process died): again
        fs.rm(part, recursive=True)
    fs.makedirs(target, exist_ok=True)
    for f in files:
        if "/" in f:
            fs.makedirs(f"{target}/{PurePosixPath(f).parent}", exist_ok=True)
        fs.put_file(str(ckpt / f), f"{target}/{f}")  # paramiko's pipelined put on SFTP
    if target == part:
        move(fs, part, dest)
    return "shipped"


def fsspec_conf(url: str) -> dict:
    """fsspec's own configuration of the zone's protocol in this process (FSSPEC_<PROTO>
    or fsspec.config.conf), for the child: it carries keys' file names or credentials,
    so it travels on stdin, never in argv."""
    import fsspec.config
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    return {k: v for k, v in fsspec.config.conf.items() if k == scheme}


class Copier:
    """One long-lived copy process, started at the first copy and again if it died or the
    nice value asked for changed (a process may raise its own nice value but not lower
    it): the interpreter's start-up and fsspec's and paramiko's imports are paid once,
    not at every checkpoint. Each copy still opens its own connection. The process reads
    one request per line and ends when its stdin closes, so it never outlives this one.
    It is started again when this process's environment changed (credentials such as
    AWS_* are read from it), as a child started then would see the new one."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._nice: int | None = None
        self._env: dict[str, str] = {}
        self._stderr: Any = None
        self._lock = threading.Lock()

    def copy(self, request: dict, nice: int) -> dict:
        """One copy in the child at `nice`; its reply ({"outcome", "pid", "nice"}).
        Raises ShipRefused, or CopyFailed naming the child's error."""
        request = {**request, "nice": nice, "conf": fsspec_conf(request["url"])}
        with self._lock:
            proc = self._ensure(nice)
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError:
                line = ""
            if not line.startswith("{"):  # it died (killed, out of memory): a new one next time
                self.close()
                raise CopyFailed(f"the copy process exited without a reply: {self._tail()}")
        reply = json.loads(line)
        if "refused" in reply:
            raise ShipRefused(reply["refused"])
        if "error" in reply:
            raise CopyFailed(reply["error"])
        return reply

    def _ensure(self, nice: int) -> subprocess.Popen:
        if self._proc is not None and (self._proc.poll() is not None or self._nice != nice
                                       or self._env != dict(os.environ)):
            self.close()
        if self._proc is None:
            self._stderr = tempfile.TemporaryFile()
            self._proc = subprocess.Popen([sys.executable, "-m", __name__], text=True,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr)
            self._nice, self._env = nice, dict(os.environ)
        return self._proc

    def _tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-1500:]

    def close(self) -> None:
        """End the child (its stdin closed: it exits after the copy in progress)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# The process's copier: copies to any zone go through it one at a time.
COPIER = Copier()


def serve() -> None:
    """The child: one request per line on stdin, one reply line on stdout each."""
    import fsspec.config
    reniced = False
    for line in sys.stdin:
        req = json.loads(line)
        if not reniced:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, min(19, max(os.getpriority(os.PRIO_PROCESS, 0),
                                                               int(req["nice"]))))
            except (AttributeError, OSError):  # not Linux, or not allowed: the default
                pass
            reniced = True
        for proto, conf in req["conf"].items():
            fsspec.config.conf[proto] = conf
        print(json.dumps(copy_one(req)), flush=True)


def copy_one(req: dict) -> dict:
    reply: dict[str, Any] = {"pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0)}
    try:
        fs, root = open_zone(req["url"], fresh=True, **req["options"])
        try:
            reply["outcome"] = copy_weights(fs, root, Path(req["ckpt"]), req["rel"], req["zone"],
                                            req["files"], req["resume_state"])
        finally:
            close(fs)
    except ShipRefused as e:
        reply["refused"] = str(e)
    except Exception as e:  # the zone is down, or the network, or the NAS is full
        reply["error"] = f"{type(e).__name__}: {e}"
    return reply


if __name__ == "__main__":
    serve()
