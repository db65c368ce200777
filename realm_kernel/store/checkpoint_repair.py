"""Start-up checkpoint repair after a crash: make the checkpoint directories and the
ledger tell the same story.

The daemon runs it while it holds the realm's lock, before it admits or trains anything
(then `ledger.remove_dead_temp_segments` and quests/recovery.py). Every step that writes
two things (a file rename and a ledger row) can be cut by `kill -9` between the two;
`repair_checkpoints` finishes or undoes exactly that step: a `.run-<id>` work directory
of a daemon run (a save cut short) is removed; `.replaced-<name>` (a same-step re-save
cut short) goes back if `<name>` is missing; `.deleting-<name>` (a deletion cut short) is
finished and recorded; a complete checkpoint directory with no ledger row (published,
row not yet written) is recorded from its sidecar. A directory without sidecar or
weights is never recorded. `ledger_consistency` says where the two still disagree.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .checkpoints import extract_step
from .ledger import Ledger, json_data
from .paths import REPLACED_PREFIX, SIDECAR, RealmPaths, checkpoint_complete, read_json
from .schema import TABLES

log = logging.getLogger("realm.recovery")
CHECKPOINT_COLUMNS = set(TABLES["checkpoints"].names)


def repair_checkpoints(paths: RealmPaths, ledger: Ledger) -> dict[str, list[str]]:
    done: dict[str, list[str]] = {"removed_partial": [], "restored": [], "finished_delete": [],
                                  "recorded": [], "incomplete": []}
    ck = paths.checkpoints
    if not ck.is_dir():
        return done
    daemon_runs = {r["run_id"] for r in ledger.query("SELECT DISTINCT run_id FROM runs")}
    for d in sorted(ck.glob(".run-*")):
        if d.name.removeprefix(".run-") in daemon_runs:  # `realm train` runs are not ours
            shutil.rmtree(d, ignore_errors=True)
            done["removed_partial"].append(d.name)
    for d in sorted(ck.glob(f"{REPLACED_PREFIX}*")):
        original = d.with_name(d.name.removeprefix(REPLACED_PREFIX))
        if not original.exists():
            os.replace(d, original)
            done["restored"].append(original.name)
        else:
            shutil.rmtree(d, ignore_errors=True)
    for d in sorted(ck.glob(".deleting-*")):
        name = d.name.removeprefix(".deleting-")
        shutil.rmtree(d, ignore_errors=True)
        step = extract_step(name)
        gone = ledger.query("SELECT status FROM assets WHERE asset_id = ? AND zone = 'local' "
                            "ORDER BY ts DESC LIMIT 1", [f"checkpoint_{step}"])
        if step is not None and (not gone or gone[0]["status"] != "deleted"):
            ledger.append("assets", [{"asset_id": f"checkpoint_{step}", "type": "checkpoint",
                                      "name": name, "zone": "local", "path": f"checkpoints/{name}",
                                      "step": step, "status": "deleted",
                                      "detail": json_data({"by": "recovery"})}])
        done["finished_delete"].append(name)
    known = {r["name"] for r in ledger.query("SELECT DISTINCT name FROM checkpoints")}
    rows = []
    for d in sorted(ck.glob("checkpoint-*")):
        if not d.is_dir() or d.name in known:
            continue
        if not checkpoint_complete(d):
            done["incomplete"].append(d.name)
            continue
        sidecar = read_json(d / SIDECAR, {}) or {}
        row = {k: v for k, v in sidecar.items() if k in CHECKPOINT_COLUMNS}
        row.update(name=d.name, path=str(d), step=int(sidecar.get("step", extract_step(d.name) or 0)))
        rows.append(row)
        done["recorded"].append(d.name)
    if rows:
        ledger.append("checkpoints", rows)
    for name in done["incomplete"]:
        log.warning("checkpoint %s has no sidecar or no weights: never used", name)
    return done


def ledger_consistency(paths: RealmPaths, ledger: Ledger) -> list[str]:
    """Problems between the checkpoint ledger and the disk (empty when consistent):
    every checkpoint row not deleted has its directory and sidecar, and every checkpoint
    directory with a sidecar has its row."""
    problems = []
    deleted = {r["asset_id"] for r in ledger.query(
        "SELECT asset_id FROM (SELECT asset_id, status FROM assets WHERE zone = 'local' "
        "QUALIFY row_number() OVER (PARTITION BY asset_id ORDER BY ts DESC) = 1) "
        "WHERE status = 'deleted'")}
    rows = ledger.query("SELECT step, name, path FROM checkpoints")
    for r in rows:
        if f"checkpoint_{r['step']}" in deleted:
            continue
        if not checkpoint_complete(Path(r["path"])):
            problems.append(f"ledger row {r['name']} (step {r['step']}) has no complete directory")
    names = {r["name"] for r in rows}
    for d in sorted(paths.checkpoints.glob("checkpoint-*")):
        if (d / SIDECAR).exists() and d.name not in names:
            problems.append(f"directory {d.name} has a sidecar but no ledger row")
    return problems
