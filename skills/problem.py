"""The Problem record every skill generator returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ANSWER_MARK = "Answer:"


def final_answer(text: str) -> str:
    """The answer that scoring compares: the last non-empty line, stripped, with a
    leading `Answer:` mark removed (a worked solution may precede it)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line:
            if line.startswith(ANSWER_MARK):
                line = line[len(ANSWER_MARK):].strip()
            return line
    return ""


@dataclass(frozen=True)
class Problem:
    skill: str
    level: int
    primitive_id: str
    question: str
    answer: str  # the training target: optional worked solution, then the marked answer
    metadata: dict = field(default_factory=dict)
    final: str = ""  # the golden final answer (derived from `answer` when not given)

    def __post_init__(self) -> None:
        if not self.final:
            object.__setattr__(self, "final", final_answer(self.answer))

    def as_example(self) -> dict:
        """The chat-format quest example that teaches this problem."""
        return {
            "messages": [{"role": "user", "content": self.question},
                         {"role": "assistant", "content": self.answer}],
            "meta": {"skill": self.skill, "level": self.level,
                     "primitive_id": self.primitive_id},
        }

    def as_dict(self) -> dict:
        return asdict(self)
