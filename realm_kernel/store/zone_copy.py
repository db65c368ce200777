"""The copy of one checkpoint's weights onto a zone, done in a child process of the shipper
(`python -m realm_kernel.store.zone_copy`, one request as JSON on stdin, one reply as
JSON on stdout), and the zone file operations it needs (fingerprints, a rename).

Why a child: paramiko (fsspec's SFTP filesystem) frames, encrypts and hashes each 32 KiB
packet in Python, so a copy in a thread of the training process takes the GIL from the
training thread at every packet, whatever the thread's nice value. A child has its own
interpreter; it runs at the nice value the request names (the shipper's: 10 above the
process's), so on a busy machine it takes what the trainer leaves. It imports only fsspec
and this module (no ledger, no DuckDB), so its start-up is a small part of a copy; the
parent records the outcome in the ledger (one writer, as before).
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import json
import os
import subprocess
import sys
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


def copy_weights(fs, root: str, ckpt: Path, rel: str, zone: str, files: Sequence[str],
                 resume_state: Sequence[str]) -> str:
    """A file system copies `files` (the sidecar last) into `<name>.partial` and renames
    it; an object store writes the objects in place, sidecar last (a checkpoint without
    its sidecar is not complete, store/paths.checkpoint_complete), resuming a copy cut
    short: objects already there with the same bytes as ours, and no sidecar yet."""
    def keep(f: str) -> bool:  # the weights: all but the resume state at the top level
        return "/" in f or not any(fnmatch.fnmatch(f, g) for g in resume_state)

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


def copy_in_child(request: dict, nice: int) -> dict:
    """Runs one copy in a child process at `nice`; its reply ({"outcome", "pid", "nice"}).
    Raises ShipRefused, or CopyFailed naming the child's error."""
    request = {**request, "nice": nice, "conf": fsspec_conf(request["url"])}
    proc = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(request),
                          capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    reply = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    if reply is None:
        raise CopyFailed(f"the copy process exited {proc.returncode} without a reply: "
                         f"{proc.stderr.strip()[-1500:]}")
    if "refused" in reply:
        raise ShipRefused(reply["refused"])
    if "error" in reply:
        raise CopyFailed(reply["error"])
    return reply


def main() -> int:
    """The child: one request from stdin, one reply line on stdout."""
    import fsspec.config
    req = json.loads(sys.stdin.read())
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, max(os.getpriority(os.PRIO_PROCESS, 0),
                                                       int(req["nice"]))))
    except (AttributeError, OSError):  # not Linux, or not allowed: the default priority
        pass
    for proto, conf in req["conf"].items():
        fsspec.config.conf[proto] = conf
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
    print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
