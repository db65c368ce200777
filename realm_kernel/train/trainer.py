"""TrainerEngine: one quest -> one HF Trainer run on the hero's current weights.

On top of plain `transformers.Trainer` it adds padding-free packing with exact masking
(and a self-check on a real first batch), Muon / fused AdamW / paged 8-bit AdamW, Liger
kernels where installed, gradient checkpointing, exact resume, and the realm callbacks.
The Trainer subclass is `realm_trainer.RealmTrainer`; its arguments come from
`training_args.training_arguments`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback

from ..store import faults
from ..store.config import RetentionConfig, TrainingConfig
from ..store.heldout import example_hash, hashes
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from . import trackers
from .callbacks import RealmCallback, ThreadShare
from .data import PadCollator, build_datasets
from .def_set import fixed_heldout
from .loading import load_model_and_tokenizer, precision
from .lora import check_method, for_method
from .optim import build_optimizer
from .packing import SHORT_ROW_IMPLS, PackedCollator, PackedDataset, masked_capacity
from .ranks import per_rank, world_size
from .rescue import LossAlarm, LossWatch, OutOfMemoryAtBatchOne, is_oom, release_memory, split
from .retries import Retries
from .selfcheck import check_labels, check_packed_batch
from .threads import all_cores, cpu_share, taskmaster_idle
from .training_args import training_arguments


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
    # The hero's base model (the key of the remembered batch split, with the card and
    # max_length: store/batch_fit.py).
    base_model: str = ""
    # Set by the engine's retries (train/rescue.py): the largest micro-batch (0 = the
    # data's per-step batch), gradient checkpointing forced on, the learning rate's
    # factor, the local steps a loss alarm blamed, and the rollbacks so far.
    max_micro: int = 0
    checkpointing: bool = False
    lr_scale: float = 1.0
    skip_steps: frozenset[int] = frozenset()
    rollbacks: int = 0


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
    # The split the run ended with (after any out-of-memory back-off) and its retries.
    micro_batch: int | None = None
    gradient_accumulation_steps: int | None = None
    gradient_checkpointing: bool | None = None
    oom_backoffs: int = 0
    rollbacks: int = 0
    out_of_memory: bool = False  # batch 1 with gradient checkpointing ran out: the setup's fault

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


def lend_threads(cfg: TrainingConfig, cuda: bool, paths: RealmPaths) -> ThreadShare | None:
    """Sets torch's CPU threads. threads = 0 on a CPU: the cores the Task Master leaves
    idle are lent step by step (the ThreadShare callback returned). Several ranks on a
    CPU share its cores between them and lend nothing (one would take every core)."""
    world = world_size()
    if world > 1 and not cuda and not cfg.threads:
        torch.set_num_threads(max(1, all_cores() // world))
        return None
    if cfg.threads or not cuda:
        torch.set_num_threads(cfg.threads or cpu_share())
    if not cfg.threads and not cuda and all_cores() > cpu_share():
        return ThreadShare(cpu_share(), all_cores(), lambda: taskmaster_idle(paths))
    return None


def check_setup(cfg: TrainingConfig, cuda: bool) -> list[str] | str:
    """The trackers' `report_to`. A method or tracker this machine lacks is the setup's
    fault, not the quest's."""
    try:
        check_method(cfg.method, cuda)
        return trackers.check(cfg.report_to)
    except RuntimeError as e:
        raise SetupError(str(e)) from e


def load_for_training(source: Path, cfg: TrainingConfig, cuda: bool) -> tuple[Any, Any, str, bool]:
    """(model ready for the method, tokenizer, attention implementation, liger). A model
    that cannot be loaded is the setup's fault, unless the disk is full."""
    try:
        attn = resolve_attn(cfg, cuda)
        liger = resolve_liger(cfg, cuda)
        model, tokenizer = load_model_and_tokenizer(source, cfg.dtype, attn,
                                                    quantize_4bit=cfg.method == "qlora")
    except (OSError, ImportError, ValueError) as e:
        if faults.is_disk_full(e):
            raise
        raise SetupError(f"cannot load the model at {source}: {type(e).__name__}: {e}") from e
    return for_method(model, cfg), tokenizer, attn, liger


def first_batch(dataset, collator, size: int) -> tuple[list, dict]:
    items = [dataset[i] for i in range(min(size, len(dataset)))]
    return items, collator(items)


