"""The quest queue on disk: moves between queue folders (atomic renames only), listing,
and the edits the API and REST make (priority, order, delete)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..store import faults
from ..store.paths import PRIORITIES, RealmPaths, atomic_write_json
from .formats import SAFE_NAME, QuestReport, check_name, safe_name

# -- queue moves --------------------------------------------------------------------

def _unique_dest(folder: Path, name: str) -> Path:
    dest = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while dest.exists():
        dest = folder / f"{stem}-{n}{suffix}"
        n += 1
    return dest


def move(path: Path, folder: Path, name: str | None = None) -> Path:
    """Atomic rename into folder, never overwriting an existing quest."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = _unique_dest(folder, name or path.name)
    os.replace(path, dest)
    faults.point(f"queue_move:{folder.name}")
    return dest


def fail(paths: RealmPaths, path: Path, report: QuestReport) -> Path:
    """Move a rejected quest to failed/ under a safe name, with a .reason.json beside it."""
    dest = move(path, paths.queue("failed"), safe_name(path.name))
    atomic_write_json(dest.with_name(dest.name + ".reason.json"), {
        "file": path.name, "stored_as": dest.name, "failed_at": time.time(),
        "problems": [asdict(p) for p in report.problems],
        "summary": report.summary(),
    })
    return dest


def next_quest(paths: RealmPaths) -> tuple[Path, str] | None:
    """The oldest quest of the highest non-empty priority."""
    for prio in PRIORITIES:
        files = [p for p in paths.queue(prio).iterdir()
                 if p.is_file() and not p.name.startswith(".")]
        if files:
            return min(files, key=lambda p: (p.stat().st_mtime, p.name)), prio
    return None


def describe(path: Path) -> dict:
    st = path.stat()
    return {"name": path.name, "bytes": st.st_size, "mtime": st.st_mtime}


def list_queue(paths: RealmPaths) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for state in ("processing", *PRIORITIES, "failed", "recently_completed"):
        folder = paths.queue(state)
        files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                        and not p.name.endswith(".reason.json")),
                       key=lambda p: p.stat().st_mtime) if folder.exists() else []
        entries = [describe(p) for p in files]
        if state == "failed":
            for e in entries:
                reason = folder / (e["name"] + ".reason.json")
                if reason.exists():
                    try:
                        e["reason"] = json.loads(reason.read_text())["summary"]
                    except (OSError, ValueError, KeyError):
                        e["reason"] = "unreadable reason file"
        out[state] = entries
    return out


# -- queue edits (the API and REST call these) ------------------------------------------

class QueueError(LookupError):
    """A queue edit on a quest that is not there."""


class QueueConflict(QueueError):
    """A queue edit on a quest the daemon has taken (or just took) for training."""


def find_quest(paths: RealmPaths, name: str,
               states: Sequence[str] = (*PRIORITIES, "failed", "recently_completed", "processing")
               ) -> tuple[Path, str]:
    if not SAFE_NAME.match(name) or ".." in name:
        raise QueueError(f"no quest named {name!r}")
    for state in states:
        p = paths.queue(state) / name
        if p.is_file():
            return p, state
    raise QueueError(f"no quest named {name!r} in {', '.join(states)}")


def queued(paths: RealmPaths, priority: str) -> list[Path]:
    """Quests waiting at a priority, in the order the daemon takes them."""
    return sorted((p for p in paths.queue(priority).iterdir()
                   if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: (p.stat().st_mtime, p.name))


def set_priority(paths: RealmPaths, name: str, priority: str) -> Path:
    """Move a waiting quest to another priority (it keeps its age there)."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; expected one of {PRIORITIES}")
    path, state = find_quest(paths, name, PRIORITIES)
    if state == priority:
        return path
    try:
        return move(path, paths.queue(priority))
    except FileNotFoundError:
        raise QueueConflict(f"quest {name!r} was just taken by the daemon") from None


def reorder(paths: RealmPaths, name: str, position: int) -> list[str]:
    """Put a waiting quest at `position` (0 = next) within its priority. Order is file age,
    so the quests get fresh, evenly spaced mtimes in the new order."""
    path, state = find_quest(paths, name, PRIORITIES)
    order = [p for p in queued(paths, state) if p != path]
    order.insert(max(0, min(int(position), len(order))), path)
    base = time.time() - len(order) - 1
    for i, p in enumerate(order):
        try:
            os.utime(p, (base + i, base + i))
        except FileNotFoundError:
            pass  # taken by the daemon meanwhile: the rest keep their order
    return [p.name for p in order]


def delete_quest(paths: RealmPaths, name: str) -> tuple[Path, str]:
    """Remove a quest that is waiting, failed or completed (never one in training)."""
    states = (*PRIORITIES, "failed", "recently_completed")
    try:
        path, state = find_quest(paths, name, states)
    except QueueError:
        # Only a safe name is ever joined to a folder ('../../realm.toml' is no quest).
        if check_name(name) is None and (paths.queue("processing") / name).exists():
            raise QueueConflict(f"quest {name!r} is in training; stop or skip it first") from None
        raise
    path.unlink()
    path.with_name(path.name + ".reason.json").unlink(missing_ok=True)
    return path, state


def waiting(paths: RealmPaths) -> int:
    """Quests not yet trained: in training, queued, or still in the inbox."""
    q = list_queue(paths)
    return sum(len(q[s]) for s in ("processing", *PRIORITIES)) + sum(
        1 for p in paths.inbox.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(paths.inbox).parts))
