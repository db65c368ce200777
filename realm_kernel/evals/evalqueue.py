"""The eval queue: every saved checkpoint is evaluated exactly once.

The engine writes an `eval_requested` event per checkpoint save. A request is answered
when the ledger holds an `evals` row for that checkpoint, or an `eval_done` /
`eval_skipped` event keyed `eval:<checkpoint>`. Before evaluating, a run takes a claim
(tasks/claims/eval-<checkpoint>, created with O_EXCL and holding its pid), so two runs
never evaluate the same checkpoint; a claim whose process died is taken over.

The level evaluated is the skill's current level at eval time; a checkpoint trained on
a quest of skill X is evaluated on X (checkpoints of quests without a skill on the
curriculum's first enabled skill). Recording goes through grading.record, where the level-up rule
and champion promotion live.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import realm_skills as skills

from ..store.home import Home
from ..store.ledger import json_data
from ..store.paths import is_model_dir
from ..store.process import pid_alive
from ..store.queries import eval_answered, pending_eval_requests
from ..store.vault import VaultError, VaultKeeper
from . import forgetting, grading
from .curriculum import plan_of
from .placement import answers_for
from .practice import SparringError, spar_result
from .skillbook import skill_state


def pending(home: Home) -> list[dict]:
    """Unanswered eval requests, oldest first."""
    return pending_eval_requests(home.ledger)


def _claims(home: Home) -> Path:
    d = home.paths.tasks / "claims"
    d.mkdir(parents=True, exist_ok=True)
    return d


def claim(home: Home, checkpoint: str) -> bool:
    """Take the claim on a checkpoint's eval; False when a live process holds it."""
    path = _claims(home) / f"eval-{checkpoint}"
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


def release(home: Home, checkpoint: str) -> None:
    (_claims(home) / f"eval-{checkpoint}").unlink(missing_ok=True)


def default_skill(home: Home) -> str | None:
    live = [p for p in plan_of(home) if p["enabled"]]
    return max(live, key=lambda p: p["priority"])["skill"] if live else None


def _answered(home: Home, checkpoint: str) -> bool:
    return eval_answered(home.ledger, checkpoint)


def evaluate(home: Home, request: dict, size: int | None = None, threads: int = 0) -> dict:
    """Evaluate one requested checkpoint (claimed, once) and record everything."""
    return _evaluate(home, [_plan(home, request, size)], threads)[0]


def evaluate_all(home: Home, requests: list[dict], size: int | None = None,
                 threads: int = 0) -> list[dict]:
    """Evaluate requested checkpoints, each claimed, evaluated and recorded once. On one
    machine one after the other, each on the skill's level when its turn comes. In
    cluster mode their answers are asked for all at once (several nodes answer at the
    same time, each on the level when the batch began); grading and recording stay here,
    in request order."""
    if not home.safe_config().cluster.on:
        return [evaluate(home, r, size, threads) for r in requests]
    return _evaluate(home, [_plan(home, r, size) for r in requests], threads, together=True)


def _evaluate(home: Home, plans: list[dict], threads: int, together: bool = False) -> list[dict]:
    try:
        work = [i for i, plan in enumerate(plans) if "problems" in plan]
        answered: dict[int, tuple] = {}
        if together and len(work) > 1:
            with ThreadPoolExecutor(len(work), thread_name_prefix="realm-eval") as pool:
                futures = {i: pool.submit(_answer, home, plans[i], threads) for i in work}
            answered = {i: f.result() for i, f in futures.items()}
        return [_record(home, plan, *(answered.get(i) or _answer(home, plan, threads)))
                if "problems" in plan else plan["done"] for i, plan in enumerate(plans)]
    finally:
        for plan in plans:
            if plan.get("claimed"):
                release(home, plan["name"])


def _answer(home: Home, plan: dict, threads: int) -> tuple:
    """The checkpoint's answers to the plan's problems, graded: (result, ask, timing)."""
    ask, timing = answers_for(home, plan["name"], plan["step"], plan["path"], threads)
    return grading.grade(plan["problems"], ask), ask, timing


def _plan(home: Home, request: dict, size: int | None) -> dict:
    """What evaluating a request takes: its claim, skill, level and problems, or (under
    "done") why there is nothing to evaluate."""
    name = request["checkpoint"]
    if not claim(home, name):
        return {"name": name, "done": {"checkpoint": name, "status": "claimed elsewhere"}}
    plan: dict = {"name": name, "claimed": True, "step": request.get("step"), "request": request}
    if _answered(home, name):  # answered between listing and claiming
        return {**plan, "done": {"checkpoint": name, "status": "already evaluated"}}
    skill = request.get("skill") or default_skill(home)
    path = Path(request.get("path") or "")
    why = ("no skill to evaluate on" if skill is None else
           f"{path} is gone" if not is_model_dir(path) else None)
    if why:
        home.ledger.event("eval_skipped", f"Eval of {name} skipped: {why}",
                          json_data({"checkpoint": name, "reason": why}), key=f"eval:{name}")
        return {**plan, "done": {"checkpoint": name, "status": "skipped", "reason": why}}
    level = skill_state(home.ledger, skill).level
    return {**plan, "skill": skill, "level": level, "path": path,
            "problems": grading.pick(skill, level, size, eval_batch=True)}


