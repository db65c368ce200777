"""Backups: `realm backup [DEST]` and `realm restore SRC`, and the automatic snapshots
taken before a risky operation.

A snapshot is itself a realm home: ledger/ (each table's live generation, its segments
hard-linked when on the same file system, else copied: segments are immutable, so a
link is a copy), realm.toml, hosts.toml, tasks/settings.json, the champion's checkpoint
(or every complete checkpoint) and manifest.json (reason, time, rows per table, and every
file's size and sha256: store/backup_manifest.py, which restore checks first). Each
table is snapshotted under its ledger lock, so no compaction swaps it mid-copy; writers
wait for the few milliseconds the links take. Training goes on meanwhile.

Automatic snapshots (`[backup] auto`, kept by `[backup] keep` per reason) go to
backups/auto/<time>-<reason>/: before a ledger schema migration, a retention --apply and
a champion change (the ledger and the settings), and before a compaction deletes an old
generation (that generation is moved there instead of deleted)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .backup_manifest import (
    MANIFEST,
    SETTINGS_FILES,
    BackupError,
    check_backup,
    copy_checked,
    describe,
    restored_part,
)
from .paths import RealmPaths, atomic_write_json, checkpoint_complete

__all__ = ["MANIFEST", "SETTINGS_FILES", "BackupError", "restore", "snapshot"]


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dest)


def _copy_tree(src: Path, dest: Path) -> None:
    for f in sorted(src.rglob("*")):
        if f.is_file() and not f.is_symlink():
            _link_or_copy(f, dest / f.relative_to(src))


def _table_lock(table_dir: Path):
    fd = os.open(table_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def snapshot_ledger(paths: RealmPaths, dest: Path, skip_lock: str | None = None) -> dict[str, int]:
    """Each table's live generation into dest/ledger/; rows per table."""
    rows: dict[str, int] = {}
    if not paths.segments.is_dir():
        return rows
    for table_dir in sorted(p for p in paths.segments.iterdir() if p.is_dir()):
        current = table_dir / "current"
        if not current.is_symlink():
            continue
        fd = None if table_dir.name == skip_lock else _table_lock(table_dir)
        try:
            gen = current.resolve()
            out = dest / "ledger" / table_dir.name / gen.name
            files = sorted(gen.glob("*.parquet"))
            for f in files:
                _link_or_copy(f, out / f.name)
        finally:
            if fd is not None:
                os.close(fd)
        os.symlink(gen.name, dest / "ledger" / table_dir.name / "current")
        rows[table_dir.name] = sum(pq.read_metadata(out / f.name).num_rows for f in files)
    return rows


