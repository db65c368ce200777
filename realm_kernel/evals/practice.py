"""Quests the realm writes for DIO: a skill's problems, the curriculum's next quest,
targeted practice on weak primitives and sparring from wrong answers. Every one is
published through quests.publish (stage -> validate -> rename -> ledger row -> event)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import realm_skills as skills
from realm_skills.evaluation import EvalResult
from realm_skills.sparring import SPARRING_SEED, check_sparring, sparring_examples, targeted_problems

from ..quests.formats import QuestError
from ..quests.publish import publish, withdraw
from ..quests.queue import list_queue
from ..store.home import Home
from ..store.paths import PRIORITIES
from . import curriculum, placement
from .grading import fresh_seed
from .skillbook import primitive_accuracy, skill_state


class SparringError(ValueError):
    pass


def skill_quest(home: Home, skill: str, level: int, count: int, seed: int | None = None) -> Path:
    """`count` problems of a skill level into the inbox."""
    seed = int(time.time()) if seed is None else seed
    problems = skills.generate(skill, level, count, seed)
    name = f"{skill}-L{level}-{count}-s{seed}.jsonl"
    out = publish(home.paths, home.ledger, home.safe_config(), name, [p.as_example() for p in problems])
    return Path(out["path"])


def curriculum_quest(home: Home, seed: int | None = None) -> dict | None:
    """The curriculum's next quest (skill by priority, its current level plus review)
    into the inbox; queued curriculum quests of a level the skill has left are withdrawn
    first. None when no skill is enabled."""
    cfg = home.safe_config().curriculum
    plans = curriculum.plan(home.ledger, cfg)
    withdrawn = []
    queue = list_queue(home.paths)
    for state in PRIORITIES:
        for e in queue[state]:
            parsed = curriculum.parse_name(e["name"])
            here = next((p for p in plans if parsed and p["skill"] == parsed[0]), None)
            if here and parsed[1] != here["level"]:
                try:
                    withdraw(home.paths, home.ledger, e["name"])
                    withdrawn.append(e["name"])
                except (QuestError, FileNotFoundError, ValueError):
                    pass  # the daemon took it meanwhile
    chosen = curriculum.pick(plans, curriculum.generated_counts(home.ledger))
    if chosen is None:
        return None
    seed = fresh_seed(seed)
    name = curriculum.quest_name(chosen["skill"], chosen["level"], seed)
    # The rows are pure computation (on a cluster node in cluster mode); publishing them,
    # and with it the `quest_generated` event, stays here (the one ledger writer).
    made, where = placement.placed(
        home, name, {"task": "generate", "quest": name, "skill": chosen["skill"], "level": chosen["level"]},
        curriculum.quest_rows, plans, chosen, cfg.quest_examples, cfg.review_fraction,
        cfg.review_window, seed)
    n = len(made["examples"])
    data = {"skill": chosen["skill"], "level": chosen["level"], "quest": name,
            "examples": n, "review_levels": chosen["review_levels"],
            "review": made["review"], "mix": made["mix"], "seed": seed,
            "withdrawn": withdrawn, **(where or {})}
    publish(home.paths, home.ledger, home.safe_config(), name, made["examples"],
            event=("quest_generated", f"New quest: {chosen['name']} L{chosen['level']} "
                                      f"({n} problems)", data))
    return data


def targeted_quest(home: Home, skill: str, level: int | None = None, count: int = 200,
                   threshold: float = 0.8, seed: int | None = None) -> Path:
    """Practice weighted to the primitives under the threshold in the latest eval of the
    level (default: the skill's current level), into queue/high."""
    level = skill_state(home.ledger, skill).level if level is None else level
    acc = primitive_accuracy(home.ledger, skill, level)
    if not acc:
        raise skills.SkillError(f"no eval of {skill} level {level} in the ledger yet")
    seed = fresh_seed(seed)
    problems = targeted_problems(skill, level, acc, count, seed, threshold)
    name = f"target-{skill}-L{level}-{count}-s{seed}.jsonl"
    out = publish(home.paths, home.ledger, home.safe_config(), name,
                  [p.as_example() for p in problems], queue="high")
    return Path(out["path"])


def sparring_quest(home: Home, examples: Sequence[dict], name: str) -> Path:
    """Sparring examples, checked as sparring and as a quest, into queue/high."""
    why = check_sparring(examples)
    if why:
        raise SparringError("; ".join(why[:5]))
    try:
        out = publish(home.paths, home.ledger, home.safe_config(), name, list(examples), queue="high")
    except QuestError as e:
        raise SparringError(str(e)) from None
    return Path(out["path"])


def spar_result(home: Home, result: EvalResult, seed: int | None = None) -> Path:
    """Sparring from an eval's wrong answers: 3 examples each, into queue/high."""
    if not result.wrong:
        raise SparringError("every answer was right: nothing to spar about")
    examples = sparring_examples(result, SPARRING_SEED if seed is None else seed)
    name = f"sparring-{result.skill}-L{result.level}-{len(result.wrong)}w-{time.time_ns()}.jsonl"
    return sparring_quest(home, examples, name)
