"""Helpers shared by the skill tests."""

from __future__ import annotations

from realm_skills import Problem

_FLIP = {"⓪": "①", "①": "⓪", "<": ">", ">": "=", "=": "<"}


def perturb(text: str) -> str:
    """The same answer with the last character of its final line changed."""
    lines = text.rstrip().splitlines()
    last = lines[-1]
    c = last[-1]
    if c in _FLIP:
        new = _FLIP[c]
    elif c.isalpha():
        new = "a" if c.lower() != "a" else "b"
        new = new.upper() if c.isupper() else new
    else:
        new = c + "x"
    return "\n".join([*lines[:-1], last[:-1] + new])


def wrong_answer(p: Problem) -> str:
    return perturb(p.answer)
