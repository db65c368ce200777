"""Sparring: learning from an eval's wrong answers, and practice aimed at weak primitives.

Each wrong answer becomes three chat examples:
  identify_wrong  problem + the wrong answer + "Is this correct?"  -> "It is incorrect."
  correct_it      problem + the wrong answer + "This is incorrect. Find the correct
                  solution."                                       -> the golden answer
  confirm_right   a fresh problem of the same primitive + its golden answer +
                  "Is this correct?"                               -> "It is correct."
Sparring is specific to the checkpoint that answered, so it goes to queue/high.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .evaluation import EvalResult
from .loader import SkillError
from .problem import Problem, final_answer
from .registry import generate, score

ASK_CHECK = "Is this correct?"
ASK_FIX = "This is incorrect. Find the correct solution."
SAYS_WRONG = "It is incorrect."
SAYS_RIGHT = "It is correct."
KINDS = ("identify_wrong", "correct_it", "confirm_right")
# Fresh problems for confirm_right come from their own seed stream.
SPARRING_SEED = 7_919


def _shown(problem: Problem, answer: str, ask: str) -> str:
    return f"{problem.question}\n\nProposed answer:\n{answer.strip()}\n\n{ask}"


def _example(problem: Problem, user: str, assistant: str, kind: str, shown: str) -> dict:
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}],
            "meta": {"skill": problem.skill, "level": problem.level,
                     "primitive_id": problem.primitive_id, "sparring": kind,
                     "golden": problem.final, "shown": final_answer(shown)}}


def examples_for(problem: Problem, wrong_answer: str, fresh: Problem) -> list[dict]:
    """The three sparring examples of one wrong answer."""
    if score(problem, wrong_answer):
        raise SkillError("that answer is correct: nothing to spar about")
    return [
        _example(problem, _shown(problem, wrong_answer, ASK_CHECK), SAYS_WRONG,
                 "identify_wrong", wrong_answer),
        _example(problem, _shown(problem, wrong_answer, ASK_FIX), problem.answer,
                 "correct_it", wrong_answer),
        _example(fresh, _shown(fresh, fresh.answer, ASK_CHECK), SAYS_RIGHT,
                 "confirm_right", fresh.answer),
    ]


def sparring_examples(result: EvalResult, seed: int = SPARRING_SEED) -> list[dict]:
    """3 examples per wrong answer of an eval; fresh problems share the primitive."""
    wrong = result.wrong
    by_prim: dict[str, list] = {}
    for item in wrong:
        by_prim.setdefault(item.problem.primitive_id, []).append(item)
    out: list[dict] = []
    for pid, items in by_prim.items():
        asked = {i.problem.question for i in items}
        pool = [p for p in generate(result.skill, result.level, 2 * len(items), seed,
                                    weights={pid: 1.0}) if p.question not in asked]
        pool = pool or generate(result.skill, result.level, len(items), seed + 1, weights={pid: 1.0})
        for k, item in enumerate(items):
            out += examples_for(item.problem, item.answer, pool[k % len(pool)])
    return out


def check_sparring(examples: Sequence[Mapping]) -> list[str]:
    """What is wrong with a list of sparring examples (empty when they are sound)."""
    problems: list[str] = []
    counts = dict.fromkeys(KINDS, 0)
    for n, ex in enumerate(examples, start=1):
        meta = ex.get("meta") or {}
        kind = meta.get("sparring")
        msgs = ex.get("messages") or []
        if kind not in KINDS:
            problems.append(f"example {n}: meta.sparring is {kind!r}; expected one of {KINDS}")
            continue
        counts[kind] += 1
        if len(msgs) != 2 or [m.get("role") for m in msgs] != ["user", "assistant"]:
            problems.append(f"example {n}: expected one user and one assistant message")
            continue
        user, reply = msgs[0]["content"], msgs[1]["content"]
        golden, shown = meta.get("golden"), meta.get("shown")
        if not golden:
            problems.append(f"example {n}: meta.golden (the golden final answer) is missing")
            continue
        ask = ASK_FIX if kind == "correct_it" else ASK_CHECK
        if not user.rstrip().endswith(ask):
            problems.append(f"example {n} ({kind}): the prompt must end with {ask!r}")
        if "Proposed answer:" not in user:
            problems.append(f"example {n} ({kind}): the prompt shows no proposed answer")
        if kind == "identify_wrong" and (reply != SAYS_WRONG or shown == golden):
            problems.append(f"example {n} (identify_wrong): a wrong answer must get {SAYS_WRONG!r}")
        if kind == "correct_it" and (final_answer(reply) != golden or shown == golden):
            problems.append(f"example {n} (correct_it): the reply must end with the golden "
                            f"answer {golden!r} and the shown answer must be wrong")
        if kind == "confirm_right" and (reply != SAYS_RIGHT or shown != golden):
            problems.append(f"example {n} (confirm_right): a golden answer must get {SAYS_RIGHT!r}")
    if len(set(counts.values())) > 1:
        problems.append(f"unbalanced sparring set {counts}: each wrong answer gives one of each kind")
    if not examples:
        problems.append("no sparring examples")
    return problems


# -- targeted sparring ---------------------------------------------------------------

def weak_primitives(accuracy: Mapping[str, float], threshold: float = 0.8) -> list[tuple[str, float]]:
    """Primitives under the threshold, weakest first."""
    return sorted(((p, a) for p, a in accuracy.items() if a < threshold), key=lambda x: (x[1], x[0]))


def targeted_weights(accuracy: Mapping[str, float], threshold: float = 0.8,
                     floor: float = 0.05) -> dict[str, float]:
    """Generation weights for practice: only weak primitives, the weakest most."""
    weak = weak_primitives(accuracy, threshold)
    if not weak:
        raise SkillError(f"no primitive is under {threshold:.0%}: nothing to target")
    return {p: max(threshold - a, floor) for p, a in weak}


def targeted_problems(skill: str, level: int, accuracy: Mapping[str, float], count: int,
                      seed: int, threshold: float = 0.8) -> list[Problem]:
    """Practice problems of a level weighted to its primitives under the threshold."""
    from . import level_def
    mine = {p: a for p, a in accuracy.items() if p in level_def(skill, level).primitives}
    return generate(skill, level, count, seed, weights=targeted_weights(mine, threshold))
