"""`realm.skills`: the skills, their evals and levels, the passives (the forgetting
watch), sparring, the curriculum and "Ask DIO"."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import realm_skills as skills

from ..evals import forgetting, grading, practice
from ..evals.curriculum import plan_of
from ..evals.evalqueue import probe_checkpoint, spar
from ..evals.skillbook import (
    check_queued_sparring,
    eval_report,
    primitive_summary,
    skill_primitives,
    skill_state,
)
from ..oracle.client import SharedOracle
from ..oracle.pool import require_step
from ..store import queries
from ..store.home import Home


class Skills:
    def __init__(self, home: Home, oracle: Callable[[], SharedOracle]) -> None:
        self.home = home
        self._oracle = oracle  # the root's one pool, made on first use

    def list(self, levels: bool = True) -> list[dict]:
        """Every skill: skill (its id), name, icon, passive, max_level, eval_size,
        primitive ids, and from the ledger its current level and recent evals at that level
        (None without `levels`, which reads no ledger)."""
        out = []
        for sid in skills.skill_ids():
            d = skills.skill_def(sid)
            st = self.state(sid) if levels else {}
            out.append({"skill": sid, "name": d.name, "icon": d.icon, "passive": d.passive,
                        "max_level": d.max_level, "eval_size": d.eval_size,
                        "primitives": [p.id for p in d.primitives],
                        "level": st.get("level"), "recent": st.get("recent", []) if levels else None})
        return out

    def state(self, skill: str) -> dict:
        return skill_state(self.home.ledger, skill).as_dict()

    def record_eval(self, result: Any, step: int | None = None, checkpoint: str | None = None) -> str:
        """Store an `skills.EvalResult` (overall + per primitive) and apply the level-up
        rule (a level-up event, the checkpoint becomes champion); returns its run id."""
        return grading.record(self.home, result, step, checkpoint)["run_id"]

    def record_answers(self, skill: str, level: int, answers: list[str], step: int | None = None,
                       checkpoint: str | None = None, spar: bool = False) -> dict:
        """Score `answers` (in the order of the level's eval batch) through the one grading
        path, as if a model gave them; record the eval and, with `spar`, queue sparring
        from the wrong ones."""
        result = grading.grade(grading.pick(skill, level, len(answers), eval_batch=True),
                               lambda questions, golden: answers)
        out = {"run_id": self.record_eval(result, step, checkpoint), **result.summary()}
        if spar and result.wrong:
            out["sparring"] = str(self.spar(result))
        return out

    def eval_report(self, skill: str, threshold: float = 0.8) -> dict:
        return eval_report(self.home.ledger, skill, threshold)

    def eval_history(self, skill: str | None = None) -> list[dict]:
        """Every eval (step, skill, level, accuracy), oldest first: accuracy by level plots."""
        return queries.eval_history(self.home.ledger, skill)

    def spar(self, result: Any, seed: int | None = None) -> Path:
        """Sparring from an eval's wrong answers: 3 examples each, into queue/high."""
        return practice.spar_result(self.home, result, seed)

    def spar_checkpoint(self, skill: str, count: int = 40, step: int | None = None,
                        seed: int | None = None) -> dict:
        """A sparring session: `count` fresh problems for a checkpoint (default newest);
        wrong answers -> 3 examples each -> queue/high."""
        return spar(self.home, skill, count, step, seed)

    def targeted_quest(self, skill: str, level: int | None = None, count: int = 200,
                       threshold: float = 0.8, seed: int | None = None) -> Path:
        """Practice weighted to the primitives under the threshold in the latest eval of
        the level (default: the skill's current level), into queue/high."""
        return practice.targeted_quest(self.home, skill, level, count, threshold, seed)

    def primitives(self, skill: str) -> list[dict]:
        return skill_primitives(skill)

    def primitive_summary(self, skill: str) -> list[dict]:
        return primitive_summary(self.home.ledger, skill)

    def primitive_history(self, skill: str, checkpoints: int = 20) -> dict:
        """Per-primitive accuracy of a skill over its last evaluated checkpoints (the
        Guild's heatmap): {"steps", "primitives", "cells": [[step, primitive, accuracy]]}."""
        rows = queries.primitive_accuracy_by_step(self.home.ledger, skill, checkpoints)
        return {"steps": sorted({r["step"] for r in rows}),
                "primitives": sorted({r["primitive_id"] for r in rows}),
                "cells": [[r["step"], r["primitive_id"], r["accuracy"]] for r in rows]}

    def passives(self) -> list[dict]:
        """The 11 passives with their primitives and difficulty knobs."""
        from realm_skills.catalog import catalog
        cat = catalog()
        return [{"id": p.id, "name": p.name, "track": p.track, "skill": p.skill,
                 "primitives": [{"id": q.id, "name": q.name,
                                 "knobs": skills.knobs_for(q.id) if q.skill is None else None}
                                for q in cat.primitives.values() if q.passive == p.id]}
                for p in cat.passives]

    def passive_history(self, passive: str | None = None, limit: int = 200) -> dict:
        """The forgetting watch: passive accuracy over steps, best, latest, drop flags, cost."""
        return forgetting.history(self.home.ledger, passive, limit, self.home.safe_config().watch.drop_points)

    def review_quest(self, passive: str, count: int | None = None) -> str:
        """A review quest of every primitive of a passive into the inbox; its name."""
        from realm_skills.catalog import catalog
        if passive not in {p.id for p in catalog().passives}:
            known = [p.id for p in catalog().passives]
            raise skills.SkillError(f"unknown passive {passive!r}; known: {known}")
        return forgetting.review_quest(self.home, passive,
                                       count or self.home.safe_config().watch.review_examples)

    def probe_passives(self, step: int | None = None) -> dict:
        """Run the fixed passive probe set on a checkpoint now (default: the newest)."""
        # Half the cores, as the eval kernels (training has the rest; oversubscribed
        # threads on a busy 2-core machine ran the probe ~10x slower).
        threads = self.home.safe_config().oracle.threads or max(1, (os.cpu_count() or 2) // 2)
        return probe_checkpoint(self.home, step, threads)

    def check_sparring(self) -> list[dict]:
        """Every queued sparring file, checked as a quest and by the sparring rules."""
        return check_queued_sparring([self.home.paths.queue(p) for p in ("high", "normal", "low")])

    def curriculum(self) -> list[dict]:
        """Per skill: skill, name, icon, level, max_level, recent, review_levels, priority,
        enabled."""
        return plan_of(self.home)

    def curriculum_quest(self, seed: int | None = None) -> dict | None:
        """The curriculum's next quest into the inbox (see evals.practice)."""
        return practice.curriculum_quest(self.home, seed)

    def ask(self, skill: str, step: int, host: str | None = None, seed: int | None = None) -> dict:
        """"Ask DIO": a fresh problem at the skill's current level, DIO's answer, and
        whether the skill's own scorer calls it right (graded like any eval)."""
        step = require_step(step)
        replies: list[dict] = []

        def ask_one(question: str) -> str:
            replies.append(self._oracle().chat(step, message=question, host=host,
                                               sampling={"max_new_tokens": 256}))
            return replies[-1]["content"]

        graded = grading.probe(ask_one, skill, self.state(skill)["level"], seed)
        return {**replies[0], **graded}
