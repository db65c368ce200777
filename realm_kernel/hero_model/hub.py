"""Hub ids as base models: `[hero] base_model = "Qwen/Qwen3-0.6B"`.

An id resolves to its snapshot in the local Hugging Face cache (`HF_HUB_CACHE`, by default
~/.cache/huggingface/hub), the same folder `transformers` and `hf download`
use, so a model fetched by any of them is found. `fetch()` downloads it once, with
huggingface_hub's progress bars, when the machine is online; offline (`HF_HUB_OFFLINE=1`,
or no network) it raises `HubModelMissing`, naming the id and the command that fetches it.
A value that names a folder (absolute, `~`, or relative to the realm home, or whose first
part is a folder there, like `models/...`) is a folder, never an id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# "org/name": the Hub's repo id form (letters, digits, - _ . in each part).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class HubModelMissing(RuntimeError):
    """A hub id that is not in the local cache and cannot be downloaded now."""


def is_hub_id(value: str, home: Path) -> bool:
    """"org/name" naming nothing on disk. A folder under the realm home wins, and so does a
    first part that is one (`models/my-qwen` is a path even before it is copied there)."""
    if not _HUB_ID.match(value) or value.startswith((".", "~")) or ".." in value:
        return False
    return not (home / value).exists() and not (home / value.split("/")[0]).is_dir()


def cache_dir() -> Path:
    from huggingface_hub import constants
    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes")


def cached(repo_id: str, repo_type: str = "model") -> Path | None:
    """The id's snapshot folder in the local cache (never downloads), or None when it is
    not there (for a model: not whole, a config.json at least)."""
    from huggingface_hub import snapshot_download
    try:
        path = Path(snapshot_download(repo_id, repo_type=repo_type, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, a malformed id, an unreadable cache
        return None
    return path if repo_type != "model" or (path / "config.json").exists() else None


def expected_path(repo_id: str) -> Path:
    """Where the cache keeps the id (for messages, and a path that does not exist yet)."""
    return cache_dir() / f"models--{repo_id.replace('/', '--')}"


def missing_message(repo_id: str, why: str = "this machine is offline") -> str:
    return (f"base_model {repo_id!r} is not in the local Hugging Face cache ({cache_dir()}) and "
            f"{why}: fetch it once where there is network with `hf download {repo_id}` "
            f"(the same cache; or copy the folder and set [hero] base_model to its path)")


def fetch(repo_id: str) -> Path:
    """The id's local snapshot, downloaded first (progress bars on stderr) when it is not
    cached and the machine is online."""
    path = cached(repo_id)
    if path is not None:
        return path
    if offline():
        raise HubModelMissing(missing_message(repo_id))
    from huggingface_hub import snapshot_download
    try:
        return Path(snapshot_download(repo_id))
    except Exception as e:  # no network, a wrong id, no access: say which, keep the id
        why = f"the download failed ({type(e).__name__}: {e})"
        raise HubModelMissing(missing_message(repo_id, why)) from e
