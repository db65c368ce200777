"""Problem generation rate: BIN and SY against reasoning-gym's closest tasks, same run.

BIN at levels 1, 15 and 30 is set against reasoning-gym's `bitwise_arithmetic` and
`base_conversion`; SY at levels 1, 25 and 50 against `letter_jumble` and `word_ladder`.
Ours: `skills.generate(skill, level, N, seed)` (questions, answers with worked
solutions, primitive ids, metadata, no repeats). Theirs: `create_dataset(name, size=N,
seed)` then every item read (reasoning-gym builds items on access). One-time data
loading (our word bank, their modules and word lists) happens in a warm-up before the
clock starts. Best of `--repeats` per task, because this machine is shared and noisy.

    python bench/skills_bench.py [--n 2000] [--repeats 3]

(Not bench/skills.py: a script's folder comes first on sys.path, and a file named
skills.py there would hide the `skills` package from every bench script.)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report  # noqa: E402

import skills  # noqa: E402
from realm_skills.wordbank import word_bank  # noqa: E402

OURS = {"bin": (1, 15, 30), "sy": (1, 25, 50)}
THEIRS = {"bin": ("bitwise_arithmetic", "base_conversion"), "sy": ("letter_jumble", "word_ladder")}


def best_rate(make: Callable[[int], object], n: int, repeats: int) -> float:
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        make(r)
        best = min(best, time.perf_counter() - t)
    return n / best


def rg_maker(name: str, n: int) -> Callable[[int], object]:
    import reasoning_gym

    def make(seed: int) -> list:
        ds = reasoning_gym.create_dataset(name, size=n, seed=seed + 1)
        return [ds[i] for i in range(n)]
    return make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="problems per timed batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()

    word_bank()
    figures: dict[str, float | int | str] = {"n": a.n, "repeats": a.repeats}
    try:
        import reasoning_gym  # noqa: F401
        figures["baseline"] = f"reasoning-gym {metadata.version('reasoning-gym')}"
    except ImportError:
        sys.exit("reasoning-gym is not installed: pip install -e '.[dev]'")
    for skill, levels in OURS.items():
        for name in THEIRS[skill]:
            rg_maker(name, 20)(0)  # warm-up: imports and word lists
            figures[f"rg_{name}_per_s"] = round(best_rate(rg_maker(name, a.n), a.n, a.repeats), 1)
        for level in levels:
            skills.generate(skill, level, 20, seed=0)
            rate = best_rate(lambda r, s=skill, lv=level: skills.generate(s, lv, a.n, seed=r + 1),
                             a.n, a.repeats)
            figures[f"{skill}_L{level}_per_s"] = round(rate, 1)
            for name in THEIRS[skill]:
                figures[f"{skill}_L{level}_vs_{name}_ratio"] = round(rate / figures[f"rg_{name}_per_s"], 2)
    ratios = {k: v for k, v in figures.items() if k.endswith("_ratio")}
    figures["min_ratio"] = min(ratios.values())
    parts = []
    for skill, levels in OURS.items():
        ours = ", ".join(f"L{lv} {figures[f'{skill}_L{lv}_per_s']:.0f}/s" for lv in levels)
        theirs = ", ".join(f"{n} {figures[f'rg_{n}_per_s']:.0f}/s" for n in THEIRS[skill])
        parts.append(f"{skill.upper()} {ours} vs reasoning-gym {theirs}")
    summary = "; ".join(parts) + f"; ratios {min(ratios.values()):.2f}-{max(ratios.values()):.2f}x"
    report("skills", figures, summary, a.out)


if __name__ == "__main__":
    main()
