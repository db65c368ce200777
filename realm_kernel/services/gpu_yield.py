"""The daemon lends the GPU to a waiting eval, so evals never starve on a busy card.

On one GPU the curriculum keeps the daemon training without a break, and the Task
Master's inference tasks wait for the GPU to fall under `gpu_threshold`: the eval queue
(and with it every level-up) would wait for ever. So the Task Master, when the eval queue
has work and only the busy GPU stops it, writes control/yield.json (which task asks,
until when); the daemon, at its next quest boundary, starts no quest while the request is
live and says so (battle state "yielding"); the Task Master runs the eval on the lent GPU
and removes the file once the queue is empty. A request past its deadline is void, so a
Task Master that dies never holds training up for longer than `[taskmaster] gpu_yield_s`.
"""

from __future__ import annotations

import time

from ..store.paths import RealmPaths, atomic_write_json, read_json
from ..store.status import TRAINING, read_status

YIELDING = "yielding"  # the daemon's battle state while it lends the GPU


def _file(paths: RealmPaths):
    return paths.control / "yield.json"


def request(paths: RealmPaths, task_id: str, seconds: float) -> dict:
    data = {"task": task_id, "asked": time.time(), "until": time.time() + seconds}
    atomic_write_json(_file(paths), data)
    return data


def current(paths: RealmPaths) -> dict | None:
    """The live request, or None (none, unreadable, or past its deadline)."""
    data = read_json(_file(paths), None)
    if not isinstance(data, dict) or float(data.get("until") or 0) <= time.time():
        return None
    return data


def release(paths: RealmPaths) -> None:
    _file(paths).unlink(missing_ok=True)


def granted(paths: RealmPaths) -> bool:
    """A live request that the daemon honours now (it reports the yielding state)."""
    return current(paths) is not None and read_status(paths, TRAINING).get("state") == YIELDING
