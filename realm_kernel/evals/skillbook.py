"""Skills meet the realm: evals and per-primitive accuracy in the ledger, skill state
replayed from them, weak primitives, and the sparring check of a written file."""

from __future__ import annotations

import uuid
from pathlib import Path

import realm_skills as skills
from realm_skills.evaluation import EvalResult
from realm_skills.sparring import check_sparring, weak_primitives

from ..quests.formats import load_quest
from ..store.ledger import Ledger
from ..store.queries import latest_primitive_accuracy, primitive_totals, recent_evals, skill_eval_history


def record_eval(ledger: Ledger, result: EvalResult, step: int | None = None,
                checkpoint: str | None = None) -> str:
    """One `evals` row and one `primitive_accuracy` row per primitive; returns the run id."""
    run_id = uuid.uuid4().hex
    common = {"run_id": run_id, "step": step, "checkpoint": checkpoint,
              "skill": result.skill, "level": result.level}
    ledger.append("evals", [{**common, "accuracy": result.accuracy, "n": result.n,
                             "correct": result.correct}])
    ledger.append("primitive_accuracy", [
        {**common, "primitive_id": pid, "n": s.n, "correct": s.correct, "accuracy": s.accuracy}
        for pid, s in result.per_primitive.items()])
    return run_id


def skill_state(ledger: Ledger, skill: str) -> skills.SkillState:
    """Replay every eval of a skill, oldest first, through the level-up rule."""
    skills.skill_def(skill)  # unknown skill -> SkillError
    rows = skill_eval_history(ledger, skill)
    return skills.SkillState.replay(skill, [(r["level"], r["accuracy"]) for r in rows])


def primitive_accuracy(ledger: Ledger, skill: str, level: int) -> dict[str, float]:
    """Per-primitive accuracy of the latest eval of that skill level that has any."""
    rows = latest_primitive_accuracy(ledger, skill, level)
    return {r["primitive_id"]: r["accuracy"] for r in rows}


def eval_report(ledger: Ledger, skill: str, threshold: float = 0.8, recent: int = 10) -> dict:
    """Where a skill stands: its state, its latest evals, weak primitives at its level."""
    state = skill_state(ledger, skill)
    evals = recent_evals(ledger, skill, recent)
    acc = primitive_accuracy(ledger, skill, state.level)
    return {"state": state.as_dict(), "evals": evals, "primitive_accuracy": acc,
            "threshold": threshold,
            "weak_primitives": [{"primitive_id": p, "accuracy": a}
                                for p, a in weak_primitives(acc, threshold)]}


def check_sparring_file(path: Path) -> list[str]:
    """Quest validation plus the sparring rules, for a file already written."""
    examples, report = load_quest(path)
    if not report.ok:
        return [report.summary()]
    return check_sparring(examples)


def skill_primitives(skill: str) -> list[dict]:
    """A skill's primitives (id, name, op, passive) and the levels that use each."""
    d = skills.skill_def(skill)
    return [{"id": p.id, "name": p.name, "op": p.op, "description": p.description,
             "passive": d.passive,
             "levels": [n for n, lv in d.levels.items() if p.id in lv.primitives]}
            for p in d.primitives]


def primitive_summary(ledger: Ledger, skill: str) -> list[dict]:
    """Per primitive of a skill: evals that scored it, latest and best accuracy, the
    latest level and step it was scored at (never-scored primitives have n_evals 0)."""
    rows = {r["primitive_id"]: r for r in primitive_totals(ledger, skill)}
    out = []
    for p in skill_primitives(skill):
        r = rows.get(p["id"]) or {}
        out.append({**p, "n_evals": int(r.get("n_evals") or 0), "latest": r.get("latest"),
                    "best": r.get("best"), "level": r.get("level"), "step": r.get("step"),
                    "problems_scored": int(r.get("n") or 0), "correct": int(r.get("correct") or 0)})
    return out


def check_queued_sparring(queue_dirs: list[Path]) -> list[dict]:
    """Every queued sparring file (sparring*.jsonl) checked as a quest and as sparring."""
    out = []
    for d in queue_dirs:
        for path in sorted(d.glob("sparring*.jsonl")):
            try:
                problems = check_sparring_file(path)
            except (OSError, ValueError) as e:
                problems = [f"{type(e).__name__}: {e}"]
            out.append({"file": str(path), "queue": d.name, "ok": not problems, "problems": problems[:20]})
    return out
