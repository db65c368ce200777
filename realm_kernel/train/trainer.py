"""TrainerEngine: one quest -> one HF Trainer run on the hero's current weights.

On top of plain `transformers.Trainer` it adds padding-free packing with exact masking
(and a self-check on a real first batch), Muon / fused AdamW / paged 8-bit AdamW, Liger
kernels where installed, gradient checkpointing, exact resume, and the realm callbacks.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..store import faults
from ..store.checkpoints import run_finished
from ..store.config import RetentionConfig, TrainingConfig
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from . import trackers
from .callbacks import RealmCallback, ThreadShare
from .data import PadCollator, build_datasets
from .loading import cpu_autocast_bf16, load_model_and_tokenizer, precision, torch_dtype
from .lora import check_method, for_method
from .optim import build_optimizer
from .packing import SHORT_ROW_IMPLS, PackedCollator, PackedDataset, masked_capacity
from .selfcheck import check_labels, check_packed_batch
from .threads import all_cores, cpu_share, taskmaster_idle


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
    # The caller's game hooks (the daemon's hero level-ups and achievements):
    # on_progress(previous step, step, flush metrics) after each logged step,
    # on_checkpoint(step, path) after each published checkpoint.
    on_progress: Callable[[int, int, Callable[[], None]], None] | None = None
    on_checkpoint: Callable[[int, Path], None] | None = None
    # More HF TrainerCallbacks (`realm train`'s progress bar).
    callbacks: list[Any] = field(default_factory=list)
    # Checkpoint retention and the disk budget, applied around each save (train/keeper.py).
    retention: RetentionConfig | None = None


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
    packing_efficiency: float | None = None
    attn_implementation: str | None = None
    precision: str | None = None  # "float32 + bf16 autocast" on a CPU with native bf16
    world_size: int = 1
    disk_full: bool = False  # the run failed for want of disk space, not for its quest
    setup_fault: bool = False  # the model or a package is missing/unloadable: not the quest's fault
    # Where train() spent its time: all of it, the held-out loss, HF's checkpoint writes and
    # our publishing of each checkpoint (sidecar, rename, ledger rows).
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    save_seconds: float = 0.0
    publish_seconds: float = 0.0
    # CPU, threads = 0: the share of steps that ran on all cores (the Task Master idle).
    all_cores_share: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class SetupError(RuntimeError):
    """The base model (or a checkpoint) cannot be loaded, or an optional package the
    settings ask for is missing: the realm's setup is at fault, never the quest."""


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_attn(cfg: TrainingConfig, cuda: bool) -> str:
    if cfg.attn_implementation != "auto":
        return cfg.attn_implementation
    if cuda:  # sdpa_segments reads segment bounds on the host: one sync per layer on a GPU
        return "flash_attention_2" if installed("flash_attn") else "sdpa"
    return "sdpa_segments"


def resolve_liger(cfg: TrainingConfig, cuda: bool) -> bool:
    if cfg.liger == "on":
        if not installed("liger_kernel"):
            raise RuntimeError("liger = 'on' needs liger-kernel: pip install -e '.[gpu]'")
        return True
    return cfg.liger == "auto" and cuda and installed("liger_kernel")


