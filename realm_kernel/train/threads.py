"""How many CPU threads the trainer takes on a machine it shares with the Task Master.

By default (`training.threads = 0`) a CPU trainer takes half the cores and leaves the
rest to the Task Master's notebooks (evals, quest generation, sparring): oversubscribed
OpenMP threads spin against each other (on a busy 2-core machine one training thread
ran dio-mini at 2.7 steps/s where two, oversubscribed, managed 0.7). While the Task
Master is alive and idle those cores stand empty, so the trainer borrows them at the next
step and gives them back at the first step after a task starts (`ThreadShare` in
callbacks.py reads the Task Master's status file, ~100 bytes, once a step). Without a
Task Master (`realm train`, tests) nothing is borrowed.
"""

from __future__ import annotations

import os

from ..store.paths import RealmPaths
from ..store.status import read_status

# services/taskmaster.py writes it (train/ sits below services/ and may not import it).
TASKMASTER_STATUS = "taskmaster.json"


def cpu_share() -> int:
    """Half the cores (at least one): what a CPU trainer takes when not told, leaving the
    rest to the Task Master's evals and the server."""
    return max(1, (os.cpu_count() or 2) // 2)


def all_cores() -> int:
    return max(1, os.cpu_count() or 1)


def taskmaster_idle(paths: RealmPaths) -> bool:
    """A Task Master is running and between tasks (its last heartbeat says "idle")."""
    return read_status(paths, TASKMASTER_STATUS).get("state") == "idle"
