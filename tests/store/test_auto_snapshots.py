"""The automatic snapshots (store/backup.py) on a real realm home: where each goes, what its
manifest says, how many of a reason are kept ([backup] keep), that `[backup] auto = false`
writes none, and a compaction's old generation kept instead of deleted."""

from __future__ import annotations

import json

from realm_kernel.api import Realm
from realm_kernel.store import backup
from realm_kernel.store.backup_manifest import MANIFEST
from realm_kernel.store.paths import RealmPaths


def a_realm(tmp_path, toml: str) -> Realm:
    paths = RealmPaths.at(tmp_path / "home").ensure()
    paths.config_file.write_text(toml)
    r = Realm(paths.home)
    r.ledger.event("before", "what the snapshot holds")
    return r


def test_a_snapshot_before_a_risky_step_holds_the_ledger_and_settings(tmp_path):
    r = a_realm(tmp_path, "[backup]\nkeep = 2\n")
    dest = backup.auto_snapshot(r.paths, "retention")
    assert dest.parent == r.paths.home / "backups" / "auto" and dest.name.endswith("-retention")
    m = json.loads((dest / MANIFEST).read_text())
    assert (m["reason"], m["home"], m["rows"]["events"]) == ("retention", str(r.paths.home), 1)
    assert m["checkpoints"] == [] and m["champion"] is None
    assert (dest / "realm.toml").read_text() == "[backup]\nkeep = 2\n"
    assert Realm(dest).reports.events(5)[0]["kind"] == "before"
    # Kept by count per reason: the oldest go, another reason's stay.
    other = backup.auto_snapshot(r.paths, "champion")
    later = [backup.auto_snapshot(r.paths, "retention") for _ in range(2)]
    left = sorted(p.name for p in backup.auto_dir(r.paths).iterdir())
    assert left == sorted([other.name, *(p.name for p in later)])
    assert [(b["path"], b["reason"]) for b in backup.list_backups(r.paths)] == sorted(
        [(str(p), p.name.rsplit("-", 1)[-1]) for p in (other, *later)])
    assert all(isinstance(b["created"], float) for b in backup.list_backups(r.paths))


def test_automatic_snapshots_off_write_nothing(tmp_path):
    r = a_realm(tmp_path, "[backup]\nauto = false\n")
    assert backup.auto_snapshot(r.paths, "retention") is None
    gen = r.paths.segments / "events" / "gen-000099"
    gen.mkdir()
    assert backup.keep_generation(r.paths, "events", gen) is False and gen.is_dir()
    assert not backup.auto_dir(r.paths).exists() and backup.list_backups(r.paths) == []


def test_a_compactions_old_generation_is_kept_not_deleted(tmp_path):
    r = a_realm(tmp_path, "[backup]\nkeep = 1\n")
    kept = []
    for n in (98, 99):
        gen = r.paths.segments / "events" / f"gen-0000{n}"
        gen.mkdir()
        (gen / "a.parquet").write_bytes(b"old rows")
        assert backup.keep_generation(r.paths, "events", gen) is True and not gen.exists()
        kept.append(gen.name)
    [snap] = backup.auto_dir(r.paths).iterdir()  # keep = 1: the newer one alone
    assert snap.name.endswith("-compaction")
    assert (snap / "ledger" / "events" / kept[-1] / "a.parquet").read_bytes() == b"old rows"
    m = json.loads((snap / MANIFEST).read_text())
    assert (m["reason"], m["table"], m["generation"]) == ("compaction", "events", kept[-1])
    assert [b["reason"] for b in backup.list_backups(r.paths)] == ["compaction"]


def test_a_manual_backup_makes_its_folders_and_copies_every_checkpoint(tmp_path):
    from .test_vault import fake_checkpoint
    r = a_realm(tmp_path, "")
    r.ledger.append("checkpoints", [fake_checkpoint(r.paths, s, 1.0) for s in (10, 20)])
    (r.paths.checkpoints / "checkpoint-10-20260101-1200" / "sub").mkdir()
    (r.paths.checkpoints / "checkpoint-10-20260101-1200" / "sub" / "x.bin").write_bytes(b"x")
    dest = tmp_path / "new" / "deeper" / "snap"
    out = r.backup(dest, all_checkpoints=True)
    assert out["path"] == str(dest) and out["checkpoints"] == [
        "checkpoint-10-20260101-1200", "checkpoint-20-20260101-1200"]
    assert (dest / "checkpoints" / "checkpoint-10-20260101-1200" / "sub" / "x.bin").read_bytes() == b"x"
    ck20 = dest / "checkpoints" / "checkpoint-20-20260101-1200"
    assert (ck20 / "model.safetensors").read_bytes() == b"w" * 20
