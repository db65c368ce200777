"""The one grading path: pick problems -> ask the model -> score -> record.

The eval queue, sparring, the Oracle's "Ask DIO" probe and `realm skills eval` all grade
through here; they differ only in who answers (`Ask`: batched greedy decoding of a
checkpoint, or the Oracle's chat) and in whether the result is recorded. Recording is
where the level-up rule and champion promotion live, so every entry point that records
an eval levels the skill up the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import realm_skills as skills
from realm_skills.evaluation import EvalResult, eval_problems, run_eval

from ..oracle import answering
from ..store.home import Home
from ..store.ledger import json_data
from ..store.queries import has_event
from .champion import promote
from .skillbook import record_eval, skill_state

# Who answers: questions and their golden answers (for an answer budget) -> answers.
Ask = Callable[[Sequence[str], Sequence[str]], list[str]]
# Checkpoints load one at a time: the eval queue answers several at once in threads (cluster
# mode falling back to this machine), and transformers' loading is not thread-safe: two
# concurrent loads left every later load in the process with an untied, freshly
# initialised lm_head (random answers), tests/evals/test_eval_backoff.py.
_loading = threading.Lock()


def fresh_seed(seed: int | None = None) -> int:
    """The seed given, or one from the clock (fresh problems each time)."""
    return time.time_ns() % 2**31 if seed is None else seed


def pick(skill: str, level: int, count: int | None = None, seed: int | None = None, *,
         eval_batch: bool = False) -> list[skills.Problem]:
    """The level's fixed eval batch (eval_batch: the eval seed, `count` or the YAML's
    eval size), else `count` fresh problems at `seed` (default: the clock)."""
    if eval_batch:
        return eval_problems(skill, level, size=count)
    return skills.generate(skill, level, count or 1, fresh_seed(seed))


def checkpoint_answers(path: str | Path, threads: int = 0,
                       on_backoff: answering.OnBackoff | None = None) -> tuple[Ask, dict]:
    """An `Ask` over a checkpoint directory: batched greedy answers, each exactly what
    unbatched greedy decoding gives. The dict collects the seconds spent answering and
    the out-of-memory back-offs (`on_backoff` hears each); a batch that had to shrink
    stays small for the rest of this checkpoint's asks (a probe asks many times)."""
    with _loading:
        model, tok = answering.load(path, threads)
    timing: dict[str, Any] = {"seconds": 0.0, "backoffs": [], "batch_size": answering.BATCH_SIZE}

    def ask(questions: Sequence[str], golden: Sequence[str]) -> list[str]:
        ans = answering.answer(model, tok, list(questions), answering.budget(tok, golden),
                               timing["batch_size"], on_backoff)
        timing["seconds"] += ans.seconds
        timing["backoffs"] += ans.backoffs
        timing["batch_size"] = ans.batch_size
        return ans.texts

    return ask, timing


def grade(problems: Sequence[skills.Problem], ask: Ask) -> EvalResult:
    """Ask every problem and score each answer with the skill's own strict scorer."""
    if not problems:
        raise skills.SkillError("nothing to grade: no problems")
    first = problems[0]
    answers = ask([p.question for p in problems], [p.answer for p in problems])
    return run_eval(first.skill, first.level, answers, problems=list(problems))


def record(home: Home, result: EvalResult, step: int | None = None,
           checkpoint: str | None = None) -> dict:
    """Store an eval (overall + per primitive), then apply the level-up rule: a level-up
    writes one `skill_level_up` event per (skill, level) and makes the checkpoint that
    earned it the champion. Returns run_id, level_before, level_after."""
    before = skill_state(home.ledger, result.skill).level
    run_id = record_eval(home.ledger, result, step, checkpoint)
    after = skill_state(home.ledger, result.skill).level
    if after > before:
        level_up(home, result.skill, before, after, step, checkpoint)
    return {"run_id": run_id, "level_before": before, "level_after": after}


def level_up(home: Home, skill: str, from_level: int, level: int, step: Any,
             checkpoint: str | None) -> None:
    key = f"level_up:{skill}:{level}"
    if has_event(home.ledger, key):
        return
    home.ledger.event("skill_level_up", f"Skill level up! {skill.upper()} {level}",
                      json_data({"skill": skill, "level": level, "from_level": from_level,
                                 "step": step, "checkpoint": checkpoint}), key=key)
    if step is None:
        return
    try:
        promote(home, int(step))
    except Exception as e:  # a champion is a bonus; the level-up stands without it
        home.ledger.event("champion_error", f"could not promote {checkpoint or step}: {e}")


def probe(ask_one: Callable[[str], str], skill: str, level: int, seed: int | None = None) -> dict:
    """"Ask DIO": one fresh problem of the level, graded like any eval (not recorded)."""
    seed = fresh_seed(seed)
    problem = pick(skill, level, 1, seed)[0]
    replies: list[str] = []

    def ask(questions: Sequence[str], golden: Sequence[str]) -> list[str]:
        replies.extend(ask_one(q) for q in questions)
        return replies

    result = grade([problem], ask)
    return {"skill": skill, "level": level, "seed": seed, "question": problem.question,
            "primitive_id": problem.primitive_id, "expected": problem.final,
            "correct": result.correct == 1}
