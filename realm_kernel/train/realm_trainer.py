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


class RealmTrainer(PhaseTimingMixin, RealTokensMixin, WeightsOnlyFinalSaveMixin, Trainer):
    """The Trainer every realm run uses (TrainerEngine)."""
