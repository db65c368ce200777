"""Small status files for cheap polling (atomic writes, readers never see half)."""

from __future__ import annotations

import time

from .paths import RealmPaths, atomic_write_json, read_json

TRAINING = "training.json"
DAEMON = "daemon.json"
WEAVER = "weaver.json"


def write_status(paths: RealmPaths, name: str, **fields: object) -> dict:
    data = {**fields, "updated": time.time()}
    atomic_write_json(paths.status / name, data)
    return data


def read_status(paths: RealmPaths, name: str) -> dict:
    data = read_json(paths.status / name, {})
    return data if isinstance(data, dict) else {}
