"""TrainerEngine: one quest -> one HF Trainer run on the hero's current weights."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import TrainingConfig
from ..ledger import Ledger
from ..paths import RealmPaths
from .callbacks import RealmCallback
from .data import PadCollator, build_datasets


@dataclass
class Job:
    quest_id: str
    examples: list[dict]
    model_path: Path
    run_id: str
    step_offset: int = 0
    training: TrainingConfig = field(default_factory=TrainingConfig)
    skill: str | None = None
    skill_level: int | None = None
    # A checkpoint of this same run (same quest, same seed, so the same data order) to
    # continue from: HF restores weights, optimizer, scheduler, RNG and data position.
    # step_offset is then the checkpoint's global step minus its local step.
    resume_from: Path | None = None


@dataclass
class TrainingResult:
    success: bool
    global_step: int = 0
    final_loss: float | None = None
    last_checkpoint_path: str | None = None
    error_message: str | None = None
    tokens_per_second: float | None = None
    peak_memory_bytes: int | None = None
    stopped: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _dtype(name: str, cuda: bool):
    import torch
    if name == "auto":
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, name)


def load_model_and_tokenizer(path: Path, cfg: TrainingConfig):
    """Load any local HF causal-LM directory (dio-mini, Qwen3-0.6B, a checkpoint)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(path) / "config.json").exists():
        raise FileNotFoundError(f"no HF model directory at {path} (config.json missing)")
    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"{path}: tokenizer has no chat template; quests are chat examples")
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=_dtype(cfg.dtype, cuda), attn_implementation=cfg.attn_implementation)
    return model, tokenizer


class TrainerEngine:
    def __init__(self, paths: RealmPaths, ledger: Ledger,
                 should_abort: Callable[[], bool] = lambda: False) -> None:
        self.paths, self.ledger, self.should_abort = paths, ledger, should_abort

    def run_job(self, job: Job) -> TrainingResult:
        t0 = time.monotonic()
        run_dir = self.paths.checkpoints / f".run-{job.run_id}"
        try:
            return self._run(job, run_dir, t0)
        except Exception as e:  # a bad job must never take the daemon down
            return TrainingResult(success=False, global_step=job.step_offset,
                                  error_message=f"{type(e).__name__}: {e}\n"
                                                f"{traceback.format_exc(limit=3)}",
                                  seconds=time.monotonic() - t0)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _run(self, job: Job, run_dir: Path, t0: float) -> TrainingResult:
        import torch
        from transformers import Trainer, TrainingArguments

        cfg = job.training
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cuda = torch.cuda.is_available()
        model, tokenizer = load_model_and_tokenizer(job.model_path, cfg)
        max_len = min(cfg.max_length, getattr(model.config, "max_position_embeddings", 1 << 30))
        train_ds, eval_ds, _ = build_datasets(tokenizer, job.examples, max_len, cfg.eval_fraction,
                                              cfg.max_eval_examples, cfg.seed)
        if len(train_ds) == 0:
            raise ValueError("no example has an assistant token within max_length")
        callback = RealmCallback(paths=self.paths, ledger=self.ledger, job=job,
                                 should_abort=self.should_abort)
        callback.has_eval = eval_ds is not None
        args = TrainingArguments(
            output_dir=str(run_dir),
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            warmup_steps=cfg.warmup_ratio,
            lr_scheduler_type="cosine",
            max_grad_norm=1.0,
            logging_steps=cfg.logging_steps,
            logging_first_step=True,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            eval_strategy="steps" if eval_ds is not None else "no",
            eval_steps=cfg.save_steps,
            report_to="none",
            seed=cfg.seed,
            data_seed=cfg.seed,
            remove_unused_columns=False,
            dataloader_num_workers=0,
            use_cpu=not cuda,
            bf16=cuda and _dtype(cfg.dtype, cuda) == torch.bfloat16,
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          data_collator=PadCollator(tokenizer.pad_token_id),
                          processing_class=tokenizer, callbacks=[callback])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        seconds = time.monotonic() - t0
        return TrainingResult(
            success=True,
            global_step=job.step_offset + trainer.state.global_step,
            final_loss=callback.last_loss if callback.last_loss is not None else out.training_loss,
            last_checkpoint_path=str(callback.last_checkpoint) if callback.last_checkpoint else None,
            tokens_per_second=tokens / out.metrics.get("train_runtime", seconds) if tokens else None,
            peak_memory_bytes=torch.cuda.max_memory_allocated() if cuda else None,
            stopped=callback.stopped,
            seconds=seconds,
        )
