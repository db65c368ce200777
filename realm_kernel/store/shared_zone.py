"""The realm's shared zone as a host without the trainer's disk sees it (an inference host
loading a checkpoint by step for the Oracle on another host): where it is, which
checkpoint folders it holds by step, and the one of a step fetched into a local cache
through store/fetch.py (the cluster nodes' fetch-by-step client).

The shared zone is the `models_dir` of the host with the "storage" role in hosts.toml, a
storage URL fsspec opens (`sftp://nas/realm`, `s3://bucket/realm`) or an absolute folder
(a mounted NAS), checked by store/zones.py like any vault zone. Checkpoints sit there as
in a realm home (`checkpoints/checkpoint-<step>[-<date>-<time>]/`), which is where the
vault's transfers put them.
"""

from __future__ import annotations

import re
from pathlib import Path

from .checkpoints import UnknownCheckpoint
from .fetch import FetchError, fetch_checkpoint
from .hosts import HostRegistry
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


def _folder(url: str) -> str:
    """The zone's checkpoints folder as a URL or path fsspec opens."""
    return url.rstrip("/") + "/checkpoints"


def zone_checkpoints(url: str) -> dict[int, list[str]]:
    """The checkpoint folder names in the zone, by step."""
    import fsspec
    fs, root = fsspec.core.url_to_fs(_folder(url))
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return {}
    out: dict[int, list[str]] = {}
    for entry in entries:
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        m = NAME_RE.match(name)
        if m:
            out.setdefault(int(m.group(1)), []).append(name)
    return out


def checkpoint_by_step(home: Path, step: int, cache: Path) -> Path:
    """Step `step`'s checkpoint folder on this machine, fetched from the shared zone (or
    found in `cache`): UnknownCheckpoint when there is no shared zone, when it holds no
    such step (exactly that step: never a neighbour), or when its copy is not a complete
    checkpoint of that step."""
    url = shared_zone(home)
    if url is None:
        raise UnknownCheckpoint(f"step {step} is not on this machine, and hosts.toml names no shared "
                                "zone (a host with the \"storage\" role and a models_dir) to fetch it from")
    steps = zone_checkpoints(url)
    if step not in steps:
        raise UnknownCheckpoint(f"no checkpoint at step {step} in the shared zone {url}; "
                                f"steps there: {sorted(steps)[-20:]}")
    # A re-run of a step is dated; the latest date is the checkpoint of record.
    sources = [f"{_folder(url)}/{name}" for name in sorted(steps[step], reverse=True)]
    try:
        return fetch_checkpoint(step, sources, cache)
    except FetchError as e:
        raise UnknownCheckpoint(f"step {step} in the shared zone {url}: {e}") from e
