"""The curriculum: which skill DIO practises next, at which level, with how much review.

Per skill the current level is the level-up rule replayed over the ledger's evals
(skillbook.skill_state). A generated quest is `quest_examples` problems: the current
level, plus `review_fraction` of them spread evenly over the last `review_window` earlier
levels, so a level-up does not cost the levels below it. The current level's problems
come first in the file: the daemon tags the quest's checkpoints with the first example's
skill and level, and those checkpoints are evaluated on that skill.

Skills take turns by priority (the Scheduler settings, [curriculum.skills.<id>] in
realm.toml): the next quest is led by the enabled skill with the fewest generated quests
per unit of priority, and every quest is split between the enabled skills by priority
(`mixed_problems`). Alternating whole quests of BIN and SY (75 steps each) measured as
catastrophic: each skill forgot the other's quest in between and neither levelled up in
14 minutes (BIN stuck at 28%, SY at 0%); mixed quests keep both in every batch.
"""

from __future__ import annotations

import collections
import random
import re
import time
from pathlib import Path

import realm_skills as skills

from ..store.config import CurriculumConfig
from ..store.home import Home
from ..store.ledger import Ledger
from ..store.queries import generated_quest_counts
from .skillbook import skill_state

QUEST_PREFIX = "curriculum-"
_NAME = re.compile(rf"^{QUEST_PREFIX}(?P<skill>[a-z0-9_]+)-L(?P<level>\d+)-")


def review_levels(level: int, window: int) -> list[int]:
    return list(range(max(1, level - window), level))


def plan(ledger: Ledger, cfg: CurriculumConfig) -> list[dict]:
    """Per skill: where it stands and what the next quest of it would hold."""
    out = []
    for skill_id in skills.skill_ids():
        d = skills.skill_def(skill_id)
        setting = cfg.skills.get(skill_id)
        state = skill_state(ledger, skill_id)
        out.append({"skill": skill_id, "name": d.name, "icon": d.icon, "level": state.level,
                    "max_level": d.max_level, "recent": list(state.recent),
                    "review_levels": review_levels(state.level, cfg.review_window),
                    "priority": setting.priority if setting else 0,
                    "enabled": bool(setting and setting.enabled and setting.priority > 0)})
    return out


def plan_of(home: Home) -> list[dict]:
    """plan() with the realm's own [curriculum] settings (defaults while realm.toml is broken)."""
    return plan(home.ledger, home.safe_config().curriculum)


def generated_counts(ledger: Ledger) -> dict[str, int]:
    return {r["skill"]: r["n"] for r in generated_quest_counts(ledger) if r["skill"]}


def pick(plans: list[dict], counts: dict[str, int]) -> dict | None:
    """The enabled skill furthest behind its share; None when no skill is enabled."""
    on = live(plans)
    if not on:
        return None
    return min(on, key=lambda p: (counts.get(p["skill"], 0) / p["priority"], -p["priority"], p["skill"]))


def problems(skill: str, level: int, count: int, review_fraction: float, window: int,
             seed: int) -> list[skills.Problem]:
    """`count` problems: the current level first, then review of earlier levels."""
    earlier = review_levels(level, window)
    n_review = round(count * review_fraction) if earlier else 0
    current = skills.generate(skill, level, count - n_review, seed)
    review: list[skills.Problem] = []
    for i, lv in enumerate(earlier):
        share = n_review // len(earlier) + (1 if i < n_review % len(earlier) else 0)
        review += skills.generate(skill, lv, share, seed + lv)
    # Keep one current-level problem first (it names the quest's skill and level for the
    # daemon); the rest is shuffled so review is spread through the quest.
    rest = current[1:] + review
    random.Random(seed).shuffle(rest)
    return current[:1] + rest


def live(plans: list[dict]) -> list[dict]:
    """The skills still being trained: enabled, priority > 0, and not finished."""
    return [p for p in plans if p["enabled"] and not (p["level"] == p["max_level"] and
                                                      len(p["recent"]) >= 3 and min(p["recent"]) >= 0.8)]


def shares(plans: list[dict], count: int, lead: str) -> dict[str, int]:
    """`count` examples split between the live skills by priority (the lead skill takes
    the rounding, and at least one)."""
    on = live(plans)
    total = sum(p["priority"] for p in on) or 1
    out = {p["skill"]: count * p["priority"] // total for p in on if p["skill"] != lead}
    out = {k: v for k, v in out.items() if v > 0}
    out[lead] = max(1, count - sum(out.values()))
    return out


def mixed_problems(plans: list[dict], lead: dict, count: int, review_fraction: float, window: int,
                   seed: int) -> list[skills.Problem]:
    """A quest led by `lead` (its current level first: it names the quest), with every
    other live skill's share at that skill's own level, shuffled through the rest."""
    split = shares(plans, count, lead["skill"])
    first = problems(lead["skill"], lead["level"], split[lead["skill"]], review_fraction, window, seed)
    rest = list(first[1:])
    for p in plans:
        if p["skill"] != lead["skill"] and p["skill"] in split:
            rest += problems(p["skill"], p["level"], split[p["skill"]], review_fraction, window, seed + 7)
    random.Random(seed + 1).shuffle(rest)
    return first[:1] + rest


def quest_rows(plans: list[dict], lead: dict, count: int, review_fraction: float, window: int,
               seed: int) -> dict:
    """A curriculum quest's examples (`mixed_problems`, as training rows), with how many
    are review of the lead skill's earlier levels and the mix of skills: plain data, the
    same for the same seed wherever it is made (a cluster node makes it in cluster mode)."""
    problems = mixed_problems(plans, lead, count, review_fraction, window, seed)
    return {"examples": [p.as_example() for p in problems],
            "review": sum(p.level != lead["level"] and p.skill == lead["skill"] for p in problems),
            "mix": dict(sorted(collections.Counter(p.skill for p in problems).items()))}


def quest_name(skill: str, level: int, seed: int) -> str:
    return f"{QUEST_PREFIX}{skill}-L{level}-{time.strftime('%Y%m%d-%H%M%S')}-s{seed}.jsonl"


def parse_name(name: str) -> tuple[str, int] | None:
    """(skill, level) of a curriculum quest's file name, else None."""
    m = _NAME.match(Path(name).name)
    return (m["skill"], int(m["level"])) if m else None
