"""Small status files for cheap polling (atomic writes, readers never see half)."""

from __future__ import annotations

import time

from .paths import RealmPaths, atomic_write_json, read_json

TRAINING = "training.json"
DAEMON = "daemon.json"
WEAVER = "weaver.json"


def write_status(paths: RealmPaths, name: str, *, write=atomic_write_json, **fields: object) -> dict:
    """The status file `name`, stamped now; `write(path, data)` may queue it for another
    thread to write (the trainer's MetricBuffer.put_file)."""
    data = {**fields, "updated": time.time()}
    write(paths.status / name, data)
    return data


def read_status(paths: RealmPaths, name: str) -> dict:
    data = read_json(paths.status / name, {})
    return data if isinstance(data, dict) else {}
