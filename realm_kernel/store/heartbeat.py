"""The training heartbeat and the hang rule.

The trainer's callback beats once per step into status/heartbeat.json: its pid, the
phase it enters (`step`: the next optimizer step; `saving`: a checkpoint save and/or an
eval follow), the hero's step and the slowest of its recent step times. The Weaver's
watchdog reads it (`overdue`) and calls a step hung when it has taken far longer than
the recent ones: `factor` x the slowest of the last 20 steps, never under a floor. The
floor covers what recent steps cannot predict: the first steps (model load, warm-up,
allocator growth) and saves/evals (a 0.6B model's optimizer state to a slow disk).
"""

from __future__ import annotations

import os
import time
from collections import deque

from .paths import RealmPaths, atomic_write_json, read_json

HEARTBEAT = "heartbeat.json"
RECENT = 20  # steps whose slowest time sets the bound
MIN_RECENT = 3  # fewer steps than this: the floor alone


class Heartbeat:
    """Kept by the training process: one beat per step boundary."""

    def __init__(self, paths: RealmPaths, write=None) -> None:
        """write(path, data, urgent): how a beat reaches the file (default: at once; the
        trainer queues step beats for its writer thread and hurries the others)."""
        self.path = paths.status / HEARTBEAT
        self.write = write or (lambda path, data, urgent: atomic_write_json(path, data))
        self.recent: deque[float] = deque(maxlen=RECENT)
        self._last: float | None = None
        self._phase = "start"

    def beat(self, phase: str, step: int) -> None:
        now = time.monotonic()
        if self._last is not None and self._phase == "step":  # saves don't set the pace
            self.recent.append(now - self._last)
        self._last, self._phase = now, phase
        self.write(self.path, {
            "pid": os.getpid(), "phase": phase, "step": step, "at": time.time(),
            "recent_max_s": max(self.recent) if len(self.recent) >= MIN_RECENT else None,
            "steps_seen": len(self.recent)}, phase != "step")

    def end(self) -> None:
        self._last, self._phase = None, "start"
        self.write(self.path, {"pid": os.getpid(), "phase": "idle", "at": time.time()}, True)


def read_beat(paths: RealmPaths) -> dict:
    data = read_json(paths.status / HEARTBEAT, {})
    return data if isinstance(data, dict) else {}


def hang_bound(beat: dict, factor: float, floor_s: float, save_floor_s: float) -> float | None:
    """Seconds after the beat at which the phase it started counts as hung; None when
    the phase is not watched (idle, between quests)."""
    phase = beat.get("phase")
    if phase not in ("start", "step", "saving"):
        return None
    floor = save_floor_s if phase == "saving" else floor_s
    recent = beat.get("recent_max_s")
    return max(floor, factor * recent) if recent else floor


def overdue(beat: dict, pid: int | None, factor: float, floor_s: float, save_floor_s: float,
            now: float | None = None) -> float | None:
    """How many seconds the beat of process `pid` is past its bound (None: not hung)."""
    if not beat or pid is None or beat.get("pid") != pid:
        return None
    bound = hang_bound(beat, factor, floor_s, save_floor_s)
    if bound is None:
        return None
    late = (now or time.time()) - float(beat.get("at", 0)) - bound
    return late if late > 0 else None