def check_masking(job: Job, model: Any, tokenizer: Any, dataset: Any, collator: Any,
                  size: int) -> None:
    """The masking self-check, on a real first batch built by the real collator."""
    items, batch = first_batch(dataset, collator, size)
    packing = job.training.packing
    flat = [e for row in items for e in row] if packing else items
    check_labels(tokenizer, flat, job.examples)
    if packing:
        check_packed_batch(model, {k: v.to(model.device) for k, v in batch.items()
                                   if torch.is_tensor(v) and v.ndim})


def tried_config(job: Job) -> TrainingConfig:
    """[training] as this try runs it: gradient checkpointing forced on by an
    out-of-memory back-off, the learning rate lowered by rollbacks (train/rescue.py)."""
    cfg = job.training
    return cfg.model_copy(update={
        "gradient_checkpointing": cfg.gradient_checkpointing or job.checkpointing,
        "learning_rate": cfg.learning_rate * job.lr_scale,
        "muon_learning_rate": cfg.muon_learning_rate * job.lr_scale})


class TrainerEngine:
    def __init__(self, paths: RealmPaths, ledger: Ledger,
                 should_abort: Callable[[], bool] = lambda: False) -> None:
        self.paths, self.ledger, self.should_abort = paths, ledger, should_abort

    def run_job(self, job: Job) -> TrainingResult:
        t0 = time.monotonic()
        run_dir = self.paths.checkpoints / f".run-{job.run_id}"
        retries = self._retries = Retries(self.paths, self.ledger, job)
        job = self._without_fixed_set(retries.remembered(job))
        try:
            while True:  # a try per split and per rollback (train/retries.py)
                try:
                    return retries.succeeded(job, self._run(job, run_dir, t0))
                except LossAlarm as alarm:
                    job = retries.roll_back(job, alarm)
                except Exception as e:
                    if not is_oom(e):
                        raise
                    job = retries.back_off(job, e)
                release_memory()
                shutil.rmtree(run_dir, ignore_errors=True)
        except Exception as e:  # a bad job must never take the daemon down
            return TrainingResult(success=False, global_step=job.step_offset,
                                  disk_full=faults.is_disk_full(e),
                                  setup_fault=isinstance(e, SetupError | ImportError
                                                         | OutOfMemoryAtBatchOne),
                                  out_of_memory=isinstance(e, OutOfMemoryAtBatchOne),
                                  oom_backoffs=retries.backoffs, rollbacks=job.rollbacks,
                                  error_message=f"{type(e).__name__}: {e}\n"
                                                f"{traceback.format_exc(limit=3)}",
                                  seconds=time.monotonic() - t0)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    # -- DEF's fixed held-out set (train/def_set.py) ------------------------------------
    def _without_fixed_set(self, job: Job) -> Job:
        """The quest's examples less any of its skill level's fixed held-out set: DEF's
        examples are never trained on."""
        self._fixed = fixed_heldout(self.paths, job.skill, job.skill_level)
        if not self._fixed:
            return job
        banned = hashes(self._fixed)
        kept = [e for e in job.examples if example_hash(e) not in banned]
        if len(kept) < len(job.examples):
            self.ledger.event("heldout_excluded", f"{len(job.examples) - len(kept)} examples of "
                              f"{job.quest_id} are in DEF's fixed held-out set: not trained on",
                              json.dumps({"quest": job.quest_id, "excluded": len(job.examples) - len(kept),
                                          "skill": job.skill, "level": job.skill_level}))
        return replace(job, examples=kept)

    def _data(self, job: Job, tokenizer: Any, model: Any, attn: str):
        """(train, held-out sets by name: "quest" (val_loss) and "def" (def_loss), or None,
        collator, per-step batch, packing efficiency)."""
        cfg = job.training
        max_len = min(cfg.max_length, getattr(model.config, "max_position_embeddings", 1 << 30))
        train, held, _ = build_datasets(tokenizer, job.examples, max_len, cfg.eval_fraction,
                                        cfg.max_eval_examples, cfg.seed)
        if len(train) == 0:
            raise ValueError("no example has an assistant token within max_length")
        fixed = build_datasets(tokenizer, self._fixed, max_len, 0.0, 0, cfg.seed)[0] if self._fixed else None
        evals = {k: d for k, d in (("quest", held), ("def", fixed)) if d is not None and len(d)} or None
        if not cfg.packing:
            return train, evals, PadCollator(tokenizer.pad_token_id), cfg.batch_size, None
        lengths = [len(r["input_ids"]) for d in [train, *(evals or {}).values()] for r in d.rows]
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
        packed_evals = {k: PackedDataset(d.rows, capacity) for k, d in evals.items()} if evals else None
        collator = PackedCollator(tokenizer.pad_token_id, attn, mask_dtype)
        return packed, packed_evals, collator, rows_per_step, packed.efficiency()

    def _run(self, job: Job, run_dir: Path, t0: float) -> TrainingResult:
        cfg, self._retries.tried = tried_config(job), {}
        cuda = torch.cuda.is_available()
        lending = lend_threads(cfg, cuda, self.paths)
        report_to = check_setup(cfg, cuda)
        model, tokenizer, attn, liger = load_for_training(job.resume_from or job.model_path, cfg, cuda)
        train_ds, eval_ds, collator, per_step, efficiency = self._data(job, tokenizer, model, attn)
        check_masking(job, model, tokenizer, train_ds, collator, per_step)
        micro, divisor = split(per_rank(per_step, world_size()), job.max_micro)
        cfg = cfg.model_copy(update={"gradient_accumulation_steps":
                                     cfg.gradient_accumulation_steps * divisor})
        self._retries.tried = {"micro": micro, "checkpointing": cfg.gradient_checkpointing,
                               "accumulation": cfg.gradient_accumulation_steps}
        optimizer, optim_name = build_optimizer(model, cfg.optimizer, lr=cfg.learning_rate,
                                                muon_lr=cfg.muon_learning_rate,
                                                weight_decay=cfg.weight_decay)
        callback = RealmCallback(paths=self.paths, ledger=self.ledger, job=job,
                                 should_abort=self.should_abort)
        callback.has_eval = eval_ds is not None
        args = training_arguments(cfg, output_dir=run_dir, run_name=job.run_id,
                                  batch_size=micro, optim=optim_name,
                                  has_eval=eval_ds is not None, report_to=report_to,
                                  cuda=cuda, liger=liger)
        trainer, out, t_train = self._fit(
            job, callback, cuda, model=model, args=args, train_dataset=train_ds,
            eval_dataset=eval_ds, data_collator=collator, processing_class=tokenizer,
            callbacks=[callback, LossWatch(cfg, job.skip_steps), *job.callbacks,
                       *filter(None, [lending])],
            optimizers=(optimizer, None))
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
            micro_batch=micro, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            gradient_checkpointing=cfg.gradient_checkpointing,
            **{f"{k}_seconds": v for k, v in trainer.phase_seconds.items()},
        )

    def _fit(self, job: Job, callback: RealmCallback, cuda: bool,
             **trainer_kwargs: Any) -> tuple[Any, Any, float]:
        """Builds the RealmTrainer and trains: (trainer, HF's TrainOutput, seconds)."""
        # transformers.trainer costs seconds of imports: paid by a run, not by importing
        # this module (the CLI, the daemon's start).
        from .realm_trainer import RealmTrainer

        # Trackers read their environment when the Trainer builds their callbacks and at train start.
        with trackers.environment(job.training.report_to, self.paths.home, job.run_id):
            trainer = RealmTrainer(**trainer_kwargs)
            trainer.skip_steps, trainer.lr_scale = job.skip_steps, job.lr_scale
            trainer.on_eval_backoff = lambda old, new, error: self.ledger.event(
                "eval_backoff", f"The held-out pass ran out of memory: again at batch {new}",
                json.dumps({"from": old, "to": new, "error": error[:300]}))
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
            if cuda:
                self._record_peak(job, trainer)
            return trainer, out, time.perf_counter() - t_train

    def _record_peak(self, job: Job, trainer: Any) -> None:
        """The battle's peak GPU memory beside the calculator's estimate (train/memory.py);
        a measurement never costs the battle."""
        try:
            from .memory import measure, record
            peak = measure(trainer.model, tried_config(job), trainer.args.per_device_train_batch_size,
                           bool(trainer.args.use_liger_kernel))
            record(self.paths, self.ledger, self._retries.key, peak)
        except Exception as e:
            self.ledger.event("battle_memory", f"Peak GPU memory not recorded: {type(e).__name__}: {e}")
