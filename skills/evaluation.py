"""Evals: overall and per-primitive accuracy, and the level-up rule (`SkillState`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .loader import SkillError
from .problem import Problem
from .registry import generate, score, skill_def

# Evals draw from their own seed, apart from the time-seeded training quests.
EVAL_SEED = 2_147_483_647


@dataclass(frozen=True)
class PrimitiveScore:
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class EvalItem:
    problem: Problem
    answer: str
    correct: bool


@dataclass(frozen=True)
class EvalResult:
    skill: str
    level: int
    items: list[EvalItem]
    per_primitive: dict[str, PrimitiveScore]

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def correct(self) -> int:
        return sum(i.correct for i in self.items)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def per_primitive_accuracy(self) -> dict[str, float]:
        return {p: s.accuracy for p, s in self.per_primitive.items()}

    @property
    def wrong(self) -> list[EvalItem]:
        return [i for i in self.items if not i.correct]

    def summary(self) -> dict:
        return {"skill": self.skill, "level": self.level, "n": self.n, "correct": self.correct,
                "accuracy": self.accuracy, "per_primitive": {
                    p: {"n": s.n, "correct": s.correct, "accuracy": s.accuracy}
                    for p, s in self.per_primitive.items()}}


def eval_problems(skill: str, level: int, seed: int = EVAL_SEED, size: int | None = None) -> list[Problem]:
    """The eval batch of a level: `eval_size` problems (from the YAML) at the eval seed."""
    return generate(skill, level, skill_def(skill).eval_size if size is None else size, seed)


def score_all(problems: Sequence[Problem], answers: Sequence[str]) -> EvalResult:
    if len(problems) != len(answers):
        raise SkillError(f"{len(answers)} answers for {len(problems)} problems")
    if not problems:
        raise SkillError("an eval needs at least one problem")
    skill, level = problems[0].skill, problems[0].level
    items = [EvalItem(p, a, score(p, a)) for p, a in zip(problems, answers, strict=True)]
    counts: dict[str, list[int]] = {}
    for it in items:
        c = counts.setdefault(it.problem.primitive_id, [0, 0])
        c[0] += 1
        c[1] += it.correct
    return EvalResult(skill, level, items, {p: PrimitiveScore(n, k) for p, (n, k) in sorted(counts.items())})


def run_eval(skill: str, level: int, answers: Sequence[str],
             problems: Sequence[Problem] | None = None, seed: int = EVAL_SEED) -> EvalResult:
    """Score answers to a level's eval batch (or to the given problems), overall and per
    primitive. Answers are matched to problems by position."""
    if problems is None:
        problems = eval_problems(skill, level, seed, size=len(answers))
    wrong = [p for p in problems if (p.skill, p.level) != (skill, level)]
    if wrong:
        raise SkillError(f"problem of {wrong[0].skill} level {wrong[0].level} in an eval of "
                         f"{skill} level {level}")
    return score_all(problems, answers)


@dataclass
class SkillState:
    """A skill's level and the accuracies of its recent evals at that level.

    Level-up rule (from the YAML's `level_up`): accuracy >= `accuracy` on each of the
    last `consecutive_evals` evals at the current level moves to the next level, which
    starts with no history. Evals of other levels do not count. The top level is kept.
    """

    skill: str
    level: int = 1
    recent: list[float] = field(default_factory=list)

    def record(self, level: int, accuracy: float) -> bool:
        """Add one eval; True when it levelled the skill up."""
        if level != self.level:
            return False
        rule = skill_def(self.skill).level_up
        self.recent = [*self.recent, accuracy][-rule.consecutive_evals:]
        ready = len(self.recent) == rule.consecutive_evals and all(
            a >= rule.accuracy for a in self.recent)
        if ready and self.level < skill_def(self.skill).max_level:
            self.level += 1
            self.recent = []
            return True
        return False

    def record_result(self, result: EvalResult) -> bool:
        return self.record(result.level, result.accuracy)

    @property
    def mastered(self) -> bool:
        rule = skill_def(self.skill).level_up
        return (self.level == skill_def(self.skill).max_level
                and len(self.recent) == rule.consecutive_evals
                and all(a >= rule.accuracy for a in self.recent))

    @classmethod
    def replay(cls, skill: str, evals: Iterable[tuple[int, float]]) -> SkillState:
        """The state after a history of (level, accuracy) evals, oldest first."""
        state = cls(skill)
        for level, acc in evals:
            state.record(level, acc)
        return state

    def as_dict(self) -> dict:
        rule = skill_def(self.skill).level_up
        return {"skill": self.skill, "level": self.level, "recent": list(self.recent),
                "max_level": skill_def(self.skill).max_level, "mastered": self.mastered,
                "rule": {"accuracy": rule.accuracy, "consecutive_evals": rule.consecutive_evals}}
