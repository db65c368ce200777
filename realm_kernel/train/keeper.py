"""What happens to checkpoints around a save: the disk budget before it, and after it
the older checkpoints lose their resume state and retention runs, off the training step.

Only the newest checkpoint carries optimizer, scheduler and RNG state (the one an
interrupted run resumes from, store/checkpoints.resume_point); every other kept checkpoint
is its weights in the training dtype with tokenizer, config and sidecar: plain
`from_pretrained` loads it and vLLM serves it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..store.checkpoints import carries_resume_state, resume_files
from ..store.config import RetentionConfig
from ..store.ledger import Ledger
from ..store.paths import SIDECAR, RealmPaths
from ..store.vault import VaultKeeper, dir_bytes

log = logging.getLogger("realm.keeper")

GIB = 1024 ** 3  # [retention] max_disk_gb counts binary gigabytes


def strip_resume_state(ckpt: Path) -> int:
    """Make a published checkpoint weights-only; returns the bytes freed. Each file goes
    in one unlink: a reader sees the checkpoint with or without it, never half of it."""
    freed = 0
    for f in resume_files(ckpt):
        try:
            size = f.stat().st_size
            f.unlink()
            freed += size
        except FileNotFoundError:
            pass
    return freed


def estimate_save_bytes(checkpoints: Path, model: Any | None) -> int:
    """The bytes the next save will write: the newest checkpoint that carries resume state
    (the same model saves the same sizes), else weights x 3 (AdamW keeps two moments in
    the parameters' dtype) when nothing was saved yet."""
    newest = [p for p in checkpoints.glob("checkpoint-*") if p.is_dir() and carries_resume_state(p)]
    if newest:
        return dir_bytes(max(newest, key=lambda p: p.stat().st_mtime))
    if model is None:
        return 0
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return 3 * weights


class CheckpointKeeper:
    """One per training run; its background thread does the deleting."""

    def __init__(self, paths: RealmPaths, ledger: Ledger, policy: RetentionConfig,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.paths, self.ledger, self.policy = paths, ledger, policy
        self.on_error = on_error or (lambda msg: log.warning(msg))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realm-keeper")
        self._pending: list[Future] = []
        self._lock = threading.Lock()

    def vault(self) -> VaultKeeper:
        return VaultKeeper(self.paths, self.ledger)

    # -- before a save (on the training thread: it decides whether the save happens) ----
    def budget_allows(self, step: int, model: Any | None) -> bool:
        """Enforce [retention] max_disk_gb before a save: delete what retention values
        least until the save fits; False (and an event saying so) when it cannot."""
        if not self.policy.max_disk_gb:
            return True
        self.wait()  # the last save's deletions count
        budget = int(self.policy.max_disk_gb * GIB)
        need = estimate_save_bytes(self.paths.checkpoints, model)
        room = self.vault().make_room(need, budget, self.policy)
        if room["fits"]:
            return True
        self.ledger.event("disk_budget", (
            f"Checkpoint at step {step} skipped: it needs ~{need / GIB:.2f} GiB and the checkpoints "
            f"use {room['used_bytes'] / GIB:.2f} GiB of the {self.policy.max_disk_gb:g} GiB budget "
            "([retention] max_disk_gb) after retention; raise the budget or protect fewer checkpoints"),
            json.dumps({"step": step, **room}))
        return False

    # -- after a save (in the background) --------------------------------------------------
    def saved(self, dest: Path) -> None:
        """`dest` is published and recorded: the older checkpoints lose their resume state
        and retention runs, while training goes on."""
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._pool.submit(self._after_save, dest))

    def _after_save(self, dest: Path) -> None:
        try:
            freed = 0
            for ckpt in self.paths.checkpoints.glob("checkpoint-*"):
                if ckpt != dest and ckpt.is_dir() and (ckpt / SIDECAR).exists():
                    freed += strip_resume_state(ckpt)
            if freed:
                log.info("resume state of older checkpoints removed (%d bytes)", freed)
            if self.policy.auto:
                self.vault().retention(dry_run=False, policy=self.policy, snapshot=False)
        except Exception as e:  # tidying never fails a battle
            self.on_error(f"checkpoint tidy-up after {dest.name} failed: {type(e).__name__}: {e}")

    def wait(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def close(self) -> None:
        self.wait()
        self._pool.shutdown(wait=True)
