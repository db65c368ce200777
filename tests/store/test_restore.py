"""`realm restore` is all or nothing: a backup with a link anywhere (a file, the ledger's
`current`, a checkpoint folder), a missing `current`, a truncated segment, a wrong hash,
an unlisted file or a manifest path that climbs out is refused, and a restore that fails
half-way through its swap is undone; either way the realm home is byte for byte what it
was (every file's hash, every link's text, every folder). Real ledgers, real files."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from realm_kernel.api import Realm
from realm_kernel.store import backup
from realm_kernel.store.backup_manifest import MANIFEST, BackupError
from realm_kernel.store.paths import RealmPaths

from ..helpers import child_env
from .test_vault import fake_checkpoint

CKPT = "checkpoint-20-20260101-1200"


def home_state(home: Path) -> dict[str, str]:
    """Every entry under `home` (never following a link): a file's sha256, a link's text,
    a folder's mark."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(home).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def realms(tmp_path):
    """(the backup, the live realm's paths): the backup holds a ledger with one event and
    a checkpoint; the live realm has another ledger, realm.toml and no checkpoint."""
    old = RealmPaths.at(tmp_path / "old").ensure()
    r = Realm(old.home)
    r.ledger.append("checkpoints", [fake_checkpoint(old, 20, 1.0)])
    r.ledger.event("from_the_backup", "in the backup")
    old.config_file.write_text("[backup]\nkeep = 3\n")
    snap = Path(r.backup(tmp_path / "snap", all_checkpoints=True)["path"])
    live = RealmPaths.at(tmp_path / "live").ensure()
    lr = Realm(live.home)
    lr.ledger.event("live_only", "only in the live realm")
    live.config_file.write_text("[backup]\nkeep = 4\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.parquet").write_bytes(b"not yours")
    return snap, live


def manifest(snap: Path) -> dict:
    return json.loads((snap / MANIFEST).read_text())


def rewrite_manifest(snap: Path, change) -> None:
    m = manifest(snap)
    change(m)
    (snap / MANIFEST).write_text(json.dumps(m))


def a_segment(snap: Path, table: str = "events") -> Path:
    gen = os.readlink(snap / "ledger" / table / "current")
    return sorted((snap / "ledger" / table / gen).glob("*.parquet"))[-1]


def link_a_file(snap, outside):
    seg = a_segment(snap)
    seg.unlink()
    seg.symlink_to(outside / "secret.parquet")


def link_current(snap, outside):
    cur = snap / "ledger" / "events" / "current"
    cur.unlink()
    cur.symlink_to(outside)


def link_current_up(snap, outside):
    cur = snap / "ledger" / "events" / "current"
    cur.unlink()
    cur.symlink_to("../../../outside")
    rewrite_manifest(snap, lambda m: m["links"].update({"ledger/events/current": "../../../outside"}))


def link_a_checkpoint(snap, outside):
    ck = snap / "checkpoints" / CKPT
    shutil.move(ck, outside / CKPT)
    ck.symlink_to(outside / CKPT)


def link_elsewhere(snap, outside):
    (snap / "status").mkdir()
    (snap / "status" / "x").symlink_to("/etc/passwd")


def no_current(snap, outside):
    (snap / "ledger" / "events" / "current").unlink()


def no_current_in_manifest_either(snap, outside):
    no_current(snap, outside)
    rewrite_manifest(snap, lambda m: m["links"].pop("ledger/events/current"))


def truncated_segment(snap, outside):
    seg = a_segment(snap)
    seg.write_bytes(seg.read_bytes()[:-100])


def wrong_hash(snap, outside):
    seg = a_segment(snap)
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.unlink()  # a hard link of the live segment: write a new file, not through it
    seg.write_bytes(bytes(data))


def unlisted_file(snap, outside):
    shutil.copy(a_segment(snap), a_segment(snap).with_name("zz-extra.parquet"))


def manifest_climbs(snap, outside):
    rewrite_manifest(snap, lambda m: m["files"].update({"../outside/secret.parquet": {
        "bytes": 9, "sha256": hashlib.sha256(b"not yours").hexdigest()}}))


def old_format(snap, outside):
    rewrite_manifest(snap, lambda m: (m.pop("files"), m.pop("links")))


def no_file_list(snap, outside):
    rewrite_manifest(snap, lambda m: m.pop("files"))


def bad_entry(snap, outside):
    rewrite_manifest(snap, lambda m: m["files"].update({a_segment(snap).relative_to(snap).as_posix(): 5}))


def no_manifest(snap, outside):
    (snap / MANIFEST).unlink()


