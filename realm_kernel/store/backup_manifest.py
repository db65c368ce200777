"""A backup's manifest of its own contents, written by `realm backup` and checked, whole,
by `realm restore` before anything in the realm home changes.

manifest.json carries, besides what the backup is (reason, time, rows per table):

    "files": {"ledger/events/gen-000003/part-0.parquet": {"bytes": 1234, "sha256": "..."}, ...}
    "links": {"ledger/events/current": "gen-000003", ...}

A backup is refused unless: manifest.json is a plain file; it holds no link but the
ledger's `current` links listed under "links", each naming (as a plain name; its text is
read, never followed) a folder beside it; every listed file is there with its size and
hash; every table under ledger/ has its `current`; nothing unlisted sits in what restore
takes (each table's current generation, checkpoints/, the settings files); and no listed
path leaves the backup (store.confine's rules). Anything else in the folder (opening a
backup as a realm adds ledger.duckdb, raw/ and .lock files) is neither read nor restored.
A backup made before manifests listed their files cannot be checked, so it is refused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from .confine import PathRefused, check_relative

MANIFEST = "manifest.json"
SETTINGS_FILES = ("realm.toml", "hosts.toml", "hosts.json", "tasks/settings.json")
CHUNK = 1 << 20


class BackupError(RuntimeError):
    pass


def sha256_file(path: Path) -> tuple[int, str]:
    """(bytes, sha256) of a plain file, opened without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    h, n = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def copy_checked(src: Path, dest: Path) -> tuple[int, str]:
    """Copy a plain file (never through a link) and return (bytes, sha256) of what was
    copied, so the copy itself is what gets checked."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    h, n = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f, open(dest, "xb") as out:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def describe(root: Path) -> dict[str, Any]:
    """{"files": ..., "links": ...} of a backup folder being written (manifest aside)."""
    files: dict[str, dict[str, Any]] = {}
    links: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                links[rel] = os.readlink(p)
            elif p.is_file() and rel != MANIFEST:
                n, digest = sha256_file(p)
                files[rel] = {"bytes": n, "sha256": digest}
    return {"files": dict(sorted(files.items())), "links": dict(sorted(links.items()))}


def _entry_ok(entry: object) -> bool:
    return (isinstance(entry, dict) and type(entry.get("bytes")) is int
            and isinstance(entry.get("sha256"), str))


def _load(src: Path) -> dict[str, Any]:
    if src.is_symlink() or not src.is_dir():
        raise BackupError(f"{src}: not a realm backup (not a folder, or a link to one)")
    m = src / MANIFEST
    if m.is_symlink() or not m.is_file():
        raise BackupError(f"{src}: not a realm backup (no {MANIFEST})")
    try:
        manifest = json.loads(m.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BackupError(f"{m}: not valid JSON: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) \
            or not isinstance(manifest.get("links"), dict):
        raise BackupError(f"{m}: lists no files and hashes (a backup from before manifests "
                          "did; it cannot be checked, so it is not restored)")
    if not all(map(_entry_ok, manifest["files"].values())) or not all(
            isinstance(v, str) for v in manifest["links"].values()):
        raise BackupError(f"{m}: a file entry lacks its bytes and sha256, or a link its target")
    for rel in [*manifest["files"], *manifest["links"]]:
        try:
            check_relative(rel, what="manifest path", root=str(src))
        except PathRefused as e:
            raise BackupError(str(e)) from None
    return manifest


def _link_ok(src: Path, rel: str, manifest: dict[str, Any]) -> bool:
    """A ledger table's `current` link, listed, naming a real folder beside it."""
    parts = rel.split("/")
    if len(parts) != 3 or parts[0] != "ledger" or parts[2] != "current":
        return False
    target = os.readlink(src / rel)
    if manifest["links"].get(rel) != target or "/" in target or target in (".", "..", ""):
        return False
    try:
        return stat.S_ISDIR(os.lstat(src / "ledger" / parts[1] / target).st_mode)
    except FileNotFoundError:
        return False


def restored_part(rel: str, manifest: dict[str, Any]) -> bool:
    """Whether restore would take this path: a settings file, anything under
    checkpoints/, or a file in a ledger table's current generation."""
    parts = rel.split("/")
    if rel in SETTINGS_FILES or parts[0] == "checkpoints":
        return True
    return (len(parts) >= 4 and parts[0] == "ledger"
            and manifest["links"].get(f"ledger/{parts[1]}/current") == parts[2])


def check_backup(src: Path) -> dict[str, Any]:
    """The backup's manifest once every check above has passed; BackupError naming the
    first problem otherwise. Reads the backup only; follows no link."""
    src = Path(src)
    manifest = _load(src)
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(src):  # os.walk does not enter linked folders
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(src).as_posix()
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                if not _link_ok(src, rel, manifest):
                    raise BackupError(f"{src}: {rel} is a symlink (to {os.readlink(p)!r}); a "
                                      "backup holds no links but each ledger table's `current`")
                seen.add(rel)
            elif stat.S_ISREG(st.st_mode):
                want = manifest["files"].get(rel)
                if want is None:
                    if restored_part(rel, manifest):
                        raise BackupError(f"{src}: {rel} is not in the manifest")
                    continue  # not something restore takes: neither read nor restored
                if st.st_size != want.get("bytes"):
                    raise BackupError(f"{src}: {rel} has {st.st_size} bytes, the manifest says "
                                      f"{want.get('bytes')} (truncated or changed)")
                if sha256_file(p)[1] != want.get("sha256"):
                    raise BackupError(f"{src}: {rel} does not match its sha256 in the manifest")
                seen.add(rel)
            elif not stat.S_ISDIR(st.st_mode):
                raise BackupError(f"{src}: {rel} is neither a file nor a folder")
    missing = sorted((set(manifest["files"]) | set(manifest["links"])) - seen)
    if missing:
        raise BackupError(f"{src}: missing what the manifest lists: {', '.join(missing[:5])}")
    ledger = src / "ledger"
    if not ledger.is_dir() or ledger.is_symlink():
        raise BackupError(f"{src}: not a realm backup (no ledger/)")
    for table in sorted(p for p in ledger.iterdir() if p.is_dir() and not p.is_symlink()):
        if f"ledger/{table.name}/current" not in manifest["links"]:
            raise BackupError(f"{src}: ledger/{table.name} has no `current` generation")
    return manifest
