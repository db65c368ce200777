"""Trainer callbacks: live metrics to the ledger, canonical checkpoints with sidecars,
and control files obeyed at step boundaries. What the game makes of progress (hero
level-ups, achievements) is the caller's: the job's `on_progress` / `on_checkpoint`
hooks, so training never reads realm.toml or computes game rules mid-battle."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..store import faults
from ..store.config import RetentionConfig
from ..store.heartbeat import Heartbeat
from ..store.ledger import Ledger, MetricBuffer
from ..store.paths import SIDECAR, RealmPaths, atomic_write_json, publish_dir
from ..store.status import TRAINING, write_status
from ..store.vault import dir_bytes
from .keeper import CheckpointKeeper
from .lora import base_of, is_adapter
from .ranks import agree, barrier


def canonical_name(step: int, when: datetime | None = None) -> str:
    when = when or datetime.now()
    return f"checkpoint-{step}-{when:%Y%m%d}-{when:%H%M}"


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


class RealmCallback(TrainerCallback):
    def __init__(self, *, paths: RealmPaths, ledger: Ledger, job: Any,
                 should_abort: Callable[[], bool] = lambda: False) -> None:
        self.paths, self.ledger, self.job = paths, ledger, job
        self.should_abort = should_abort
        self.metrics = MetricBuffer(ledger)
        self.stopped = False
        self.has_eval = False
        self.last_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_def_loss: float | None = None  # the fixed held-out set's (DEF)
        self.last_lr: float | None = None
        self.tokens_per_s: float | None = None
        self.last_checkpoint: Path | None = None
        self._t_log = self._t0 = time.monotonic()
        self._tokens_log = self._tokens0 = 0
        self._state = "training"
        self._progress_step: int | None = None  # the step the last on_progress saw
        self._t_save: float | None = None  # when this step's save began
        # Read by the Weaver's hang watchdog; written, like the status and the metric rows,
        # by the MetricBuffer's thread, off the step.
        self.heartbeat = Heartbeat(paths, write=self.metrics.put_file)
        self.keeper = CheckpointKeeper(
            paths, ledger, getattr(job, "retention", None) or RetentionConfig(),
            on_error=lambda msg: ledger.event("checkpoint_tidy_failed", msg))

    # -- helpers ------------------------------------------------------------------
    def tokens_per_second(self, tokens: int) -> float | None:
        """Real tokens over the time spent inside train() (this run, resumed or not)."""
        seconds = time.monotonic() - self._t0
        return (tokens - self._tokens0) / seconds if tokens > self._tokens0 and seconds > 0 else None

    def global_step(self, state) -> int:
        return self.job.step_offset + state.global_step

    def write_status(self, state, **extra: Any) -> None:
        elapsed = time.monotonic() - self._t0
        done, total = state.global_step, state.max_steps or 0
        eta = (elapsed / done) * (total - done) if done and total else None
        write_status(
            self.paths, TRAINING, state=self._state, quest=self.job.quest_id,
            run_id=self.job.run_id, step=self.global_step(state), local_step=done,
            total_steps=total, loss=self.last_loss, val_loss=self.last_val_loss,
            learning_rate=self.last_lr, tokens_per_s=self.tokens_per_s,
            eta_seconds=eta, pid=os.getpid(), write=self.metrics.put_file, **extra,
        )

    def close(self, quiet: bool = False) -> None:
        """Finish the checkpoint tidy-up, write what is still queued and stop the writer
        thread (after train(), before the daemon moves on)."""
        try:
            self.keeper.close()
        finally:
            self.metrics.close(quiet)

    # -- events -------------------------------------------------------------------
    # Under multi-process training (accelerate) only the main process writes the realm;
    # the others still meet it in each save (on_save) and each control decision.
    def on_init_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            self.on_log = self.on_train_end = lambda *a, **k: None  # type: ignore
            self.write_status = lambda *a, **k: None  # type: ignore
            self.metrics.add = self.metrics.event = lambda *a, **k: None  # type: ignore
            self.heartbeat.beat = self.heartbeat.end = lambda *a, **k: None  # type: ignore

    def on_train_begin(self, args, state, control, **kwargs):
        self._t_log = self._t0 = time.monotonic()
        self._tokens_log = self._tokens0 = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        self._progress_step = self.global_step(state)
        self.heartbeat.beat("start", self.global_step(state))
        self.write_status(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        row: dict[str, Any] = {"run_id": self.job.run_id, "quest": self.job.quest_id,
                               "step": self.global_step(state), "local_step": state.global_step,
                               "epoch": _finite(logs.get("epoch", state.epoch))}
        if "loss" in logs:
            now = time.monotonic()
            tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            if now > self._t_log and tokens > self._tokens_log:
                self.tokens_per_s = (tokens - self._tokens_log) / (now - self._t_log)
            self._t_log, self._tokens_log = now, tokens
            self.last_loss = _finite(logs["loss"])
            self.last_lr = _finite(logs.get("learning_rate"))
            row.update(loss=self.last_loss, learning_rate=self.last_lr,
                       grad_norm=_finite(logs.get("grad_norm")),
                       tokens_per_s=self.tokens_per_s, tokens_seen=tokens)
        elif "eval_quest_loss" in logs or "eval_loss" in logs:
            # The engine names its held-out sets: "quest" (val_loss) and "def" (def_loss).
            self.last_val_loss = _finite(logs.get("eval_quest_loss", logs.get("eval_loss")))
            row.update(val_loss=self.last_val_loss)
        elif "eval_def_loss" in logs:
            self.last_def_loss = _finite(logs["eval_def_loss"])
            row.update(def_loss=self.last_def_loss)
        else:
            return
        self.metrics.add(row)
        self.write_status(state)
        self._progress(row["step"])

    def _progress(self, step: int) -> None:
        prev, self._progress_step = self._progress_step, step
        hook = getattr(self.job, "on_progress", None)
        if hook is not None and prev is not None:
            hook(prev, step, self.metrics.flush)

    def on_step_end(self, args, state, control, **kwargs):
        faults.point("step", self.paths.home)
        self._obey_controls(state, control, args.world_size)
        if state.global_step >= state.max_steps or control.should_training_stop:
            # Always end a quest on a saved, evaluated checkpoint.
            control.should_save = True
            control.should_evaluate = self.has_eval
        step = self.global_step(state)
        if control.should_save and not self.keeper.budget_allows(step, kwargs.get("model")):
            # Every process must agree on a save (they meet in it): only a single-process
            # run skips one; multi-process runs still delete what the budget asks.
            control.should_save = args.world_size > 1
        # HF evaluates, then saves, after this hook: on_evaluate moves the mark past the eval.
        self._t_save = time.monotonic() if control.should_save else None
        # HF saves and evaluates after this hook (control.should_save/should_evaluate),
        # never per step otherwise: the beat names the phase the watchdog should expect.
        saving = bool(control.should_save or control.should_evaluate)
        self.heartbeat.beat("saving" if saving else "step", self.global_step(state))
        return control

    def _obey_controls(self, state, control, world: int = 1) -> None:
        pause = self.paths.control_file("pause")
        stop = self.paths.control_file("stop")
        beat = 0.0
        while True:  # every rank takes rank 0's reading (ranks.agree), at the same step
            paused, stopping = agree([pause.exists(), stop.exists() or self.should_abort()], world)
            if not paused or stopping:
                break
            if self._state != "paused":
                self._state = "paused"
                self.metrics.event("battle_paused", f"Battle paused at step {self.global_step(state)}")
            if time.monotonic() - beat >= 1.0:  # a paused battle is alive: its status says so
                self.write_status(state)
                beat = time.monotonic()
            time.sleep(0.2)
        if self._state == "paused":
            self._state = "training"
            self.metrics.event("battle_resumed", f"Battle resumed at step {self.global_step(state)}")
            self.write_status(state)
        if stopping:
            self.stopped = True
            control.should_training_stop = True

    def on_evaluate(self, args, state, control, **kwargs):
        if self._t_save is not None:
            self._t_save = time.monotonic()

    def on_save(self, args, state, control, **kwargs):
        barrier(args.world_size)  # every rank has written its share (its rng state)
        if not state.is_world_process_zero:
            return
        self.heartbeat.beat("step", self.global_step(state))  # the save is written
        save_s = time.monotonic() - self._t_save if self._t_save is not None else None
        src = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not src.is_dir():
            return
        self.metrics.flush()
        step = self.global_step(state)
        when = datetime.now()
        dest = self.paths.checkpoints / canonical_name(step, when)
        sidecar = {
            "name": dest.name, "step": step, "date": when.isoformat(timespec="seconds"),
            "loss": self.last_loss, "val_loss": self.last_val_loss, "def_loss": self.last_def_loss,
            "learning_rate": self.last_lr, "epoch": _finite(state.epoch),
            "skill": self.job.skill, "skill_level": self.job.skill_level,
            "training_file": self.job.quest_id, "run_id": self.job.run_id,
            "base_model": str(base_of(self.job.model_path)),
            "adapter": is_adapter(src),
        }
        # The sidecar is written last inside the temp dir, then one rename publishes
        # the checkpoint: a directory without its sidecar is never complete.
        atomic_write_json(src / SIDECAR, sidecar)
        faults.point("checkpoint_publish")
        publish_dir(src, dest)  # the same step saved twice within a minute replaces the first
        faults.point("checkpoint_ledger")
        self.last_checkpoint = dest
        self.ledger.append("checkpoints", [{
            **{k: v for k, v in sidecar.items() if k not in ("base_model", "adapter", "def_loss")},
            "path": str(dest),
        }])
        # The save's cost on the training thread (HF's write of weights and resume state,
        # the sidecar, the rename), and what it wrote: bench/real_hero_cpu.py reads them.
        self.ledger.event("checkpoint_saved", f"Checkpoint {dest.name} saved", json.dumps({
            "step": step, "path": str(dest), "bytes": dir_bytes(dest),
            "save_seconds": round(save_s, 3) if save_s is not None else None}))
        # The eval queue lives in the ledger: the Task Master answers each request once.
        self.ledger.event("eval_requested", f"Evaluate {dest.name}", json.dumps({
            "checkpoint": dest.name, "step": step, "path": str(dest),
            "skill": self.job.skill, "level": self.job.skill_level}))
        self.write_status(state, last_checkpoint=dest.name)
        self.keeper.saved(dest)  # older checkpoints go weights-only, retention: in the background
        self._checkpoint_hook(step, dest)

    def _checkpoint_hook(self, step: int, path: Path) -> None:
        hook = getattr(self.job, "on_checkpoint", None)
        if hook is None:
            return
        try:
            hook(step, path)
        except Exception:  # a milestone is never worth a battle
            pass

    def on_train_end(self, args, state, control, **kwargs):
        self.heartbeat.end()
        self._state = "stopped" if self.stopped else "finished"
        self.write_status(state)
        self.metrics.flush()


class StepProgress(TrainerCallback):
    """A tqdm bar of training steps with the latest loss, for a person at a terminal
    (`realm train`); the daemon's runs report through the ledger instead."""

    def __init__(self, offset: int = 0) -> None:
        self.offset, self.bar = offset, None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step",
                            desc="training", dynamic_ncols=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None:
            return
        self.bar.update(state.global_step - self.bar.n)
        loss = (logs or {}).get("loss")
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", xp=self.offset + state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self.bar.close()
            self.bar = None


class ThreadShare(TrainerCallback):
    """CPU training on `share` threads, `full` while `lendable()` says the other cores
    are free (train/threads.py: the Task Master idle); checked at every step's start, so
    a task that starts mid-step shares the cores for the rest of that step only."""

    def __init__(self, share: int, full: int, lendable: Callable[[], bool]) -> None:
        self.share, self.full, self.lendable = share, full, lendable
        self.steps = self.steps_full = 0

    def on_step_begin(self, args, state, control, **kwargs):
        import torch
        try:
            want = self.full if self.lendable() else self.share
        except Exception:  # an unreadable status file lends nothing
            want = self.share
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
        self.steps += 1
        self.steps_full += want == self.full

    def on_train_end(self, args, state, control, **kwargs):
        import torch
        torch.set_num_threads(self.share)

    @property
    def full_share(self) -> float | None:
        """The share of steps that ran on all the cores."""
        return self.steps_full / self.steps if self.steps else None
