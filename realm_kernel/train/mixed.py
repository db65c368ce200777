"""Mixed-length chat data from the skills, for benchmarks and tests: 1-8 problems bundled
per example, so lengths vary as real quests' do (and padding costs what it costs)."""

from __future__ import annotations

import random

import realm_skills as skills


def mixed_examples(n: int, seed: int = 0, skill: str = "bin", level: int = 1,
                   max_bundle: int = 8) -> list[dict]:
    rng = random.Random(seed)
    problems = skills.generate(skill, level, n * max_bundle, seed=seed)
    out, i = [], 0
    while len(out) < n:
        k = rng.randint(1, max_bundle)
        chunk = problems[i:i + k]
        i += k
        out.append({"messages": [
            {"role": "user", "content": "\n".join(p.question for p in chunk)},
            {"role": "assistant", "content": "\n".join(p.answer for p in chunk)}]})
    return out
