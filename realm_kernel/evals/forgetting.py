"""The forgetting watch: does training one skill make DIO forget another?

Every champion, and every Nth evaluated checkpoint, answers a fixed probe set: `per_primitive`
problems of every primitive of every passive, always from the same seed, so the numbers
compare over time. Each probe run writes one `passive_probes` row per primitive (with
the run's seconds, its cost). A passive whose accuracy falls more than `drop_points`
below its best earlier run is flagged (a `passive_drop` event) and, with `review` on,
gets a review quest of its primitives in the inbox. [watch] in realm.toml sets it all.
"""

from __future__ import annotations

import time
import uuid
from functools import cache

import realm_skills as skills
from realm_skills.catalog import catalog

from ..quests.publish import publish
from ..store.config import WatchConfig
from ..store.home import Home
from ..store.ledger import Ledger, json_data
from ..store.queries import eval_count, passive_drops, passive_runs, probe_costs
from .grading import Ask, fresh_seed

REVIEW_PREFIX = "review-"


@cache
def probe_set(per_primitive: int, seed: int) -> tuple[skills.Problem, ...]:
    """The fixed probe set: the same problems for the same (per_primitive, seed)."""
    out: list[skills.Problem] = []
    for i, pid in enumerate(sorted(catalog().primitives)):
        out += skills.generate_primitive(pid, per_primitive, seed + 1000 * i)
    return tuple(out)


def due(ledger: Ledger, cfg: WatchConfig, champion: bool) -> str | None:
    """Why this checkpoint is probed ('champion', 'every_n'), or None."""
    if not cfg.enabled:
        return None
    if champion:
        return "champion"
    n = eval_count(ledger)
    return "every_n" if cfg.every_n_evals and n % cfg.every_n_evals == 0 else None


def run_probe(home: Home, ask: Ask, step: int | None, checkpoint: str | None, reason: str,
              cfg: WatchConfig | None = None) -> dict:
    """Ask the probe set, record per-primitive rows, flag drops, queue review quests."""
    cfg = cfg or home.safe_config().watch
    problems = probe_set(cfg.per_primitive, cfg.seed)
    t0 = time.perf_counter()
    # One ask per primitive: the answer budget follows that primitive's golden answers
    # (a few tokens for most passives) instead of the longest worked solution in the set.
    by_prim: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        by_prim.setdefault(p.primitive_id, []).append(i)
    answers = [""] * len(problems)
    for idx in by_prim.values():
        got = ask([problems[i].question for i in idx], [problems[i].answer for i in idx])
        for i, a in zip(idx, got, strict=True):
            answers[i] = a
    seconds = time.perf_counter() - t0
    tally: dict[str, list[int]] = {}
    for p, a in zip(problems, answers, strict=True):
        n_ok = tally.setdefault(p.primitive_id, [0, 0])
        n_ok[0] += 1
        n_ok[1] += skills.score(p, a)
    run_id = uuid.uuid4().hex
    prims = catalog().primitives
    home.ledger.append("passive_probes", [
        {"run_id": run_id, "step": step, "checkpoint": checkpoint, "reason": reason,
         "passive": prims[pid].passive, "primitive_id": pid, "n": n, "correct": ok,
         "accuracy": ok / n, "seconds": round(seconds, 3)}
        for pid, (n, ok) in sorted(tally.items())])
    drops = find_drops(home.ledger, run_id, cfg.drop_points)
    for d in drops:
        home.ledger.event("passive_drop", f"{d['passive']} fell to {d['accuracy']:.0%} "
                          f"(best {d['best']:.0%}) at step {step}", json_data({**d, "step": step}),
                          key=f"passive_drop:{d['passive']}:{run_id}")
        if cfg.review:
            d["review_quest"] = review_quest(home, d["passive"], cfg.review_examples)
    total = sum(ok for _, ok in tally.values()) / max(1, sum(n for n, _ in tally.values()))
    return {"run_id": run_id, "step": step, "reason": reason, "n": len(problems),
            "accuracy": total, "seconds": round(seconds, 3), "drops": drops}


def find_drops(ledger: Ledger, run_id: str, drop_points: float) -> list[dict]:
    """Passives of this run more than drop_points below their best earlier run."""
    rows = passive_drops(ledger, run_id, drop_points / 100)
    return [{"passive": r["passive"], "accuracy": float(r["accuracy"]), "best": float(r["best"])}
            for r in rows]


def review_quest(home: Home, passive: str, count: int, seed: int | None = None) -> str:
    """Practice of every primitive of a passive into the inbox (no skill tag: the
    checkpoints it makes are evaluated on the curriculum's skill, as usual)."""
    seed = fresh_seed(seed)
    n_prims = sum(1 for p in catalog().primitives.values() if p.passive == passive)
    problems = skills.generate_passive(passive, max(1, count // max(1, n_prims)), seed)
    examples = [{"messages": p.as_example()["messages"],
                 "meta": {"passive": passive, "primitive_id": p.primitive_id}} for p in problems]
    name = f"{REVIEW_PREFIX}{passive}-{len(examples)}-s{seed}.jsonl"
    publish(home.paths, home.ledger, home.safe_config(), name, examples,
            event=("review_queued", f"Review quest for {passive}: {len(examples)} problems",
                   {"passive": passive, "quest": name, "examples": len(examples)}))
    return name


def history(ledger: Ledger, passive: str | None = None, limit: int = 200,
            drop_points: float = 10.0) -> dict:
    """Passive accuracy over steps (one point per probe run and passive), each passive's
    best, its latest, and whether the latest is a drop; probe costs."""
    rows = passive_runs(ledger, passive, limit * 11)
    series: dict[str, list[dict]] = {}
    for r in rows:
        series.setdefault(r["passive"], []).append(
            {"step": r["step"], "accuracy": r["correct"] / r["n"] if r["n"] else 0.0,
             "reason": r["reason"], "ts": str(r["ts"])})
    names = {p.id: p.name for p in catalog().passives}
    out = []
    for pid in names if passive is None else [passive]:
        pts = series.get(pid, [])
        best = max((p["accuracy"] for p in pts[:-1]), default=None)
        latest = pts[-1]["accuracy"] if pts else None
        out.append({"passive": pid, "name": names.get(pid, pid), "points": pts, "latest": latest,
                    "best": max((p["accuracy"] for p in pts), default=None),
                    "drop": bool(best is not None and latest is not None
                                 and best - latest > drop_points / 100)})
    cost = probe_costs(ledger)
    return {"passives": out, "drop_points": drop_points, "probe_runs": int(cost["runs"]),
            "mean_seconds": float(cost["mean_s"]), "max_seconds": float(cost["max_s"]),
            "total_seconds": float(cost["total_s"])}

