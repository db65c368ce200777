"""One battle's retries (TrainerEngine.run_job): the batch split a battle on this card,
model and max_length backed off to before; an out-of-memory back-off (a smaller
micro-batch, then gradient checkpointing, resumed from the run's last checkpoint); a loss
alarm's rollback (the last good checkpoint, the blamed steps skipped, a lower learning
rate). Each is an event; the rules themselves are train/rescue.py's. A `job` here is a
train.trainer.Job (this module sits below it: the engine imports it)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..store import batch_fit
from ..store.checkpoints import extract_step, resume_point
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from .rescue import LossAlarm, OutOfMemoryAtBatchOne, SetAside, card_name, smaller


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


class Retries:
    def __init__(self, paths: RealmPaths, ledger: Ledger, job: Any) -> None:
        self.paths, self.ledger = paths, ledger
        self.key = batch_fit.fit_key(card_name(torch.cuda.is_available()),
                                     job.base_model or str(job.model_path), job.training.max_length)
        self.start: Path | None = job.resume_from  # where the battle began
        # The split of the try in hand, set by the engine once it chose one ({} before).
        self.tried: dict[str, Any] = {}
        self.backoffs = 0

    def remembered(self, job: Any) -> Any:
        """The split a battle on this card, model and max_length backed off to before."""
        fit = batch_fit.remembered(self.paths, self.key)
        if not fit:
            return job
        return replace(job, max_micro=int(fit.get("micro_batch") or 0),
                       checkpointing=bool(fit.get("gradient_checkpointing")))

    def succeeded(self, job: Any, result: Any) -> Any:
        if self.backoffs:  # the size that worked, for the next battle on this card
            batch_fit.remember(self.paths, self.key, micro_batch=result.micro_batch,
                               gradient_accumulation_steps=result.gradient_accumulation_steps,
                               gradient_checkpointing=result.gradient_checkpointing,
                               batch_size=job.training.batch_size)
        result.oom_backoffs, result.rollbacks = self.backoffs, job.rollbacks
        return result

    def resume_from(self, job: Any, before: int | None = None) -> Path | None:
        """The run's last checkpoint with resume state (saved before local step `before`),
        else where the battle began."""
        point = resume_point(self.ledger, job.quest_id, job.run_id)
        if point and (before is None or (extract_step(point[0].name) or 0) - job.step_offset < before):
            return point[0]
        return self.start

    def back_off(self, job: Any, error: BaseException) -> Any:
        if not self.tried:  # out of memory before a batch was chosen: the model itself
            raise OutOfMemoryAtBatchOne(
                f"out of memory loading the model on {self.key} ({first_line(error)}); fix: "
                "train with method = \"qlora\" or use a larger card; then resume the realm")
        micro, ckpt, acc = self.tried["micro"], self.tried["checkpointing"], self.tried["accumulation"]
        nxt = smaller(micro, ckpt)
        if nxt is None:
            raise OutOfMemoryAtBatchOne(
                f"out of memory at micro-batch 1 with gradient checkpointing on {self.key} "
                f"({first_line(error)}); fix: lower [training] max_length, train with method = "
                "\"lora\" or \"qlora\", or use a larger card; then resume the realm")
        self.backoffs += 1
        resume = self.resume_from(job)
        sizes = {"from": {"micro_batch": micro, "gradient_checkpointing": ckpt,
                          "gradient_accumulation_steps": acc},
                 "to": {"micro_batch": nxt[0], "gradient_checkpointing": nxt[1],
                        "gradient_accumulation_steps": acc * -(-micro // nxt[0])},
                 "error": first_line(error), "resume_from": str(resume) if resume else None}
        self.ledger.event("oom_backoff", f"Out of memory: {job.quest_id} goes on at micro-batch "
                          f"{nxt[0]}{' with gradient checkpointing' if nxt[1] else ''}",
                          json.dumps(sizes))
        return replace(job, max_micro=nxt[0], checkpointing=nxt[1], resume_from=resume)

    def roll_back(self, job: Any, alarm: LossAlarm) -> Any:
        cfg, step = job.training, job.step_offset + alarm.step
        self.ledger.event("loss_alarm", f"Loss alarm in {job.quest_id} at step {step}: {alarm.reason}",
                          json.dumps({"step": step, "reason": alarm.reason}))
        if job.rollbacks + 1 > cfg.max_rollbacks:
            raise SetAside(f"set aside after {cfg.max_rollbacks} rollbacks: loss alarm at step "
                           f"{step}: {alarm.reason}")
        resume = self.resume_from(job, before=alarm.steps.start)
        job = replace(job, resume_from=resume, rollbacks=job.rollbacks + 1,
                      lr_scale=job.lr_scale * cfg.alarm_lr_factor,
                      skip_steps=job.skip_steps | frozenset(alarm.steps))
        self.ledger.event("rollback", f"{job.quest_id} rolls back to "
                          f"{resume.name if resume else 'its start'}, skips step {step}, "
                          f"learning rate x{job.lr_scale:g}",
                          json.dumps({"to": str(resume) if resume else None,
                                      "skip_steps": sorted(job.step_offset + s for s in alarm.steps),
                                      "lr_scale": job.lr_scale, "rollbacks": job.rollbacks}))
        return job
