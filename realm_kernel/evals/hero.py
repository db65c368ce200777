"""Pure functions from ledger facts to DIO's stats. No I/O here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

STEPS_PER_LEVEL = 1000
GOLD_PER_QUEST = 100


@dataclass(frozen=True)
class HeroStats:
    name: str
    level: int
    xp: int
    xp_into_level: int
    xp_per_level: int
    atk: float | None
    defense: float | None
    acc: float | None
    gold: int
    loss: float | None
    val_loss: float | None
    quests_completed: int
    def_loss: float | None = None  # the loss on the fixed held-out set, DEF's source

    def as_dict(self) -> dict:
        return asdict(self)


def inverse(x: float | None) -> float | None:
    """ATK = 1/loss, DEF = 1/def_loss; undefined until there is a finite positive loss."""
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    return round(1.0 / x, 3)


def hero_stats(*, name: str, steps: int, loss: float | None, val_loss: float | None,
               accuracy: float | None, quests_completed: int,
               def_loss: float | None = None) -> HeroStats:
    """DEF is 1/the loss on the skill level's fixed held-out set (the same examples every
    day); a realm whose quests name no skill has none, and DEF falls back to 1/val_loss,
    the quest's own held-out slice."""
    steps = max(0, int(steps or 0))
    return HeroStats(
        name=name,
        level=steps // STEPS_PER_LEVEL,
        xp=steps,
        xp_into_level=steps % STEPS_PER_LEVEL,
        xp_per_level=STEPS_PER_LEVEL,
        atk=inverse(loss),
        defense=inverse(def_loss if def_loss is not None else val_loss),
        acc=None if accuracy is None else round(float(accuracy), 4),
        gold=max(0, int(quests_completed)) * GOLD_PER_QUEST,
        loss=loss,
        val_loss=val_loss,
        quests_completed=int(quests_completed),
        def_loss=def_loss,
    )
