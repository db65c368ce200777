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
    rows = ledger.query("SELECT level, accuracy FROM evals WHERE skill = ? AND accuracy IS NOT NULL "
                        "ORDER BY ts", [skill])
    return skills.SkillState.replay(skill, [(r["level"], r["accuracy"]) for r in rows])


def primitive_accuracy(ledger: Ledger, skill: str, level: int) -> dict[str, float]:
    """Per-primitive accuracy of the latest eval of that skill level that has any."""
    rows = ledger.query("""
        SELECT primitive_id, accuracy FROM primitive_accuracy
        WHERE run_id = (SELECT run_id FROM primitive_accuracy WHERE skill = ? AND level = ?
                        ORDER BY ts DESC LIMIT 1)
        ORDER BY primitive_id""", [skill, level])
    return {r["primitive_id"]: r["accuracy"] for r in rows}


def eval_report(ledger: Ledger, skill: str, threshold: float = 0.8, recent: int = 10) -> dict:
    """Where a skill stands: its state, its latest evals, weak primitives at its level."""
    state = skill_state(ledger, skill)
    evals = ledger.query("SELECT ts, step, checkpoint, level, accuracy, n, correct, run_id FROM evals "
                         "WHERE skill = ? ORDER BY ts DESC LIMIT ?", [skill, recent])
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
