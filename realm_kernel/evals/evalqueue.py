"""The eval queue: every saved checkpoint is evaluated exactly once.

The engine writes an `eval_requested` event per checkpoint save. A request is answered
when the ledger holds an `evals` row for that checkpoint, or an `eval_done` /
`eval_skipped` event keyed `eval:<checkpoint>`. Before evaluating, a run takes a claim
(tasks/claims/eval-<checkpoint>, created with O_EXCL and holding its pid), so two runs
never evaluate the same checkpoint; a claim whose process died is taken over.

The level evaluated is the skill's current level at eval time; a checkpoint trained on
a quest of skill X is evaluated on X (checkpoints of quests without a skill on the
curriculum's first enabled skill). A level-up writes one `skill_level_up` event (keyed
`level_up:<skill>:<level>`) and makes the checkpoint that earned it the champion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import skills
from skills.evaluation import eval_problems, run_eval

from ..oracle import answering
from ..store.ledger import json_data
from .skillbook import skill_state

if TYPE_CHECKING:
    from ..api import Realm


def pending(realm: Realm) -> list[dict]:
    """Unanswered eval requests, oldest first."""
    rows = realm.ledger.query("""
        WITH req AS (
            SELECT ts, json_extract_string(data, '$.checkpoint') AS checkpoint,
                   CAST(json_extract(data, '$.step') AS BIGINT) AS step,
                   json_extract_string(data, '$.path') AS path,
                   json_extract_string(data, '$.skill') AS skill,
                   CAST(json_extract(data, '$.level') AS BIGINT) AS trained_level
            FROM events WHERE kind = 'eval_requested'
            QUALIFY row_number() OVER (PARTITION BY checkpoint ORDER BY ts) = 1)
        SELECT * FROM req
        WHERE checkpoint NOT IN (SELECT checkpoint FROM evals WHERE checkpoint IS NOT NULL)
          AND 'eval:' || checkpoint NOT IN (SELECT key FROM events WHERE key LIKE 'eval:%')
        ORDER BY ts""")
    return rows


def _claims(realm: Realm) -> Path:
    d = realm.paths.tasks / "claims"
    d.mkdir(parents=True, exist_ok=True)
    return d


def claim(realm: Realm, checkpoint: str) -> bool:
    """Take the claim on a checkpoint's eval; False when a live process holds it."""
    from ..store.process import pid_alive
    path = _claims(realm) / f"eval-{checkpoint}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and pid_alive(holder):
                return False
            path.unlink(missing_ok=True)  # its process died: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def release(realm: Realm, checkpoint: str) -> None:
    (_claims(realm) / f"eval-{checkpoint}").unlink(missing_ok=True)


def default_skill(realm: Realm) -> str | None:
    live = [p for p in realm.curriculum() if p["enabled"]]
    return max(live, key=lambda p: p["priority"])["skill"] if live else None


def _answered(realm: Realm, checkpoint: str) -> bool:
    return bool(realm.ledger.query(
        "SELECT 1 FROM evals WHERE checkpoint = ? UNION ALL "
        "SELECT 1 FROM events WHERE key = ? LIMIT 1", [checkpoint, f"eval:{checkpoint}"]))


