"""store/shared_zone.py: a checkpoint fetched by exact step from the shared zone of
hosts.toml (here a `file://` zone: the same fsspec calls an sftp:// or s3:// zone makes),
cached, through store/fetch.py."""

import json
from pathlib import Path

import pytest

from realm_kernel.store.checkpoints import UnknownCheckpoint
from realm_kernel.store.paths import SIDECAR
from realm_kernel.store.shared_zone import checkpoint_by_step, shared_zone
from realm_kernel.store.zones import ZoneRefused


def checkpoint(root: Path, name: str, step: int, weights: bytes = b"w", complete: bool = True) -> Path:
    d = root / "checkpoints" / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(weights)
    if complete:
        (d / SIDECAR).write_text(json.dumps({"step": step}))
    return d


def storage_host(home: Path, models_dir: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "hosts.toml").write_text(f'[hosts.nas]\nhost = "127.0.0.1"\nroles = ["storage"]\n'
                                     f'models_dir = "{models_dir}"\n')


def test_fetch_by_exact_step_cached(tmp_path):
    home, nas, cache = tmp_path / "realm", tmp_path / "nas", tmp_path / "realm" / "cache"
    storage_host(home, f"file://{nas}")
    checkpoint(nas, "checkpoint-10", 10, b"ten")
    checkpoint(nas, "checkpoint-100", 100, b"hundred")
    checkpoint(nas, "checkpoint-20-20261201-1200", 20, b"first")
    checkpoint(nas, "checkpoint-20-20261205-0900", 20, b"rerun")  # the re-run of step 20 is the record
    checkpoint(nas, "checkpoint-30", 30, complete=False)

    got = checkpoint_by_step(home, 10, cache)
    assert got == cache / "checkpoint-10" and (got / "model.safetensors").read_bytes() == b"ten"
    assert (checkpoint_by_step(home, 20, cache) / "model.safetensors").read_bytes() == b"rerun"
    # Cached: a second fetch copies nothing (the zone's copy changed; the cache answers).
    (nas / "checkpoints" / "checkpoint-10" / "model.safetensors").write_bytes(b"changed")
    assert (checkpoint_by_step(home, 10, cache) / "model.safetensors").read_bytes() == b"ten"

    with pytest.raises(UnknownCheckpoint, match=r"at step 11 .*there: \[10, 20, 30, 100\]"):
        checkpoint_by_step(home, 11, cache)  # never a neighbour
    with pytest.raises(UnknownCheckpoint, match="not a complete checkpoint of step 30"):
        checkpoint_by_step(home, 30, cache)
    assert sorted(p.name for p in cache.iterdir()) == ["checkpoint-10", "checkpoint-20-20261205-0900"]


def test_a_plain_folder_zone(tmp_path):
    """A mounted NAS: the zone is an absolute folder, no URL scheme."""
    home, nas = tmp_path / "realm", tmp_path / "mnt" / "nas"
    storage_host(home, str(nas))
    checkpoint(nas, "checkpoint-5", 5, b"five")
    assert (checkpoint_by_step(home, 5, tmp_path / "cache") / "model.safetensors").read_bytes() == b"five"


def test_no_shared_zone_or_a_refused_one(tmp_path):
    home = tmp_path / "realm"
    home.mkdir()
    assert shared_zone(home) is None
    with pytest.raises(UnknownCheckpoint, match="names no shared zone"):
        checkpoint_by_step(home, 10, tmp_path / "cache")
    storage_host(home, "http://example.invalid/realm")  # a zone is storage, never a web address
    with pytest.raises(ZoneRefused):
        checkpoint_by_step(home, 10, tmp_path / "cache")
    storage_host(home, str(tmp_path))  # a zone holding the realm home
    with pytest.raises(ZoneRefused):
        shared_zone(home)
