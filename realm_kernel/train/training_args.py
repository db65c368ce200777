"""training_arguments(): the HF `TrainingArguments` of one realm run, from `[training]`
and what the engine resolved for this machine and quest."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainingArguments

from ..store.config import TrainingConfig
from .loading import cpu_autocast_bf16, torch_dtype


def checkpointing_args(args_cls: type, on: bool) -> dict:
    # transformers renamed gradient_checkpointing to activation_checkpointing (5.2x);
    # the device machines may carry an older one.
    new = "activation_checkpointing" in getattr(args_cls, "__dataclass_fields__", {})
    name = "activation_checkpointing" if new else "gradient_checkpointing"
    return {name: on, f"{name}_kwargs": {"use_reentrant": False}}


def mixed_bf16(dtype: str, cuda: bool) -> bool:
    """bf16 mixed precision: on a GPU when the weights are bf16, on a CPU as autocast
    where the CPU has native bf16 (`dtype = "auto"`, see loading.py)."""
    return torch_dtype(dtype, cuda) == torch.bfloat16 if cuda else cpu_autocast_bf16(dtype)


def training_arguments(cfg: TrainingConfig, *, output_dir: Path, run_name: str,
                       batch_size: int, optim: str, has_eval: bool,
                       report_to: list[str] | str, cuda: bool, liger: bool) -> TrainingArguments:
    """`batch_size` is the per-device batch the data chose (packed rows or examples);
    `optim` the name build_optimizer gave its optimizer; `report_to` trackers.check's."""
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        optim=optim,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_ratio,  # below 1: a share of the steps
        lr_scheduler_type="cosine",
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        # A NaN loss is logged as NaN (HF would log the window's mean), so the loss alarm
        # (train/rescue.py) sees it.
        logging_nan_inf_filter=False,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps or cfg.save_steps,
        report_to=report_to,
        run_name=run_name,
        seed=cfg.seed,
        data_seed=cfg.seed,
        # The collators' extra keys (num_real_tokens) must reach RealmTrainer.
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=mixed_bf16(cfg.dtype, cuda),
        **checkpointing_args(TrainingArguments, cfg.gradient_checkpointing),
        use_liger_kernel=liger,
        include_num_input_tokens_seen="non_padding",
        # Metrics go to the ledger and the callbacks' progress: no tqdm bars in the logs.
        disable_tqdm=True,
    )