BAD = [
    (link_a_file, "is a symlink"),
    (link_current, "is a symlink"),
    (link_current_up, "is a symlink"),
    (link_a_checkpoint, "is a symlink"),
    (link_elsewhere, "is a symlink"),
    (no_current, "missing what the manifest lists: ledger/events/current"),
    (no_current_in_manifest_either, "ledger/events has no `current`"),
    (truncated_segment, "truncated"),
    (wrong_hash, "does not match its sha256"),
    (unlisted_file, "zz-extra.parquet is not in the manifest"),
    (manifest_climbs, "climbs with '..'"),
    (old_format, "lists no files and hashes"),
    (no_file_list, "lists no files and hashes"),
    (bad_entry, "lacks its bytes and sha256"),
    (no_manifest, f"no {MANIFEST}"),
]


@pytest.mark.parametrize("spoil,why", BAD, ids=[f.__name__ for f, _ in BAD])
def test_a_bad_backup_is_refused_and_the_realm_is_unchanged(realms, tmp_path, spoil, why):
    snap, live = realms
    spoil(snap, tmp_path / "outside")
    before = home_state(live.home)
    with pytest.raises(BackupError, match=why):
        backup.restore(live, snap)
    assert home_state(live.home) == before
    assert (tmp_path / "outside" / "secret.parquet").read_bytes() == b"not yours"


def test_the_cli_refuses_a_linked_backup_and_changes_nothing(realms, tmp_path):
    snap, live = realms
    link_a_checkpoint(snap, tmp_path / "outside")
    before = home_state(live.home)
    out = subprocess.run([sys.executable, "-m", "realm_kernel.cli", "restore", str(snap)],
                         env=child_env(live.home), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "is a symlink" in out.stderr, out.stderr
    # The CLI opens the realm (views in ledger.duckdb); the home's files are untouched.
    after = home_state(live.home)
    assert {k: v for k, v in after.items() if k != "ledger.duckdb"} == \
           {k: v for k, v in before.items() if k != "ledger.duckdb"}


def test_a_restore_that_fails_mid_swap_is_undone(realms, monkeypatch):
    """Each rename of the swap fails in turn (EIO from the OS call): every time, what was
    already moved goes back and the home is as it was; then a clean run restores."""
    snap, live = realms
    before = home_state(live.home)
    real = os.replace
    k = 0
    while True:
        k += 1
        calls = {"n": 0}

        def failing(a, b, _k=k, calls=calls):
            calls["n"] += 1
            if calls["n"] == _k:
                raise OSError(errno.EIO, "injected I/O error", str(b))
            return real(a, b)

        monkeypatch.setattr(backup.os, "replace", failing)
        try:
            backup.restore(live, snap)
        except BackupError as e:
            assert "undone" in str(e) and "injected" in str(e)
            monkeypatch.setattr(backup.os, "replace", real)
            assert home_state(live.home) == before, f"rename {k} failed and left a trace"
            continue
        finally:
            monkeypatch.setattr(backup.os, "replace", real)
        break
    assert k > 4, "the swap has a rename per part (ledger aside, ledger in, settings, checkpoint)"
    # The run with no failure restored it all, and kept what it replaced.
    assert Realm(live.home).reports.events(5)[0]["kind"] == "from_the_backup"
    assert (live.checkpoints / CKPT / "model.safetensors").read_bytes() == b"w" * 20
    assert live.config_file.read_text() == "[backup]\nkeep = 3\n"
    [aside] = backup.auto_dir(live).glob("*-pre-restore")
    assert (aside / "realm.toml").read_text() == "[backup]\nkeep = 4\n"
    assert (aside / "ledger" / "events" / "current").is_symlink()


def test_a_checkpoint_the_realm_has_is_kept(realms):
    snap, live = realms
    mine = live.checkpoints / CKPT
    mine.mkdir(parents=True)
    (mine / "model.safetensors").write_bytes(b"mine")
    (snap / "checkpoints" / "stray.txt").write_text("x")
    rewrite_manifest(snap, lambda m: m["files"].update({"checkpoints/stray.txt": {
        "bytes": 1, "sha256": hashlib.sha256(b"x").hexdigest()}}))
    out = backup.restore(live, snap)
    assert out["checkpoints"] == [] and (mine / "model.safetensors").read_bytes() == b"mine"
    assert sorted(p.name for p in live.checkpoints.iterdir()) == [CKPT]


def test_a_good_backup_restores_after_being_opened_as_a_realm(realms):
    """Opening a backup as a realm adds ledger.duckdb, raw/ and .lock files: restore
    neither reads nor needs them."""
    snap, live = realms
    assert Realm(snap).reports.events(1)[0]["kind"] == "from_the_backup"
    out = Realm(live.home).restore(snap)
    assert out["checkpoints"] == [CKPT] and "files" not in out["manifest"]
    assert [e["kind"] for e in Realm(live.home).reports.events(5)] == ["from_the_backup"]