def _record(home: Home, plan: dict, result, ask: grading.Ask, timing: dict) -> dict:
    name, step, skill, level = plan["name"], plan["step"], plan["skill"], plan["level"]
    if _answered(home, name):  # never twice, whoever answered meanwhile
        return {"checkpoint": name, "status": "already evaluated"}
    rec = grading.record(home, result, step=step, checkpoint=name)
    summary = {"checkpoint": name, "step": step, "skill": skill, "level": level,
               "trained_level": plan["request"].get("trained_level"), "accuracy": result.accuracy,
               "n": result.n, "per_primitive": result.per_primitive_accuracy,
               "seconds": round(timing["seconds"], 3), "run_id": rec["run_id"],
               "level_after": rec["level_after"],
               "backoffs": len(timing.get("backoffs", [])), "status": "done"}
    if "host" in timing:  # cluster mode: which node answered ("local": this machine did)
        summary.update(host=timing["host"], node_id=timing.get("node_id"))
    home.ledger.event("eval_done", f"{name}: {skills.skill_def(skill).name} L{level} "
                      f"{result.accuracy:.0%}", json_data(summary), key=f"eval:{name}")
    summary["probe"] = watch(home, ask, step, name, rec["level_after"] > rec["level_before"])
    summary["wrong"] = [{"question": i.problem.question, "answer": i.answer,
                         "expected": i.problem.final} for i in result.wrong[:5]]
    return summary


def watch(home: Home, ask: grading.Ask, step: int | None, checkpoint: str,
          champion: bool) -> dict | None:
    """The forgetting watch on this checkpoint, when due (champion or every Nth eval);
    a probe that fails is recorded and never fails the eval."""
    cfg = home.safe_config().watch
    reason = forgetting.due(home.ledger, cfg, champion)
    if reason is None:
        return None
    try:
        out = forgetting.run_probe(home, ask, step, checkpoint, reason, cfg)
    except Exception as e:
        home.ledger.event("probe_error", f"passive probe of {checkpoint} failed: {e}")
        return {"error": str(e)}
    return {k: out[k] for k in ("run_id", "reason", "n", "accuracy", "seconds")} | {
        "drops": [d["passive"] for d in out["drops"]]}


def probe_checkpoint(home: Home, step: int | None = None, threads: int = 0) -> dict:
    """The forgetting watch's probe on one checkpoint (default: the newest), by hand."""
    row = home.checkpoints.get(step) if step is not None else home.checkpoints.latest()
    if row is None or not (Path(row.path) / "config.json").exists():
        where = f"at step {step} " if step is not None else ""
        raise FileNotFoundError(f"no checkpoint {where}on disk to probe")
    ask, _ = answers_for(home, row.name, row.step, row.path, threads)
    return forgetting.run_probe(home, ask, row.step, row.name, "manual")


def spar(home: Home, skill: str, count: int, step: int | None = None, seed: int | None = None,
         threads: int = 0) -> dict:
    """Sparring: `count` fresh problems at the skill's level for a checkpoint (default the
    newest); its wrong answers become 3 examples each in queue/high."""
    row = (home.checkpoints.get(step) if step is not None else home.checkpoints.latest())
    if row is None or not is_model_dir(Path(row.path)):
        where = f"at step {step} " if step is not None else ""
        raise FileNotFoundError(f"no checkpoint {where}on disk to spar with")
    level = skill_state(home.ledger, skill).level
    seed = grading.fresh_seed(seed)
    ask, _ = answers_for(home, row.name, row.step, row.path, threads)
    result = grading.grade(grading.pick(skill, level, count, seed), ask)
    out = {"skill": skill, "level": level, "step": row.step, "checkpoint": row.name, "count": count,
           "correct": result.correct, "wrong": len(result.wrong), "accuracy": result.accuracy,
           "per_primitive": result.per_primitive_accuracy, "quest": None, "examples": 0}
    if result.wrong:
        try:
            dest = spar_result(home, result, seed=seed)
        except SparringError as e:
            out["detail"] = str(e)
        else:
            out.update(quest=dest.name, examples=3 * len(result.wrong))
            home.ledger.event("sparring_published",
                              f"Sparring: {len(result.wrong)} wrong of {count} -> {dest.name}",
                              json.dumps(out, default=str))
    return out


def cleanup(home: Home, vault: VaultKeeper, apply: bool = True) -> dict:
    """Retention through the vault, sparing every checkpoint still awaiting its eval."""
    plan = vault.retention_plan()
    waiting = {r["step"] for r in pending(home)}
    deleted, kept = [], []
    for d in plan["delete"]:
        if d["step"] in waiting or not apply:
            kept.append(d["step"])
            continue
        try:
            vault.delete_checkpoint(d["step"], by="cleanup")
            deleted.append(d["step"])
        except (VaultError, ValueError) as e:  # protected meanwhile, or already gone
            kept.append(d["step"])
            home.ledger.event("cleanup_skipped", f"kept step {d['step']}: {e}")
    return {"deleted": deleted, "kept_waiting_or_protected": kept,
            "keep": plan["keep"], "dry_run": not apply}
