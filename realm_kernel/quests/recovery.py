"""Start-up repair of the quest queue: a quest file whose folder disagrees with its latest
ledger row (a crash between a move and its row) gets the row its folder says."""

from __future__ import annotations

from ..store.ledger import Ledger
from ..store.paths import PRIORITIES, RealmPaths, read_json
from ..store.queries import quest_states
from .formats import file_sha256
from .publish import quest_row, record

# The status a quest in each folder has (failed/ may also hold a skipped quest).
FOLDER_STATUS = {**{p: "queued" for p in PRIORITIES}, "failed": "failed",
                 "recently_completed": "completed"}


def repair_quests(paths: RealmPaths, ledger: Ledger) -> list[str]:
    """Rows for quest files whose folder disagrees with their latest ledger row."""
    latest = {r["quest_id"]: r for r in quest_states(ledger)}
    rows, fixed = [], []
    for folder, status in FOLDER_STATUS.items():
        d = paths.queue(folder)
        for f in sorted(d.iterdir()) if d.is_dir() else ():
            if not f.is_file() or f.name.startswith(".") or f.name.endswith(".reason.json"):
                continue
            row = latest.get(f.name) or {}
            want = status
            if folder == "failed":
                summary = (read_json(f.with_name(f.name + ".reason.json"), {}) or {}).get("summary", "")
                want = "skipped" if "skipped by request" in str(summary) else "failed"
                if row.get("status") in ("failed", "skipped"):
                    continue
            elif row.get("status") == want and (folder not in PRIORITIES
                                                or row.get("priority") == folder):
                continue
            rows.append(quest_row(f, want, folder if folder in PRIORITIES else row.get("priority"),
                                  run_id=row.get("run_id"),
                                  sha256=file_sha256(f) if row.get("status") is None else None,
                                  detail=f"found in {folder}/ at start-up (was "
                                         f"{row.get('status') or 'unrecorded'})"))
            fixed.append(f"{f.name}: {row.get('status') or 'unrecorded'} -> {want}")
    record(ledger, rows)
    return fixed