def _realm_trainer_class():
    import torch
    from transformers import Trainer

    class RealmTrainer(Trainer):
        """Counts real (non-pad) tokens of packed batches, whose 4-D masks HF can't sum,
        and times the per-save work (held-out loss, checkpoint write, publishing)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.phase_seconds = {"eval": 0.0, "save": 0.0, "publish": 0.0}
            self.callback_handler.on_save = self._timed("publish", self.callback_handler.on_save)

        def _timed(self, phase, fn):
            def timed(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.phase_seconds[phase] += time.perf_counter() - t0
            return timed

        def _evaluate(self, *args, **kwargs):
            return self._timed("eval", super()._evaluate)(*args, **kwargs)

        def _save_checkpoint(self, *args, **kwargs):
            return self._timed("save", super()._save_checkpoint)(*args, **kwargs)

        def training_step(self, model, inputs, *args, **kwargs):
            n = inputs.pop("num_real_tokens", None)
            loss = super().training_step(model, inputs, *args, **kwargs)
            if n is not None:
                inputs["num_real_tokens"] = n
            return loss

        def prediction_step(self, model, inputs, *args, **kwargs):
            inputs.pop("num_real_tokens", None)
            return super().prediction_step(model, inputs, *args, **kwargs)

        def _finishing(self) -> bool:
            # The last save of a run that reaches max_steps: nothing resumes into it (the
            # next quest starts a fresh optimizer), so it is written weights-only and the
            # step never waits for optimizer state (3x the weights with AdamW). A stopped or
            # skipped run ends earlier and keeps its state for the resume.
            return run_finished(self.state.max_steps, self.state.global_step)

        def _save_optimizer_and_scheduler(self, output_dir):
            # The weights of this checkpoint are on disk, its optimizer state is not yet.
            faults.point("checkpoint_write")
            if self._finishing():
                return None
            return super()._save_optimizer_and_scheduler(output_dir)

        def _save_scaler(self, output_dir):
            return None if self._finishing() else super()._save_scaler(output_dir)

        def _save_rng_state(self, output_dir):
            return None if self._finishing() else super()._save_rng_state(output_dir)

        def _track_num_input_tokens(self, inputs):
            n = inputs.get("num_real_tokens")
            if n is None or self.args.include_num_input_tokens_seen == "no":
                return super()._track_num_input_tokens(inputs)
            n = torch.as_tensor(n, device=self.args.device, dtype=torch.int64)
            self.state.num_input_tokens_seen += int(self.accelerator.gather(n).sum().item())

    return RealmTrainer


def _checkpointing_args(args_cls: type, on: bool) -> dict:
    # transformers renamed gradient_checkpointing to activation_checkpointing (5.2x);
    # the device machines may carry an older one.
    new = "activation_checkpointing" in getattr(args_cls, "__dataclass_fields__", {})
    name = "activation_checkpointing" if new else "gradient_checkpointing"
    return {name: on, f"{name}_kwargs": {"use_reentrant": False}}


def first_batch(dataset, collator, size: int) -> tuple[list, dict]:
    items = [dataset[i] for i in range(min(size, len(dataset)))]
    return items, collator(items)


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
                                  disk_full=faults.is_disk_full(e),
                                  setup_fault=isinstance(e, SetupError | ImportError),
                                  error_message=f"{type(e).__name__}: {e}\n"
                                                f"{traceback.format_exc(limit=3)}",
                                  seconds=time.monotonic() - t0)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _data(self, job: Job, tokenizer: Any, model: Any, attn: str):
        import torch
        cfg = job.training
        max_len = min(cfg.max_length, getattr(model.config, "max_position_embeddings", 1 << 30))
        train, held, _ = build_datasets(tokenizer, job.examples, max_len, cfg.eval_fraction,
                                        cfg.max_eval_examples, cfg.seed)
        if len(train) == 0:
            raise ValueError("no example has an assistant token within max_length")
        if not cfg.packing:
            return train, held, PadCollator(tokenizer.pad_token_id), cfg.batch_size, None
        lengths = [len(r["input_ids"]) for r in train.rows + (held.rows if held is not None else [])]
        # pack_length 0: with sdpa or eager, rows no longer than the data needs; flash-attn's
        # varlen kernel costs the same for any row, so rows there are max_length long.
        capacity = cfg.pack_length or (masked_capacity(lengths, max_len) if attn in SHORT_ROW_IMPLS
                                       else max_len)
        mean_len = sum(len(r["input_ids"]) for r in train.rows) / len(train)
        # Keep about batch_size examples per step, so steps (XP) mean the same thing.
        rows_per_step = max(1, round(cfg.batch_size * mean_len / capacity))
        mask_dtype = next(model.parameters()).dtype
        if mask_dtype not in (torch.float32, torch.float16, torch.bfloat16):
            mask_dtype = torch.float32
        packed = PackedDataset(train.rows, capacity)
        packed_eval = PackedDataset(held.rows, capacity) if held is not None else None
        collator = PackedCollator(tokenizer.pad_token_id, attn, mask_dtype)
        return packed, packed_eval, collator, rows_per_step, packed.efficiency()

    def _run(self, job: Job, run_dir: Path, t0: float) -> TrainingResult:
        import torch
        from transformers import PrinterCallback, TrainingArguments

        cfg = job.training
        cuda = torch.cuda.is_available()
        if cfg.threads or not cuda:
            torch.set_num_threads(cfg.threads or cpu_share())
        # threads = 0 on CPU: the cores the Task Master leaves idle are lent step by step.
        lending = None
        if not cfg.threads and not cuda and all_cores() > cpu_share():
            lending = ThreadShare(cpu_share(), all_cores(), lambda: taskmaster_idle(self.paths))
        source = job.resume_from or job.model_path
        try:  # a method or tracker this machine lacks is the setup's fault, not the quest's
            check_method(cfg.method, cuda)
            report_to = trackers.check(cfg.report_to)
        except RuntimeError as e:
            raise SetupError(str(e)) from e
        try:
            attn = resolve_attn(cfg, cuda)
            liger = resolve_liger(cfg, cuda)
            model, tokenizer = load_model_and_tokenizer(source, cfg.dtype, attn,
                                                        quantize_4bit=cfg.method == "qlora")
        except (OSError, ImportError, ValueError) as e:
            if faults.is_disk_full(e):
                raise
            raise SetupError(f"cannot load the model at {source}: {type(e).__name__}: {e}") from e
        model = for_method(model, cfg)
        train_ds, eval_ds, collator, per_step, efficiency = self._data(job, tokenizer, model, attn)

        # The masking self-check, on a real first batch built by the real collator.
        items, batch = first_batch(train_ds, collator, per_step)
        flat = [e for row in items for e in row] if cfg.packing else items
        check_labels(tokenizer, flat, job.examples)
        if cfg.packing:
            check_packed_batch(model, {k: v.to(model.device) for k, v in batch.items()
                                       if torch.is_tensor(v) and v.ndim})

        optimizer, optim_name = build_optimizer(model, cfg.optimizer, lr=cfg.learning_rate,
                                                muon_lr=cfg.muon_learning_rate,
                                                weight_decay=cfg.weight_decay)
        callback = RealmCallback(paths=self.paths, ledger=self.ledger, job=job,
                                 should_abort=self.should_abort)
        callback.has_eval = eval_ds is not None
        args = TrainingArguments(
            output_dir=str(run_dir),
            per_device_train_batch_size=per_step,
            per_device_eval_batch_size=per_step,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            optim=optim_name,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            warmup_steps=cfg.warmup_ratio,
            lr_scheduler_type="cosine",
            max_grad_norm=cfg.max_grad_norm,
            logging_steps=cfg.logging_steps,
            logging_first_step=True,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            eval_strategy="steps" if eval_ds is not None else "no",
            eval_steps=cfg.eval_steps or cfg.save_steps,
            report_to=report_to,
            run_name=job.run_id,
            seed=cfg.seed,
            data_seed=cfg.seed,
            remove_unused_columns=False,
            dataloader_num_workers=0,
            use_cpu=not cuda,
            bf16=(torch_dtype(cfg.dtype, cuda) == torch.bfloat16 if cuda else cpu_autocast_bf16(cfg.dtype)),
            **_checkpointing_args(TrainingArguments, cfg.gradient_checkpointing),
            use_liger_kernel=liger,
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
        )
        # Trackers read their environment when the Trainer builds their callbacks and at train start.
        with trackers.environment(cfg.report_to, self.paths.home, job.run_id):
            trainer = _realm_trainer_class()(
                model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                data_collator=collator, processing_class=tokenizer,
                callbacks=[callback, *job.callbacks, *filter(None, [lending])],
                optimizers=(optimizer, None))
            # Metrics go to the ledger (and a progress bar, trackers): not as dicts on stdout.
            trainer.remove_callback(PrinterCallback)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t_train = time.perf_counter()
            try:
                out = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
            except BaseException:  # rows still queued are written; the run's own error wins
                callback.close(quiet=True)
                raise
            callback.close()
            t_train = time.perf_counter() - t_train
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        return TrainingResult(
            success=True,
            global_step=job.step_offset + trainer.state.global_step,
            final_loss=callback.last_loss if callback.last_loss is not None else out.training_loss,
            last_checkpoint_path=str(callback.last_checkpoint) if callback.last_checkpoint else None,
            tokens_per_second=callback.tokens_per_second(tokens),
            peak_memory_bytes=torch.cuda.max_memory_allocated() if cuda else None,
            stopped=callback.stopped,
            seconds=time.monotonic() - t0,
            packing_efficiency=efficiency,
            attn_implementation=attn,
            precision=precision(cfg.dtype, cuda),
            world_size=args.world_size,
            train_seconds=t_train,
            all_cores_share=lending.full_share if lending else None,
            **{f"{k}_seconds": v for k, v in trainer.phase_seconds.items()},
        )
