"""Checkpoints fetched by step onto the machine that needs them: a cluster node's cache.

The head knows where a checkpoint lives (the checkpoint ledger and the vault catalogue)
and hands a node its sources: the checkpoint folder's URL in each zone that holds it
(`sftp://nas/realm/checkpoints/...`, `s3://bucket/...`, `file:///...` or a plain local
path), shared zones first. The node copies the first source that works into its cache
through fsspec, checks that the copy is complete and is exactly the step asked for (its
sidecar says so), and keeps it: the next task on that node for the same checkpoint reads
the cached folder and copies nothing.

A copy lands under a temporary name and is renamed into place, so a half-fetched
checkpoint is never found, and two tasks fetching the same step at once both end with
the one complete folder. No ledger is read or written here: a node may have none.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .confine import confine
from .paths import SIDECAR, checkpoint_complete, read_json

CACHE_ENV = "REALM_NODE_CACHE"


class FetchError(LookupError):
    """No source gave a complete checkpoint of the step asked for; says what each did."""


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """The node's checkpoint cache: `cache`, else REALM_NODE_CACHE, else
    ~/.cache/realm/checkpoints."""
    chosen = cache or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "realm" / "checkpoints"
    root = Path(chosen).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def is_step(path: Path, step: int) -> bool:
    """A complete checkpoint folder whose sidecar names exactly `step`."""
    if not checkpoint_complete(path):
        return False
    sidecar = read_json(path / SIDECAR, {})
    return isinstance(sidecar, dict) and sidecar.get("step") == step


def _name(source: str) -> str:
    return PurePosixPath(source.rstrip("/").split("://", 1)[-1]).name


def fetch_checkpoint(step: int, sources: Sequence[str],
                     cache: str | os.PathLike | None = None) -> Path:
    """The checkpoint of exactly `step` as a local folder on this node: the cached copy
    when there is one, else a copy of the first source that has it. FetchError when none
    does (each source's reason in the message)."""
    if not sources:
        raise FetchError(f"checkpoint at step {step}: no source to fetch it from")
    root = cache_root(cache)
    for source in sources:
        cached = confine(root, _name(source), what="checkpoint cache entry")
        if is_step(cached, step):
            return cached
    problems = []
    for source in sources:
        try:
            return _copy_in(source, step, root)
        except (OSError, ValueError, FetchError) as e:  # this source failed: try the next
            problems.append(f"{source}: {type(e).__name__}: {e}")
    raise FetchError(f"checkpoint at step {step} not fetched: " + "; ".join(problems))


def _copy_in(source: str, step: int, root: Path) -> Path:
    import fsspec  # only a node that fetches needs it

    dest = confine(root, _name(source), what="checkpoint cache entry")
    fs, path = fsspec.core.url_to_fs(source)
    if not fs.isdir(path):
        raise FetchError("no checkpoint folder there")
    staging = root / f".partial-{os.getpid()}-{time.time_ns()}"
    try:
        fs.get(path.rstrip("/"), str(staging), recursive=True)
        if not is_step(staging, step):
            raise FetchError(f"the copy is not a complete checkpoint of step {step}")
        try:
            os.replace(staging, dest)
        except OSError:
            if not is_step(dest, step):  # another task's copy of the same step won
                raise
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
