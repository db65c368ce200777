"""Achievements: milestones computed from ledger facts and appended once each to the
`achievements` table (with an "achievement" event the Tavern's toasts show), and the
"hero_level_up" event when the global step crosses a multiple of 1000.

Any process may award (the daemon after checkpoints and quests, the API after a
promotion); two processes racing on the same milestone can both append it, so readers
take the earliest row per id (`earned()`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..store.ledger import Ledger
from ..store.queries import achievement_facts, achievement_ids, earned_achievements, hero_step
from .hero import STEPS_PER_LEVEL

STEP_MILESTONES = (1_000, 10_000, 100_000)
QUEST_MILESTONES = (1, 10, 100)
SKILL_LEVEL_MILESTONES = (2, 5, 10, 20, 30, 40, 50)
SPARRING_ROUNDS = 100  # a round = one wrong answer sparred (3 examples)
_lock = threading.Lock()


@dataclass(frozen=True)
class Achievement:
    achievement_id: str
    name: str
    description: str
    icon: str


def _skill_levels(ledger: Ledger) -> dict[str, tuple[str, int, int]]:
    import realm_skills as skills

    from .skillbook import skill_state
    out = {}
    for sid in skills.skill_ids():
        d = skills.skill_def(sid)
        out[sid] = (d.name, skill_state(ledger, sid).level, d.max_level)
    return out


def reached(ledger: Ledger) -> list[Achievement]:
    """Every achievement the ledger's facts have earned (earned before or not)."""
    f = achievement_facts(ledger)
    got: list[Achievement] = []
    for n in QUEST_MILESTONES:
        if f["completed"] >= n:
            got.append(Achievement(f"quests_{n}", "First quest" if n == 1 else f"{n} quests",
                                   f"Complete {n} quest{'s' if n > 1 else ''}", "📜"))
    for n in STEP_MILESTONES:
        if f["steps"] >= n:
            got.append(Achievement(f"steps_{n}", f"{n // 1000}k steps", f"Train {n:,} steps", "👣"))
    if f["checkpoints"]:
        got.append(Achievement("first_checkpoint", "First checkpoint", "Save a checkpoint", "💾"))
    if f["champions"]:
        got.append(Achievement("first_champion", "First champion", "Promote a champion", "🏆"))
    if f["evals"]:
        got.append(Achievement("first_eval", "First trial", "Evaluate a checkpoint on a skill", "🧪"))
    if f["sparring_examples"] // 3 >= SPARRING_ROUNDS:
        got.append(Achievement(f"sparring_{SPARRING_ROUNDS}", f"{SPARRING_ROUNDS} sparring rounds",
                               f"Spar over {SPARRING_ROUNDS} wrong answers", "🥊"))
    for sid, (name, level, max_level) in _skill_levels(ledger).items():
        for n in SKILL_LEVEL_MILESTONES:
            if n <= max_level and level >= n:
                got.append(Achievement(f"skill_{sid}_{n}", f"{name} level {n}",
                                       f"Reach level {n} in {name}", "⭐"))
    return got


def earned(ledger: Ledger) -> list[dict]:
    """Earned achievements, oldest first, each once (the earliest row wins)."""
    rows = earned_achievements(ledger)
    return [{**r, "date": r["ts"].isoformat(timespec="seconds"), "ts": r["ts"].timestamp()}
            for r in rows]


def award(ledger: Ledger) -> list[dict]:
    """Append the achievements reached but not yet earned; returns the new ones."""
    with _lock:
        have = achievement_ids(ledger)
        new = [a for a in reached(ledger) if a.achievement_id not in have]
        if not new:
            return []
        step = hero_step(ledger)
        rows = [{"achievement_id": a.achievement_id, "name": a.name, "description": a.description,
                 "step": step} for a in new]
        ledger.append("achievements", rows)
        for a in new:
            ledger.event("achievement", f"Achievement unlocked: {a.icon} {a.name}",
                         json.dumps({"achievement_id": a.achievement_id, "step": step}),
                         key=f"achievement:{a.achievement_id}")
        return rows


def hero_level_ups(ledger: Ledger, name: str, from_step: int, to_step: int) -> list[int]:
    """A "hero_level_up" event for each multiple of 1000 crossed from from_step to to_step."""
    levels = list(range(from_step // STEPS_PER_LEVEL + 1, to_step // STEPS_PER_LEVEL + 1))
    for level in levels:
        ledger.event("hero_level_up", f"Level up! {name} reached Level {level}",
                     json.dumps({"level": level, "step": to_step}))
    return levels


def hero_progress(ledger: Ledger, hero_name: str) -> Callable[[int, int, Callable[[], None]], None]:
    """A training job's on_progress hook: a hero level every STEPS_PER_LEVEL steps, its
    event written after the metrics behind it (flush)."""
    def on_progress(prev_step: int, step: int, flush: Callable[[], None]) -> None:
        if step // STEPS_PER_LEVEL > prev_step // STEPS_PER_LEVEL:
            flush()
            hero_level_ups(ledger, hero_name, prev_step, step)
    return on_progress
