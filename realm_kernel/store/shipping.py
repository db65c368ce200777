"""Shipping checkpoints to the shared zone: each published checkpoint is copied,
weights-only, to the zone `[vault] ship_to` names (a NAS over SFTP, an S3 bucket, a mounted
folder), in a background thread of the process that saved it, and recorded in the vault
catalogue with that zone.

A `Shipper` is one daemon thread with a queue. `submit(step)` (called on the training
thread right after a checkpoint is published) only records the checkpoint as "pending"
for the zone and wakes the thread: a step never waits for a copy, a slow zone or a dead
one. The thread copies the checkpoint's files but its resume state (optimizer,
scheduler, scaler, RNG: only the newest local checkpoint needs them, and they are 2/3 of
it), sidecar last, into `<name>.partial` on the zone, then renames it into place, so a
reader of the zone never sees half a checkpoint (an object store, which has no rename,
gets the objects in place with the sidecar last: without it a checkpoint is not
complete). A zone that cannot be reached leaves the checkpoint local ("pending" rows are
what retention keeps, store/vault.py), records one `zone_unreachable` event per outage,
and is retried with a doubling back-off; after a restart the pending rows are picked up
again. A zone already holding a different checkpoint of that name is never overwritten:
the copy is refused and recorded (`ship_refused`). After each copy the zone's own
retention policy (`[vault.retention.<zone>]`) runs there.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from .checkpoints import RESUME_STATE, CheckpointLedger
from .config import RealmConfig, VaultConfig
from .ledger import Ledger
from .paths import SIDECAR, RealmPaths
from .vault import AWAITING_SHIPPING, LOCAL, VaultKeeper, move
from .zone_copy import COPIER, ShipRefused, close, not_resume_state

__all__ = ["ShipRefused", "Shipper", "ship_checkpoint", "shipped_files", "weights_only"]

log = logging.getLogger("realm.shipping")

# A connection to a zone that does not answer gives up after this long (SFTP), so the
# thread comes back to retry instead of hanging on a dead NAS.
CONNECT_TIMEOUT_S = 20.0


def weights_only(rel: str) -> bool:
    """Whether a checkpoint file (its path inside the checkpoint) is shipped: all but the
    resume state at its top level."""
    return not_resume_state(rel, RESUME_STATE)


def shipped_files(ckpt: Path) -> list[str]:
    """The checkpoint's files to copy, relative to it, its sidecar last (as the engine
    writes it: a checkpoint is complete only once the sidecar is there)."""
    files = sorted(p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*") if p.is_file())
    files = [f for f in files if weights_only(f)]
    return [f for f in files if f != SIDECAR] + ([SIDECAR] if SIDECAR in files else [])


def connect_options(url: str) -> dict[str, Any]:
    """Options for the zone's filesystem: a connect timeout where the protocol takes one."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    return {"timeout": CONNECT_TIMEOUT_S, "banner_timeout": CONNECT_TIMEOUT_S} if scheme in (
        "sftp", "ssh") else {}


def ship_checkpoint(vault: VaultKeeper, step: int, zone: str) -> str:
    """Copy checkpoint `step` to `zone`, weights-only, and record it there. Returns
    "shipped", "already there" (the same bytes were there) or "gone" (deleted locally
    before it could be shipped); raises ShipRefused for a different file in the way and
    anything else (OSError, the protocol's errors) when the zone cannot be reached."""
    rec = CheckpointLedger(vault.ledger).get(step)
    ckpt = Path(rec.path) if rec else None
    if ckpt is None or not ckpt.is_dir():
        vault.record(f"checkpoint_{step}", "checkpoint", rec.name if rec else f"step {step}",
                     zone, "", None, step, status="deleted",
                     detail={"by": "shipping", "why": "deleted locally before it was shipped"})
        return "gone"
    rel = ckpt.relative_to(vault.paths.home).as_posix()
    files = shipped_files(ckpt)
    url = vault.zone_url(zone)
    reply = COPIER.copy({"url": url, "options": connect_options(url), "ckpt": str(ckpt),
                           "rel": rel, "zone": zone, "files": files,
                           "resume_state": list(RESUME_STATE)}, nice=shipper_nice())
    nbytes = sum((ckpt / f).stat().st_size for f in files)
    vault.record(f"checkpoint_{step}", "checkpoint", ckpt.name, zone, rel, nbytes, step,
                 detail={"shipped_from": LOCAL,
                         "copier": {"pid": reply["pid"], "nice": reply["nice"]}})
    return reply["outcome"]


def prune_zone(vault: VaultKeeper, zone: str, config: VaultConfig) -> list[int]:
    """Apply the zone's own retention policy to its checkpoints; the steps removed."""
    policy = config.retention.get(zone)
    if policy is None or not policy.auto:
        return []
    plan = vault.retention_plan(policy, zone=zone)
    if not plan["delete"]:
        return []
    fs, root = vault.zone_fs(zone, fresh=True, **connect_options(vault.zone_url(zone)))
    try:
        removed = _prune(vault, fs, root, zone, plan["delete"])
    finally:
        close(fs)
    if removed:
        vault.ledger.event("retention", f"Retention removed {len(removed)} checkpoint(s) "
                           f"from zone {zone}", json.dumps({"zone": zone, "steps": removed}))
    return removed


