"""The one way a quest enters the realm, and the one writer of `quests` ledger rows.

`publish()` is what every producer calls (a user's file or upload, a generated skill
quest, the curriculum, targeted practice, sparring): stage the file in a hidden folder
the daemon ignores -> validate it as the daemon would (plus the producer's own rules)
-> one atomic rename into inbox/ (the daemon admits it) or straight into a queue folder
(the realm's own quests, recorded as admission would record them) -> ledger row ->
event. `record()` writes `quests` rows; the daemon's moves, start-up repairs and queue
edits call it too, so the row's shape is decided here only.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..store.config import RealmConfig
from ..store.ledger import Ledger, json_data
from ..store.paths import PRIORITIES, RealmPaths
from .admission import check_quest
from .formats import QuestError, check_name, file_sha256, write_quest

STATUSES = ("queued", "processing", "completed", "failed", "skipped", "deleted")

Writer = Callable[[Path], Any] | Sequence[dict]


def quest_row(path: Path, status: str, priority: str | None = None, **fields: Any) -> dict:
    """One `quests` row: the quest's file name is its id, its folder its state."""
    if status not in STATUSES:
        raise ValueError(f"unknown quest status {status!r}; expected one of {STATUSES}")
    return {"quest_id": path.name, "status": status, "priority": priority, "path": str(path),
            **{k: v for k, v in fields.items() if v is not None}}


def record(ledger: Ledger, rows: Sequence[dict]) -> None:
    """Append `quests` rows (built with quest_row)."""
    if rows:
        ledger.append("quests", list(rows))


def publish(paths: RealmPaths, ledger: Ledger, config: RealmConfig, name: str, content: Writer, *,
            priority: str | None = None, queue: str | None = None,
            event: tuple[str, str, dict] | None = None) -> dict:
    """Stage, validate, publish with one rename, record. `content` is a list of examples
    or a function writing the file at the path it is given. With `queue` (a priority) the
    quest goes straight to queue/<queue>/ and gets its `queued` row here; otherwise into
    inbox/ (inbox/<priority>/ with a priority), where the daemon admits it. Raises QuestError (the report) or
    ValueError / FileExistsError; nothing is left behind on failure."""
    why = check_name(name)
    if why:
        raise ValueError(why)
    for value in (priority, queue):
        if value is not None and value not in PRIORITIES:
            raise ValueError(f"unknown priority {value!r}; expected one of {PRIORITIES}")
    staged = paths.inbox / ".staging" / f"{os.getpid()}-{time.time_ns()}" / name
    staged.parent.mkdir(parents=True)
    try:
        if callable(content):
            content(staged)
        else:
            write_quest(staged, list(content))
        _, report = check_quest(staged, config, paths, ledger)
        if not report.ok:
            ledger.event("quest_rejected", report.summary())
            raise QuestError(report)
        folder = paths.queue(queue) if queue else (paths.inbox / priority if priority else paths.inbox)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / name
        if dest.exists():
            where = f"queue/{queue}" if queue else "the inbox"
            raise FileExistsError(f"a quest named {name!r} is already in {where}")
        os.replace(staged, dest)
        if queue:
            record(ledger, [quest_row(dest, "queued", queue, examples=report.examples,
                                      sha256=report.sha256 or file_sha256(dest))])
        if event:
            kind, message, data = event
            ledger.event(kind, message, json_data({**data, "quest": name}))
        return {"ok": True, "name": name, "path": str(dest), "examples": report.examples,
                "priority": queue or priority or "normal",
                "warnings": [str(w) for w in report.warnings]}
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


def withdraw(paths: RealmPaths, ledger: Ledger, name: str) -> dict:
    """Remove a quest from the queue (never one in training); the ledger keeps its story."""
    from .queue import delete_quest
    path, state = delete_quest(paths, name)
    record(ledger, [quest_row(path, "deleted", state if state in PRIORITIES else None,
                              detail=f"deleted from {state}")])
    ledger.event("quest_deleted", f"Quest {name} removed from {state}")
    return {"ok": True, "name": name, "was": state}
