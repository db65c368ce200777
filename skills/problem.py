"""The Problem record every skill generator returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Problem:
    skill: str
    level: int
    primitive_id: str
    question: str
    answer: str
    metadata: dict = field(default_factory=dict)

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
