"""A checkpoint fetched by step from the realm's shared zone onto this machine (cached):
what a host without the trainer's disk (an inference host, an eval node) loads.

The shared zone is the `models_dir` of the host with the "storage" role in hosts.toml, a
storage URL fsspec opens (`sftp://nas/realm`, `s3://bucket/realm`) or an absolute folder
(a mounted NAS), checked by store/zones.py like any vault zone. Checkpoints sit there as
in a realm home (`checkpoints/checkpoint-<step>[-<date>-<time>]/`), which is where the
vault's transfers put them.

A minimal client for the Oracle on another host (issue 26, item 4); the cluster work
builds the general fetch-by-step client, and the two are meant to become one.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .checkpoints import UnknownCheckpoint
from .hosts import HostRegistry
from .paths import checkpoint_complete
from .zones import check_zone

# A checkpoint folder's name: the step, and the date and time a re-run of it adds.
NAME_RE = re.compile(r"^checkpoint-(\d+)(?:-\d{8}-\d{4})?$")


def shared_zone(home: Path) -> str | None:
    """The shared zone's URL (hosts.toml: the storage host's `models_dir`), or None."""
    for _, host in HostRegistry.load(home).with_role("storage"):
        if host.models_dir:
            check_zone(host.models_dir, home)
            return host.models_dir
    return None


def _open(url: str):
    import fsspec
    if "://" not in url:
        return fsspec.filesystem("file"), url.rstrip("/")
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def zone_checkpoints(url: str) -> dict[int, list[str]]:
    """The checkpoint folder names in the zone, by step."""
    fs, root = _open(url)
    try:
        entries = fs.ls(f"{root}/checkpoints", detail=False)
    except FileNotFoundError:
        return {}
    out: dict[int, list[str]] = {}
    for entry in entries:
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        m = NAME_RE.match(name)
        if m:
            out.setdefault(int(m.group(1)), []).append(name)
    return out


def fetch_checkpoint(home: Path, step: int, cache_dir: Path) -> Path:
    """Step `step`'s checkpoint folder on this machine: from `cache_dir` when it is there
    and complete, else copied from the shared zone (under a temporary name, renamed into
    place, so a half copy is never loaded). UnknownCheckpoint when the zone has no such
    step (exactly that step: never a neighbour), or when there is no shared zone."""
    url = shared_zone(home)
    if url is None:
        raise UnknownCheckpoint(f"step {step} is not on this machine, and hosts.toml names no shared "
                                "zone (a host with the \"storage\" role and a models_dir) to fetch it from")
    names = zone_checkpoints(url).get(step)
    if not names:
        steps = sorted(zone_checkpoints(url))[-20:]
        raise UnknownCheckpoint(f"no checkpoint at step {step} in the shared zone {url}; "
                                f"steps there: {steps}")
    name = max(names)  # a re-run of a step is dated; the latest date is the checkpoint of record
    dest = cache_dir / name
    if dest.is_dir() and checkpoint_complete(dest):
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = cache_dir / f".{name}.{os.getpid()}.partial"
    shutil.rmtree(part, ignore_errors=True)
    fs, root = _open(url)
    try:
        fs.get(f"{root}/checkpoints/{name}/", str(part), recursive=True)
        if not checkpoint_complete(part):
            raise UnknownCheckpoint(f"{name} (step {step}) in the shared zone {url} is incomplete "
                                    "(no sidecar or no weights): it is never loaded")
        shutil.rmtree(dest, ignore_errors=True)  # an incomplete earlier copy
        os.replace(part, dest)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return dest
