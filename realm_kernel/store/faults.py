"""Fault-injection hooks for the reliability suite (tests/reliability/, bench/soak.py).

Off unless the environment asks; read here and nowhere else:

  REALM_FAULT_PAUSE=<point>[@<n>]   the n-th time (default 1st) a thread reaches the named
                                    point, it writes status/fault.json ({"point", "hit",
                                    "pid"}) and blocks there for good, so a test can
                                    `kill -9` the process exactly at that point.
  REALM_FAULT=enospc_on_save[@<n>]  checkpoint writes fail with ENOSPC ("No space left
                                    on device") from the n-th on (default: all), as on a
                                    disk that fills up.
  REALM_FAULT=hang_step@<n>         the n-th training step of a process blocks for good
                                    (a stuck collective or data worker), once per realm
                                    home: status/.fault-hang_step-<n> marks it spent, so
                                    the daemon the watchdog restarts trains on.
  REALM_FAULT=oom:<phase>@<step>[:<rows>]
                                    from local training step <step> on, a micro-batch of
                                    more than <rows> rows (default 0: any) raises a real
                                    torch.cuda.OutOfMemoryError in <phase>: forward,
                                    backward, optimizer or eval (the held-out pass), as a
                                    card that fits only <rows> rows would; or generate (an
                                    eval's or probe's answer batch, oracle/answering.py),
                                    where <step> counts the process's answer batches,
                                    retries included.
  REALM_FAULT=nan@<step>            the loss of local training step <step> is NaN (a bad
                                    batch), each time that step's batch is trained on.

Points (a point named "a" also matches hits named "a:<detail>"):
  step                 a training step ended (before the controls are read)
  checkpoint_write     the weights of a checkpoint are written, its optimizer state is not
  checkpoint_publish   a complete checkpoint (sidecar written) is about to be renamed in
  checkpoint_ledger    a checkpoint is published, its ledger row not yet written
  queue_move[:<dir>]   a quest file was renamed into queue/<dir>, its ledger row not yet written
  ledger_write         a ledger segment is written under its temp name, not yet renamed
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

PAUSE_ENV = "REALM_FAULT_PAUSE"
FAULT_ENV = "REALM_FAULT"
POINTS = ("step", "checkpoint_write", "checkpoint_publish", "checkpoint_ledger", "queue_move",
          "ledger_write")
ENOSPC_ON_SAVE = "enospc_on_save"
HANG_STEP = "hang_step"
OOM = "oom"
NAN = "nan"
OOM_PHASES = ("forward", "backward", "optimizer", "eval", "generate")

_hits: dict[str, int] = {}
_lock = threading.Lock()


def _pause_spec() -> tuple[str, int] | None:
    spec = os.environ.get(PAUSE_ENV, "").strip()
    if not spec:
        return None
    point, _, n = spec.partition("@")
    return point, int(n) if n.isdigit() else 1


def point(name: str, home: Path | None = None) -> None:
    """A named fault point. Free when no fault is configured (one dict lookup)."""
    spec = _pause_spec()
    if spec is not None and (name == spec[0] or name.startswith(spec[0] + ":")):
        with _lock:
            _hits[spec[0]] = hit = _hits.get(spec[0], 0) + 1
        if hit == spec[1]:
            _announce_and_block(name, hit, home)
    fault, _, nth = os.environ.get(FAULT_ENV, "").partition("@")
    if name == "step" and fault == HANG_STEP:
        _maybe_hang(int(nth) if nth.isdigit() else 1, home)
    if name.startswith("checkpoint_write") and fault == ENOSPC_ON_SAVE:
        with _lock:
            _hits[fault] = hit = _hits.get(fault, 0) + 1
        if hit >= (int(nth) if nth.isdigit() else 1):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} "
                                        f"(simulated: {FAULT_ENV}={ENOSPC_ON_SAVE})")


def _announce_and_block(name: str, hit: int, home: Path | None) -> None:
    from .paths import RealmPaths
    status = RealmPaths.at(home).status
    status.mkdir(parents=True, exist_ok=True)
    # Plain write + rename (not atomic_write_json: the ledger_write point may be inside it).
    tmp = status / f".fault.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"point": name, "hit": hit, "pid": os.getpid(), "ts": time.time()}))
    os.replace(tmp, status / "fault.json")
    while True:  # until the test's kill -9
        time.sleep(3600)


def _maybe_hang(nth: int, home: Path | None) -> None:
    with _lock:
        _hits[HANG_STEP] = hit = _hits.get(HANG_STEP, 0) + 1
    if hit != nth:
        return
    from .paths import RealmPaths
    status = RealmPaths.at(home).status
    marker = status / f".fault-{HANG_STEP}-{nth}"
    try:
        status.mkdir(parents=True, exist_ok=True)
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # once per home
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    while True:  # hung, until the watchdog's kill
        time.sleep(3600)


def out_of_memory(phase: str, step: int, rows: int) -> None:
    """REALM_FAULT=oom:<phase>@<step>[:<rows>]: raises torch.cuda.OutOfMemoryError when
    this phase of this step runs a micro-batch of more rows than the simulated card fits."""
    fault, _, spec = os.environ.get(FAULT_ENV, "").partition(":")
    if fault != OOM:
        return
    want, _, rest = spec.partition("@")
    at, _, fits = rest.partition(":")
    if want == phase and step >= int(at or 1) and rows > int(fits or 0):
        import torch  # only a faulted run pays for it here
        raise torch.cuda.OutOfMemoryError(
            f"CUDA out of memory in the {phase} of step {step} with {rows} rows "
            f"(simulated: {FAULT_ENV}={os.environ[FAULT_ENV]})")


def nan_step(step: int) -> bool:
    """REALM_FAULT=nan@<step>: True when this local step's loss is to be NaN."""
    fault, _, at = os.environ.get(FAULT_ENV, "").partition("@")
    return fault == NAN and at.isdigit() and int(at) == step


def is_disk_full(exc: BaseException | None) -> bool:
    """True when an exception (or one it was raised from) means the disk is full."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
