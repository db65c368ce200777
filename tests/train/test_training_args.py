"""training_arguments(): what a realm run hands HF, built alone (no model, no Trainer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from realm_kernel.store.config import TrainingConfig
from realm_kernel.train import loading
from realm_kernel.train.training_args import checkpointing_args, mixed_bf16, training_arguments


def build(cfg: TrainingConfig, **over):
    kwargs = dict(output_dir=Path("/realm/checkpoints/.run-r1"), run_name="r1", batch_size=4,
                  optim="adamw_torch_fused", has_eval=True, report_to="none", cuda=False,
                  liger=False)
    return training_arguments(cfg, **{**kwargs, **over})


def test_cpu_float32_run_takes_the_config_and_what_the_realm_always_sets():
    cfg = TrainingConfig(dtype="float32", learning_rate=2e-3, gradient_accumulation_steps=3,
                         max_steps=30, save_steps=7, logging_steps=2, seed=5,
                         warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=0.5)
    args = build(cfg)
    assert args.output_dir == "/realm/checkpoints/.run-r1" and args.run_name == "r1"
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (4, 4)
    assert args.gradient_accumulation_steps == 3 and args.max_steps == 30
    assert (args.learning_rate, args.weight_decay, args.max_grad_norm) == (2e-3, 0.01, 0.5)
    assert args.warmup_steps == 0.1  # below 1: HF reads it as a share of the steps
    assert args.optim == "adamw_torch_fused" and args.lr_scheduler_type == "cosine"
    assert (args.save_strategy, args.save_steps) == ("steps", 7)
    assert (args.logging_steps, args.logging_first_step) == (2, True)
    assert (args.seed, args.data_seed) == (5, 5)
    assert args.use_cpu and not args.bf16 and not args.use_liger_kernel
    # Always: the collators' num_real_tokens reaches the trainer, workers stay in-process,
    # tokens are counted without padding, no tqdm bars in the daemon's log.
    assert args.remove_unused_columns is False and args.dataloader_num_workers == 0
    assert args.include_num_input_tokens_seen == "non_padding"
    assert args.disable_tqdm and args.report_to == []


def test_held_out_loss_at_each_save_unless_eval_steps_says_otherwise():
    assert build(TrainingConfig(save_steps=25)).eval_steps == 25
    assert build(TrainingConfig(save_steps=25, eval_steps=100)).eval_steps == 100
    assert build(TrainingConfig(), has_eval=False).eval_strategy == "no"
    assert build(TrainingConfig()).eval_strategy == "steps"


@pytest.mark.parametrize("native", [True, False])
def test_cpu_auto_dtype_is_bf16_autocast_only_on_a_cpu_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(loading, "cpu_bf16_native", lambda: native)
    assert build(TrainingConfig(dtype="auto")).bf16 is native
    assert build(TrainingConfig(dtype="float32")).bf16 is False


def test_gpu_mixed_precision_follows_the_weights_dtype():
    # TrainingArguments refuses bf16 without a GPU, so the GPU choice is checked alone.
    assert mixed_bf16("auto", cuda=True) and mixed_bf16("bfloat16", cuda=True)
    assert not mixed_bf16("float32", cuda=True) and not mixed_bf16("float16", cuda=True)


def test_checkpointing_goes_by_the_name_this_transformers_knows():
    from transformers import TrainingArguments

    name = next(iter(checkpointing_args(TrainingArguments, True)))
    assert name in ("activation_checkpointing", "gradient_checkpointing")
    args = build(TrainingConfig(gradient_checkpointing=True))
    assert getattr(args, name) is True
    assert getattr(args, f"{name}_kwargs") == {"use_reentrant": False}

    @dataclass
    class OlderArgs:  # transformers before the rename
        gradient_checkpointing: bool = False

    assert checkpointing_args(OlderArgs, False) == {
        "gradient_checkpointing": False, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