def snapshot(paths: RealmPaths, dest: Path, reason: str = "manual", *,
             champion: Path | None = None, all_checkpoints: bool = False) -> dict[str, Any]:
    """Write a consistent snapshot of the realm home into `dest` (a new folder), with the
    champion's checkpoint and, with all_checkpoints, every complete checkpoint."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest}: not empty; a backup goes to a new folder")
    if dest.resolve().is_relative_to(paths.segments.resolve()):
        raise BackupError(f"{dest}: inside the ledger")
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows = snapshot_ledger(paths, tmp)
    for name in SETTINGS_FILES:
        if (paths.home / name).is_file():  # small and edited in place: copied
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(paths.home / name, tmp / name)
    chosen = [p for p in sorted(paths.checkpoints.glob("checkpoint-*"))
              if checkpoint_complete(p)] if all_checkpoints else []
    if champion is not None and checkpoint_complete(champion) and champion not in chosen:
        chosen.append(champion)
    for ck in chosen:
        _copy_tree(ck, tmp / "checkpoints" / ck.name)
    manifest = {"reason": reason, "created": time.time(), "home": str(paths.home),
                "rows": rows, "checkpoints": [ck.name for ck in chosen],
                "champion": champion.name if champion else None}
    # Every file's size and sha256, and the ledger's `current` links: what restore checks.
    atomic_write_json(tmp / MANIFEST, {**manifest, **describe(tmp)})
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.rmdir()
    os.replace(tmp, dest)
    return {**manifest, "path": str(dest)}


def restore(paths: RealmPaths, src: Path) -> dict[str, Any]:
    """Bring the realm home back from a snapshot. Refused while a daemon holds the realm.

    All or nothing: the whole backup is checked first (store/backup_manifest.py: its manifest,
    every file's size and sha256, no link followed), then staged in a folder inside the
    home, and only then swapped in by renames, each undone if a later one fails. What it
    replaces is kept in backups/auto/<time>-pre-restore/. A refused or failed restore
    leaves the realm home exactly as it was. The caller recreates the views
    (Ledger.ensure_views)."""
    src = Path(src)
    manifest = check_backup(src)
    _refuse_while_a_daemon_runs(paths)
    stage = paths.home / f".restoring-{_stamp()}"
    try:
        stage.mkdir()
        _stage(src, manifest, stage, live_checkpoints=paths.checkpoints)
        restored = _swap(paths, stage, manifest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    paths.ensure()
    about = {k: v for k, v in manifest.items() if k not in ("files", "links")}
    return {"restored_from": str(src), "manifest": about, **restored}


def _refuse_while_a_daemon_runs(paths: RealmPaths) -> None:
    if not paths.lock_file.exists():
        return
    fd = os.open(paths.lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BackupError(f"a daemon runs for {paths.home}: `realm down` first") from None
    finally:
        os.close(fd)


def _stage(src: Path, manifest: dict[str, Any], stage: Path, live_checkpoints: Path) -> None:
    """A copy of what the backup restores (its ledger, settings, and the checkpoints the
    realm lacks: one it has is kept) in `stage`, every byte checked against the manifest
    again as it is copied."""
    for rel, want in manifest["files"].items():
        parts = rel.split("/")
        if not restored_part(rel, manifest) or (
                parts[0] == "checkpoints" and (live_checkpoints / parts[1]).exists()):
            continue
        out = stage / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        got = copy_checked(src / rel, out)
        if got != (want["bytes"], want["sha256"]):
            raise BackupError(f"{src / rel} changed while it was restored")
    for rel, target in manifest["links"].items():
        (stage / rel).parent.joinpath(target).mkdir(parents=True, exist_ok=True)
        os.symlink(target, stage / rel)


def _swap(paths: RealmPaths, stage: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Rename the staged ledger, settings and new checkpoints into the home. Every rename
    is recorded with its inverse; on any failure they are undone newest first."""
    undo: list[tuple[Path, Path]] = []

    def move(a: Path, b: Path) -> None:
        b.parent.mkdir(parents=True, exist_ok=True)
        os.replace(a, b)
        undo.append((b, a))

    # Folders the swap may create, removed again on failure: the home is left as it was.
    made = [d for d in (paths.home / "backups", auto_dir(paths), paths.checkpoints, paths.tasks)
            if not d.exists()]
    aside = auto_dir(paths) / f"{_stamp()}-pre-restore"
    restored: list[str] = []
    try:
        aside.mkdir(parents=True)
        if paths.segments.exists() or paths.segments.is_symlink():
            move(paths.segments, aside / "ledger")
        move(stage / "ledger", paths.segments)
        for name in SETTINGS_FILES:
            if (stage / name).is_file():
                live = paths.home / name
                if live.exists() or live.is_symlink():
                    move(live, aside / name)
                move(stage / name, live)
        for ck in sorted(p for p in (stage / "checkpoints").glob("checkpoint-*") if p.is_dir()):
            if not (paths.checkpoints / ck.name).exists():
                move(ck, paths.checkpoints / ck.name)
                restored.append(ck.name)
    except BaseException as e:
        for b, a in reversed(undo):
            os.replace(b, a)
        shutil.rmtree(aside, ignore_errors=True)
        for d in reversed(made):
            shutil.rmtree(d, ignore_errors=True)
        if isinstance(e, Exception):
            raise BackupError(f"restore failed and was undone; the realm is as it was: {e}") from e
        raise
    return {"checkpoints": restored, "previous_kept_in": str(aside)}


# -- automatic snapshots -------------------------------------------------------------
def auto_dir(paths: RealmPaths) -> Path:
    return paths.home / "backups" / "auto"


def _stamp() -> str:
    # One clock reading: the second and its nanoseconds read apart could straddle a second
    # boundary and sort a newer snapshot before an older one.
    ns = time.time_ns()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(ns // 1_000_000_000)) + f"-{ns % 1_000_000_000:09d}"


def _settings(paths: RealmPaths) -> tuple[bool, int]:
    from .config import load_config
    try:
        cfg = load_config(paths.home).backup
        return cfg.auto, cfg.keep
    except Exception:
        return True, 5


def auto_snapshot(paths: RealmPaths, reason: str) -> Path | None:
    """The ledger and settings before a risky operation; never fails the operation."""
    auto, keep = _settings(paths)
    if not auto:
        return None
    try:
        dest = auto_dir(paths) / f"{_stamp()}-{reason}"
        snapshot(paths, dest, reason)
        prune(paths, reason, keep)
        return dest
    except Exception:  # a backup that cannot be taken must not stop the realm
        import logging
        logging.getLogger("realm.backup").exception("automatic snapshot (%s) failed", reason)
        return None


def keep_generation(paths: RealmPaths, table: str, gen: Path) -> bool:
    """A compaction's old generation moves to backups/auto/ instead of being deleted.
    False when automatic snapshots are off (the caller deletes it)."""
    auto, keep = _settings(paths)
    if not auto:
        return False
    dest = auto_dir(paths) / f"{_stamp()}-compaction" / "ledger" / table / gen.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(gen, dest)
    except OSError:
        return False
    atomic_write_json(dest.parents[2] / MANIFEST, {"reason": "compaction", "table": table,
                                                    "generation": gen.name, "created": time.time()})
    prune(paths, "compaction", keep)
    return True


def prune(paths: RealmPaths, reason: str, keep: int) -> None:
    snaps = sorted(p for p in auto_dir(paths).glob(f"*-{reason}") if p.is_dir())
    for old in snaps[:-keep] if keep else snaps:
        shutil.rmtree(old, ignore_errors=True)


def list_backups(paths: RealmPaths) -> list[dict[str, Any]]:
    out = []
    for m in sorted(auto_dir(paths).glob(f"*/{MANIFEST}")):
        data = json.loads(m.read_text())
        out.append({"path": str(m.parent), "reason": data.get("reason"),
                    "created": data.get("created")})
    return out
