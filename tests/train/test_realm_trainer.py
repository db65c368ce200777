"""RealmTrainer's mixins, each over a stand-in for HF's Trainer (the engine tests train
the real composition)."""

from __future__ import annotations

from types import SimpleNamespace

from transformers import Trainer

from realm_kernel.train.realm_trainer import (
    ChunkedEvalLossMixin,
    EvalBackOffMixin,
    FaultPointsMixin,
    LearningRateScaleMixin,
    PhaseTimingMixin,
    RealmTrainer,
    RealTokensMixin,
    SkipStepsMixin,
    WeightsOnlyFinalSaveMixin,
)


class StandIn:
    """The few Trainer members the mixins override or read; records what reached it."""

    def __init__(self, max_steps: int = -1, global_step: int = 0) -> None:
        self.state = SimpleNamespace(max_steps=max_steps, global_step=global_step,
                                     num_input_tokens_seen=0)
        self.args = SimpleNamespace(include_num_input_tokens_seen="non_padding", device="cpu")
        self.accelerator = SimpleNamespace(gather=lambda t: t)
        self.callback_handler = SimpleNamespace(on_save=lambda: self.seen.append("on_save"))
        self.seen: list = []

    def _evaluate(self):
        self.seen.append("evaluate")

    def _save_checkpoint(self):
        self.seen.append("save_checkpoint")

    def training_step(self, model, inputs):
        self.seen.append(sorted(inputs))
        return 0.5

    def prediction_step(self, model, inputs, prediction_loss_only):
        self.seen.append(sorted(inputs))

    def _track_num_input_tokens(self, inputs):
        self.seen.append("hf count")

    def _save_optimizer_and_scheduler(self, output_dir):
        self.seen.append("optimizer")

    def _save_scaler(self, output_dir):
        self.seen.append("scaler")

    def _save_rng_state(self, output_dir):
        self.seen.append("rng")


def test_the_realm_trainer_is_its_mixins_over_hf_trainer():
    assert RealmTrainer.__mro__[1:10] == (PhaseTimingMixin, RealTokensMixin,
                                          WeightsOnlyFinalSaveMixin, FaultPointsMixin,
                                          SkipStepsMixin, LearningRateScaleMixin,
                                          EvalBackOffMixin, ChunkedEvalLossMixin, Trainer)


def test_a_step_a_loss_alarm_blamed_is_skipped_on_replay_and_others_train():
    class Skipping(SkipStepsMixin, StandIn):
        pass

    t = Skipping(global_step=6)
    t.skip_steps = frozenset({7})
    assert float(t.training_step(None, {"input_ids": 1})) == 0.0 and t.seen == []
    t.state.global_step = 7
    assert t.training_step(None, {"input_ids": 1}) == 0.5 and t.seen == [["input_ids"]]


def test_phase_timing_wraps_eval_save_and_publish_and_still_calls_them():
    class Timed(PhaseTimingMixin, StandIn):
        pass

    t = Timed()
    t._evaluate()
    t._save_checkpoint()
    t.callback_handler.on_save()
    assert t.seen == ["evaluate", "save_checkpoint", "on_save"]
    assert set(t.phase_seconds) == {"eval", "save", "publish"}
    assert all(s >= 0 for s in t.phase_seconds.values())


def test_real_tokens_stay_out_of_the_model_and_feed_the_token_count():
    class Counting(RealTokensMixin, StandIn):
        pass

    t = Counting()
    inputs = {"input_ids": [1, 2, 3], "num_real_tokens": 7}
    assert t.training_step(None, inputs) == 0.5
    assert t.seen == [["input_ids"]]  # the model never saw the count
    assert inputs["num_real_tokens"] == 7  # HF counts tokens after the step
    t._track_num_input_tokens(inputs)
    assert t.state.num_input_tokens_seen == 7
    t._track_num_input_tokens({"input_ids": [1]})  # unpacked batch: HF counts
    t.prediction_step(None, {"input_ids": [1], "num_real_tokens": 1}, True)
    assert t.seen[1:] == ["hf count", ["input_ids"]]


def test_the_final_save_of_a_finished_run_is_weights_only():
    class Saving(WeightsOnlyFinalSaveMixin, StandIn):
        pass

    def saved(max_steps: int, global_step: int) -> list:
        t = Saving(max_steps, global_step)
        t._save_optimizer_and_scheduler("out")
        t._save_scaler("out")
        t._save_rng_state("out")
        return t.seen

    assert saved(max_steps=10, global_step=10) == []
    assert saved(max_steps=10, global_step=5) == ["optimizer", "scaler", "rng"]
    assert saved(max_steps=-1, global_step=5) == ["optimizer", "scaler", "rng"]  # epochs


def test_a_held_out_pass_out_of_memory_halves_the_eval_batch_and_names_the_error():
    import torch

    class Evaluating(StandIn):
        def __init__(self, errors) -> None:
            super().__init__()
            self.args.per_device_eval_batch_size = 8
            self.eval_dataset, self.errors = [1, 2], list(errors)

        def evaluate(self, eval_dataset=None, *args, **kwargs):
            self.seen.append(self.args.per_device_eval_batch_size)
            if self.errors:
                raise self.errors.pop(0)
            return {"eval_loss": 1.0}

    class BackingOff(EvalBackOffMixin, Evaluating):
        pass

    told: list = []
    t = BackingOff([torch.OutOfMemoryError("CUDA out of memory.\nTried to allocate 2 GiB"),
                    torch.OutOfMemoryError()])  # an error without a message: named by its type
    t.on_eval_backoff = lambda old, new, error: told.append((old, new, error))
    assert t.evaluate() == {"eval_loss": 1.0}
    assert t.seen == [8, 4, 2]
    assert told == [(8, 4, "CUDA out of memory."), (4, 2, "OutOfMemoryError")]