def evaluate(realm: Realm, request: dict, size: int | None = None, threads: int = 0) -> dict:
    """Evaluate one requested checkpoint (claimed, once) and record everything."""
    name = request["checkpoint"]
    if not claim(realm, name):
        return {"checkpoint": name, "status": "claimed elsewhere"}
    try:
        if _answered(realm, name):  # answered between listing and claiming
            return {"checkpoint": name, "status": "already evaluated"}
        skill = request.get("skill") or default_skill(realm)
        path = Path(request.get("path") or "")
        why = ("no skill to evaluate on" if skill is None else
               f"{path} is gone" if not (path / "config.json").exists() else None)
        if why:
            realm.ledger.event("eval_skipped", f"Eval of {name} skipped: {why}",
                               json_data({"checkpoint": name, "reason": why}), key=f"eval:{name}")
            return {"checkpoint": name, "status": "skipped", "reason": why}
        before = skill_state(realm.ledger, skill)
        problems = eval_problems(skill, before.level, size=size)
        model, tok = answering.load(path, threads)
        ans = answering.answer(model, tok, [p.question for p in problems],
                               answering.budget(tok, [p.answer for p in problems]))
        result = run_eval(skill, before.level, ans.texts, problems=problems)
        step = request.get("step")
        run_id = realm.record_eval(result, step=step, checkpoint=name)
        after = skill_state(realm.ledger, skill)
        summary = {"checkpoint": name, "step": step, "skill": skill, "level": before.level,
                   "trained_level": request.get("trained_level"), "accuracy": result.accuracy,
                   "n": result.n, "per_primitive": result.per_primitive_accuracy,
                   "seconds": round(ans.seconds, 3), "run_id": run_id,
                   "level_after": after.level, "status": "done"}
        realm.ledger.event("eval_done", f"{name}: {skills.skill_def(skill).name} L{before.level} "
                           f"{result.accuracy:.0%}", json_data(summary), key=f"eval:{name}")
        if after.level > before.level:
            level_up(realm, skill, before.level, after.level, step, name)
        summary["wrong"] = [{"question": i.problem.question, "answer": i.answer,
                             "expected": i.problem.final} for i in result.wrong[:5]]
        return summary
    finally:
        release(realm, name)


def level_up(realm: Realm, skill: str, from_level: int, level: int, step: Any, checkpoint: str) -> None:
    """One `skill_level_up` event per (skill, level); the checkpoint becomes champion."""
    key = f"level_up:{skill}:{level}"
    if realm.ledger.query("SELECT 1 FROM events WHERE key = ? LIMIT 1", [key]):
        return
    realm.ledger.event("skill_level_up", f"Skill level up! {skill.upper()} {level}",
                       json_data({"skill": skill, "level": level, "from_level": from_level,
                                  "step": step, "checkpoint": checkpoint}), key=key)
    if step is not None:
        try:
            realm.promote(int(step))
        except Exception as e:  # a champion is a bonus; the level-up stands without it
            realm.ledger.event("champion_error", f"could not promote {checkpoint}: {e}")


def spar(realm: Realm, skill: str, count: int, step: int | None = None, seed: int | None = None,
         threads: int = 0) -> dict:
    """Sparring: `count` fresh problems at the skill's level for a checkpoint (default the
    newest); its wrong answers become 3 examples each in queue/high."""
    import time

    from .skillbook import SparringError
    row = (realm.checkpoints.get(step) if step is not None else realm.checkpoints.latest())
    if row is None or not (Path(row.path) / "config.json").exists():
        where = f"at step {step} " if step is not None else ""
        raise FileNotFoundError(f"no checkpoint {where}on disk to spar with")
    level = skill_state(realm.ledger, skill).level
    seed = time.time_ns() % 2**31 if seed is None else seed
    problems = skills.generate(skill, level, count, seed)
    model, tok = answering.load(row.path, threads)
    ans = answering.answer(model, tok, [p.question for p in problems],
                           answering.budget(tok, [p.answer for p in problems]))
    result = run_eval(skill, level, ans.texts, problems=problems)
    out = {"skill": skill, "level": level, "step": row.step, "checkpoint": row.name, "count": count,
           "correct": result.correct, "wrong": len(result.wrong), "accuracy": result.accuracy,
           "per_primitive": result.per_primitive_accuracy, "quest": None, "examples": 0}
    if result.wrong:
        try:
            dest = realm.spar(result, seed=seed)
        except SparringError as e:
            out["detail"] = str(e)
        else:
            out.update(quest=dest.name, examples=3 * len(result.wrong))
            realm.ledger.event("sparring_published",
                               f"Sparring: {len(result.wrong)} wrong of {count} -> {dest.name}",
                               json.dumps(out, default=str))
    return out