def _prune(vault: VaultKeeper, fs, root: str, zone: str, delete: list[dict]) -> list[int]:
    protected = vault.protected_steps(retention=True)  # asked again: the battle moves on
    removed = []
    for d in delete:
        if d["step"] in protected:
            continue
        name = PurePosixPath(d["path"]).name
        # Rename first, as locally: a checkpoint on the zone is whole or gone.
        trash = f"{root}/{PurePosixPath(d['path']).parent}/.deleting-{name}"
        if fs.exists(f"{root}/{d['path']}"):
            move(fs, f"{root}/{d['path']}", trash)
            fs.rm(trash, recursive=True)
        vault.record(f"checkpoint_{d['step']}", "checkpoint", name, zone, d["path"], d["bytes"],
                     d["step"], status="deleted", detail={"by": "zone retention"})
        removed.append(d["step"])
    return removed


# The shipper thread's nice value: on a machine whose cores training keeps busy, the copy
# (SSH encryption, hashing) takes what the trainer leaves rather than a share of its time.
SHIPPER_NICE = 10


def shipper_nice() -> int:
    """SHIPPER_NICE above the process's own nice value (its main thread's), at most 19."""
    try:
        return min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + SHIPPER_NICE)
    except AttributeError:  # not Unix
        return SHIPPER_NICE


def lower_priority() -> None:
    """Give the calling thread the shipper's nice value (Linux schedules each thread on
    its own, so the training thread keeps its priority); elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), shipper_nice())
    except (AttributeError, OSError):  # not Linux, or not allowed: the default priority
        pass


class Shipper:
    """The background thread that ships checkpoints to `[vault] ship_to`."""

    def __init__(self, paths: RealmPaths, ledger: Ledger, config: RealmConfig) -> None:
        self.paths, self.ledger, self.config = paths, ledger, config.vault
        self.zone = self.config.ship_to
        self.vault = VaultKeeper(paths, ledger, config)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._down_since: str | None = None  # the error of the outage in progress
        self._thread = threading.Thread(target=self._run, name="realm-shipper", daemon=True)

    @classmethod
    def start(cls, paths: RealmPaths, ledger: Ledger, config: RealmConfig) -> Shipper | None:
        """A running shipper when `[vault] ship_to` names a zone, else None. A zone the
        vault does not know is an error event, not a crash: the daemon trains on."""
        if not config.vault.ship_to:
            return None
        shipper = cls(paths, ledger, config)
        try:
            shipper.vault.zone(shipper.zone)
        except LookupError as e:
            ledger.event("zone_unreachable", f"[vault] ship_to: {e}; nothing is shipped",
                         json.dumps({"zone": shipper.zone, "error": str(e)}))
            return None
        shipper._thread.start()
        return shipper

    def submit(self, step: int, path: Path) -> None:
        """Queue a just-published checkpoint (one ledger row; the copy happens later)."""
        rel = path.relative_to(self.paths.home).as_posix()
        self.vault.record(f"checkpoint_{step}", "checkpoint", path.name, self.zone, rel, None,
                          step, status="pending")
        self._wake.set()

    def pending(self) -> list[int]:
        return sorted(int(r["step"]) for r in self.ledger.query(AWAITING_SHIPPING)
                      if r["zone"] == self.zone)

    def stop(self) -> None:
        """Stop after the copy in progress (never waited for by the daemon's exit: a
        copy cut short is done again from its pending row at the next start)."""
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        lower_priority()
        delay = self.config.ship_retry_s
        while not self._stop.is_set():
            ok = self.ship_pending()
            delay = self.config.ship_retry_s if ok else min(delay * 2, self.config.ship_retry_max_s)
            # Nothing failed: sleep until the next submit; a failure: retry after `delay`.
            self._wake.wait(None if ok else delay)
            self._wake.clear()

    def ship_pending(self) -> bool:
        """One pass over the pending checkpoints, oldest first; False when the zone could
        not be reached (the rest stay pending for the next try)."""
        for step in self.pending():
            if self._stop.is_set():
                return True
            try:
                outcome = ship_checkpoint(self.vault, step, self.zone)
            except ShipRefused as e:
                self.vault.record(f"checkpoint_{step}", "checkpoint", f"step {step}", self.zone,
                                  "", None, step, status="refused", detail={"why": str(e)})
                self.ledger.event("ship_refused", str(e),
                                  json.dumps({"zone": self.zone, "step": step}))
                continue
            except Exception as e:  # the zone is down, or the network, or the NAS is full
                self._unreachable(step, e)
                return False
            self._reachable()
            log.info("checkpoint at step %d %s on zone %s", step, outcome, self.zone)
            try:
                prune_zone(self.vault, self.zone, self.config)
            except Exception as e:  # a failed prune is retried after the next copy
                self.ledger.event("checkpoint_tidy_failed",
                                  f"retention on zone {self.zone} failed: {type(e).__name__}: {e}")
        return True

    def _unreachable(self, step: int, e: Exception) -> None:
        error = f"{type(e).__name__}: {e}"
        log.warning("zone %s unreachable: %s", self.zone, error)
        if self._down_since is None:  # one event per outage, not one per retry
            self._down_since = error
            self.ledger.event("zone_unreachable", (
                f"Zone {self.zone} unreachable ({error}); checkpoint at step {step} stays "
                f"local and is shipped when the zone is back"),
                json.dumps({"zone": self.zone, "step": step, "error": error}))

    def _reachable(self) -> None:
        if self._down_since is not None:
            self._down_since = None
            self.ledger.event("zone_reachable", f"Zone {self.zone} is reachable again",
                              json.dumps({"zone": self.zone}))
