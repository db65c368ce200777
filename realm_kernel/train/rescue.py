"""What a battle does when the run itself fails (docs/engine.md "What happens when a
battle fails"): out of memory -> a smaller micro-batch (then gradient checkpointing) and
a resume; a loss alarm -> a rollback to the last good checkpoint, the bad step skipped
and a lower learning rate. The engine (train/trainer.py) retries; this module decides."""

from __future__ import annotations

import gc
import math
import statistics
from collections import deque

import torch
from transformers import TrainerCallback

from ..store.config import TrainingConfig


class LossAlarm(RuntimeError):
    """A logged step whose loss or gradient norm says the weights went bad."""

    def __init__(self, step: int, steps: range, reason: str) -> None:
        super().__init__(f"loss alarm at step {step}: {reason}")
        self.step, self.steps, self.reason = step, steps, reason


class OutOfMemoryAtBatchOne(RuntimeError):
    """Batch 1 with gradient checkpointing still runs out of memory: no retry can help."""


class SetAside(RuntimeError):
    """A quest whose loss alarms kept firing after max_rollbacks rollbacks."""


def is_oom(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, also where a wrapper raised from it."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, torch.OutOfMemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def alarm_reason(loss: float | None, grad_norm: float | None, history: list[float],
                 cfg: TrainingConfig) -> str | None:
    """Why this logged loss is an alarm, or None. The rule (docs/engine.md): a non-finite
    loss or gradient norm; or, once `loss_spike_warmup` losses are in the history, a loss
    above `loss_spike_factor` x the median of the last `loss_spike_window` of them."""
    if loss is not None and not math.isfinite(loss):
        return f"the loss is {loss}"
    if grad_norm is not None and not math.isfinite(grad_norm):
        return f"the gradient norm is {grad_norm}"
    if loss is None or not cfg.loss_spike_factor or len(history) < cfg.loss_spike_warmup:
        return None
    median = statistics.median(history[-cfg.loss_spike_window:])
    if median > 0 and loss > cfg.loss_spike_factor * median:
        return (f"the loss {loss:.4g} is over {cfg.loss_spike_factor:g} x the median "
                f"{median:.4g} of the last {min(len(history), cfg.loss_spike_window)} losses")
    return None


class LossWatch(TrainerCallback):
    """Raises LossAlarm from the step's log (before that step's save, so the last saved
    checkpoint predates the bad step). Skipped steps log a zero loss: not judged."""

    def __init__(self, cfg: TrainingConfig, skip_steps: frozenset[int]) -> None:
        self.cfg, self.skip = cfg, skip_steps
        self.history: deque[float] = deque(maxlen=max(cfg.loss_spike_window, cfg.loss_spike_warmup))
        self.logged_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.logged_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        window, self.logged_step = range(self.logged_step + 1, state.global_step + 1), state.global_step
        if state.global_step in self.skip:
            return
        loss, norm = _float(logs.get("loss")), _float(logs.get("grad_norm"))
        reason = alarm_reason(loss, norm, list(self.history), self.cfg)
        if reason:
            raise LossAlarm(state.global_step, window, reason)
        if loss is not None:
            self.history.append(loss)


def _float(x: object) -> float | None:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def split(per_step: int, max_micro: int) -> tuple[int, int]:
    """(micro-batch, divisor): a step's per_step rows run as `divisor` micro-batches of at
    most max_micro rows (0 = no cap), gradient accumulation x divisor, so that a step (one
    XP) holds the same examples (exactly when divisor divides per_step)."""
    divisor = -(-per_step // max_micro) if max_micro else 1
    return -(-per_step // divisor), divisor


def smaller(micro: int, checkpointing: bool) -> tuple[int, bool] | None:
    """(max micro-batch, gradient checkpointing) to try after running out of memory:
    half the micro-batch, then gradient checkpointing at batch 1; None when both are spent."""
    if micro > 1:
        return micro // 2, checkpointing
    if not checkpointing:
        return 1, True
    return None


def card_name(cuda: bool) -> str:
    return torch.cuda.get_device_name(0) if cuda else "cpu"


def release_memory() -> None:
    """After a failed try: what the try held is garbage once its frames are gone."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
