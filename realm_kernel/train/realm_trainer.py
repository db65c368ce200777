"""RealmTrainer: HF `Trainer` plus the realm's overrides, one small mixin per concern
(the shape of TRL's and Axolotl's trainers). Each mixin calls `super()`, so it composes
with any `Trainer` and is testable over a stand-in base.

Importing this module pulls in `transformers.trainer` (seconds of imports): the engine
imports it when a run starts, not when `train.trainer` is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer

from ..store import faults
from ..store.checkpoints import run_finished
from . import chunked_loss
from .rescue import is_oom, release_memory


class PhaseTimingMixin:
    """Times the per-save work: the held-out loss, HF's checkpoint write and our
    publishing of each checkpoint (the callbacks' on_save), in `phase_seconds`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase_seconds = {"eval": 0.0, "save": 0.0, "publish": 0.0}
        self.callback_handler.on_save = self._timed("publish", self.callback_handler.on_save)

    def _timed(self, phase: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.phase_seconds[phase] += time.perf_counter() - t0
        return timed

    def _evaluate(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("eval", super()._evaluate)(*args, **kwargs)

    def _save_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("save", super()._save_checkpoint)(*args, **kwargs)


class RealTokensMixin:
    """Counts the real (non-pad) tokens of packed batches, whose 4-D masks HF can't sum:
    the collator's `num_real_tokens` is kept out of the model's inputs and fed to HF's
    token count instead."""

    def training_step(self, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        n = inputs.pop("num_real_tokens", None)
        loss = super().training_step(model, inputs, *args, **kwargs)
        if n is not None:
            inputs["num_real_tokens"] = n
        return loss

    def prediction_step(self, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        inputs.pop("num_real_tokens", None)
        return super().prediction_step(model, inputs, *args, **kwargs)

    def _track_num_input_tokens(self, inputs: dict) -> Any:
        n = inputs.get("num_real_tokens")
        if n is None or self.args.include_num_input_tokens_seen == "no":
            return super()._track_num_input_tokens(inputs)
        n = torch.as_tensor(n, device=self.args.device, dtype=torch.int64)
        self.state.num_input_tokens_seen += int(self.accelerator.gather(n).sum().item())


class WeightsOnlyFinalSaveMixin:
    """The last save of a run that reaches max_steps is written weights-only: nothing
    resumes into it (the next quest starts a fresh optimizer), so the step never waits for
    optimizer state (3x the weights with AdamW). A stopped or skipped run ends earlier and
    keeps its state for the resume."""

    def _finishing(self) -> bool:
        return run_finished(self.state.max_steps, self.state.global_step)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> Any:
        # The weights of this checkpoint are on disk, its optimizer state is not yet.
        faults.point("checkpoint_write")
        if self._finishing():
            return None
        return super()._save_optimizer_and_scheduler(output_dir)

    def _save_scaler(self, output_dir: str) -> Any:
        return None if self._finishing() else super()._save_scaler(output_dir)

    def _save_rng_state(self, output_dir: str) -> Any:
        return None if self._finishing() else super()._save_rng_state(output_dir)


class FaultPointsMixin:
    """The reliability suite's out-of-memory and NaN faults (store/faults.py) at the real
    places: the forward, the backward (a hook on the loss raises inside autograd), the
    optimizer step and the held-out pass, sized by the micro-batch (the per-device batch
    the back-off halves). Free when no fault is configured."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        before_step = self.callback_handler.on_pre_optimizer_step

        def on_pre_optimizer_step(args: Any, state: Any, control: Any) -> Any:
            faults.out_of_memory("optimizer", state.global_step + 1, args.per_device_train_batch_size)
            return before_step(args, state, control)
        self.callback_handler.on_pre_optimizer_step = on_pre_optimizer_step

    def compute_loss(self, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        step, rows = self.state.global_step + 1, self.args.per_device_train_batch_size
        if not model.training:
            return super().compute_loss(model, inputs, *args, **kwargs)
        faults.out_of_memory("forward", step, rows)
        out = super().compute_loss(model, inputs, *args, **kwargs)
        loss = out[0] if isinstance(out, tuple) else out
        if faults.nan_step(step):
            loss = loss * float("nan")
        if loss.requires_grad:
            def backward_fault(grad: torch.Tensor) -> torch.Tensor:
                faults.out_of_memory("backward", step, rows)
                return grad
            loss.register_hook(backward_fault)
        return (loss, *out[1:]) if isinstance(out, tuple) else loss

    def prediction_step(self, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        faults.out_of_memory("eval", self.state.global_step, self.args.per_device_eval_batch_size)
        return super().prediction_step(model, inputs, *args, **kwargs)


class SkipStepsMixin:
    """The steps a loss alarm blamed are skipped when the battle replays them after its
    rollback: no forward, no gradient, so the optimizer leaves the weights be; the step
    still counts, so the run ends on the step count its examples require."""

    skip_steps: frozenset[int] = frozenset()

    def training_step(self, model: Any, inputs: dict, *args: Any, **kwargs: Any) -> Any:
        if self.state.global_step + 1 in self.skip_steps:
            return torch.zeros((), device=self.args.device)
        return super().training_step(model, inputs, *args, **kwargs)


class LearningRateScaleMixin:
    """A rolled-back battle resumes with a lower learning rate: the optimizer is built at
    the lowered rate, and the resume state loaded from the checkpoint (which remembers
    the old one) is set to it, schedule position kept."""

    lr_scale: float = 1.0

    def _load_optimizer_and_scheduler(self, checkpoint: Any) -> Any:
        groups = self.optimizer.param_groups if self.optimizer is not None else []
        built = [g.get("initial_lr", g["lr"]) for g in groups]
        out = super()._load_optimizer_and_scheduler(checkpoint)
        sched = self.lr_scheduler
        if checkpoint is None or self.lr_scale == 1.0 or not hasattr(sched, "lr_lambdas"):
            return out
        sched.base_lrs = list(built)
        # Loading replaced the optimizer's group dicts: set the loaded ones.
        for g, lr, fn in zip(self.optimizer.param_groups, built, sched.lr_lambdas, strict=False):
            g["initial_lr"], g["lr"] = lr, lr * fn(sched.last_epoch)
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        return out


class EvalBackOffMixin:
    """A held-out pass that runs out of memory is run again at half the eval batch, down
    to 1, without touching the training; only its finished pass is logged, so an eval is
    counted once. `on_eval_backoff(old, new, error)` is told of each retry."""

    on_eval_backoff: Callable[[int, int, str], None] | None = None

    def evaluate(self, eval_dataset: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(eval_dataset if eval_dataset is not None else self.eval_dataset, dict):
            return super().evaluate(eval_dataset, *args, **kwargs)  # each set comes back here
        while True:
            try:
                return super().evaluate(eval_dataset, *args, **kwargs)
            except Exception as e:
                size = self.args.per_device_eval_batch_size
                if not is_oom(e) or size <= 1:
                    raise
                self.args.per_device_eval_batch_size = size // 2
                error = str(e).splitlines()[0] if str(e) else type(e).__name__
            release_memory()
            if self.on_eval_backoff is not None:
                self.on_eval_backoff(size, size // 2, error)


class ChunkedEvalLossMixin:
    """The held-out loss in chunks of tokens (train/chunked_loss.py), never the whole
    batch's full-vocabulary logits; HF's own path where Liger's fused loss already skips
    them, on several processes (whose token counts HF rescales) or for a model whose logits
    are more than its head over the decoder."""

    eval_loss_chunk: int = chunked_loss.CHUNK_TOKENS

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        plain = self.accelerator.unwrap_model(model)
        if (model.training or self.args.use_liger_kernel or "labels" not in inputs
                or self.accelerator.num_processes > 1 or self.label_smoother is not None
                or self.compute_loss_func is not None or self.compute_metrics is not None
                or not chunked_loss.supports(plain)):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        # HF divides by the Trainer's token count only for a model that takes it.
        divisor = num_items_in_batch if self.model_accepts_loss_kwargs else None
        loss = chunked_loss.held_out_loss(plain, inputs, divisor, self.eval_loss_chunk)
        return (loss, {}) if return_outputs else loss  # no logits: the pass is loss-only


class RealmTrainer(PhaseTimingMixin, RealTokensMixin, WeightsOnlyFinalSaveMixin,
                   FaultPointsMixin, SkipStepsMixin, LearningRateScaleMixin, EvalBackOffMixin,
                   ChunkedEvalLossMixin, Trainer):
    """The Trainer every realm run uses (TrainerEngine)."""
