"""`realm train`: one quest through TrainerEngine without the daemon (also the entry
point each process runs under `accelerate launch`).

A standalone run is isolated from DIO: it writes into a realm home of its own
(`--output-dir`, by default `<home>/standalone/<run id>/`: its checkpoints, its ledger),
so it never becomes DIO's latest checkpoint, resume point or hero stats. DIO's realm.toml
gives the training defaults; a `--preset` (below) overrides them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hero_model import hub, profiles
from ..hero_model.vram import GIB
from ..quests.formats import QuestError, load_quest
from ..store.config import TrainingConfig, load_config
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from .trainer import Job, TrainerEngine, TrainingResult

# Training recipes by name: (the card they are sized for in GiB, TrainingConfig values).
TRAIN_PRESETS: dict[str, tuple[float, dict[str, Any]]] = {
    # The seed's Qwen3-4B full fine-tune on one 24 GB RTX 4090 (train_4b_full.py: sequence
    # 512, batch 1, accumulation 32, paged 8-bit AdamW, Liger, gradient checkpointing, bf16;
    # its measured peak 18.6 GB). It states no learning rate: 1e-5 is the usual full
    # fine-tune rate for a Qwen3 of this size.
    "qwen3-4b-24gb": (24.0, {"max_length": 512, "pack_length": 512, "batch_size": 1,
                             "gradient_accumulation_steps": 32, "optimizer": "paged_adamw_8bit",
                             "liger": "on", "gradient_checkpointing": True, "dtype": "bfloat16",
                             "learning_rate": 1e-5}),
}


class TrainRefused(RuntimeError):
    """The run would not fit the card (or asks for something unknown): nothing started."""


def run_home(home: RealmPaths, run_id: str, output_dir: Path | None) -> RealmPaths:
    """The standalone run's own realm home (never DIO's)."""
    dest = Path(output_dir).expanduser().resolve() if output_dir else home.home / "standalone" / run_id
    if dest == home.home.resolve():
        raise TrainRefused(f"--output-dir {dest} is DIO's own realm home: a standalone run needs "
                           "a folder of its own")
    return RealmPaths.at(dest).ensure()


def card_gib() -> float | None:
    """The CUDA device's memory in GiB, None without one."""
    card = profiles.detect_card()
    return card[1] if card else None


def vram_check(model_path: Path, training: TrainingConfig, card: float | None, force: bool) -> str:
    """The estimate, said before the run starts; TrainRefused when it exceeds the card."""
    from ..hero_model.vram import estimate_from_path
    dtype = training.dtype if training.dtype in ("float32", "bfloat16", "float16") else "bfloat16"
    est = estimate_from_path(str(model_path), seq_len=training.pack_length or training.max_length,
                             batch_size=training.batch_size, dtype=dtype, optimizer=training.optimizer,
                             gradient_checkpointing=training.gradient_checkpointing,
                             liger=training.liger != "off", method=training.method,
                             lora_rank=training.lora_rank)
    need = est.total / GIB
    line = (f"VRAM estimate: {need:.1f} GiB (weights {est.weights / GIB:.1f}, gradients "
            f"{est.gradients / GIB:.1f}, optimizer {est.optimizer / GIB:.1f} on the card + "
            f"{est.optimizer_host / GIB:.1f} on the host, activations {est.activations / GIB:.1f}, "
            f"logits {est.logits / GIB:.1f})")
    if card is None:
        return line + "; no CUDA card to check it against"
    if need > card and not force:
        raise TrainRefused(f"{line} exceeds the card's {card:.1f} GiB: lower max_length or "
                           "batch_size, turn on gradient checkpointing or Liger, use LoRA, or pass "
                           "--force to try anyway")
    return line + f" of the card's {card:.1f} GiB" + (" (--force)" if need > card else "")


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def new_run_id() -> str:
    return f"train-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def train_quest(quest: Path, *, model: Path | None = None, from_config: str | None = None,
                max_steps: int | None = None, optimizer: str | None = None,
                packing: bool | None = None, output_dir: Path | None = None,
                preset: str | None = None, vram_gb: float | None = None, force: bool = False,
                say: Callable[[str], None] | None = None) -> TrainingResult | None:
    """`say` (the CLI's messages) also turns on a progress bar of steps. TrainRefused
    before anything starts when a preset is unknown or the run would not fit the card."""
    home = RealmPaths.at().ensure()
    cfg = load_config(home.home)
    say = say if say and is_main_process() else None
    if preset is not None and preset not in TRAIN_PRESETS:
        raise TrainRefused(f"unknown training preset {preset!r}; known: {', '.join(TRAIN_PRESETS)}")
    card, recipe = TRAIN_PRESETS[preset] if preset else (None, {})
    training = cfg.training.model_copy(update={**recipe, **{k: v for k, v in {
        "max_steps": max_steps, "optimizer": optimizer, "packing": packing}.items() if v is not None}})
    if model is not None and hub.is_hub_id(str(model), Path.cwd()):
        model_path = hub.fetch(str(model))  # a hub id: the local cache, downloaded once
    else:
        model_path = Path(model) if model else cfg.base_model_path(home)
    run_id = os.environ.get("REALM_RUN_ID") or new_run_id()
    if preset or vram_gb is not None:  # said before the quest is even read
        check = vram_check(model_path, training, vram_gb if vram_gb is not None else card_gib(), force)
        if say and preset:
            say(f"Preset {preset}: {', '.join(f'{k}={v}' for k, v in recipe.items())}")
        if say:
            say(check)
    paths = run_home(home, run_id, output_dir)
    if say:
        say(f"Reading quest {quest}...")
    examples, report = load_quest(Path(quest), cfg.daemon.max_quest_bytes)
    if not report.ok:
        raise QuestError(report)
    tmp = None
    if from_config:
        from .dio_mini import build_dio_mini
        from .presets import init_from_config
        tmp = tempfile.TemporaryDirectory(prefix="realm-init-")
        tok_dir = home.dio_mini if (home.dio_mini / "tokenizer.json").exists() else \
            build_dio_mini(home.dio_mini)
        model_path = init_from_config(from_config, tok_dir, Path(tmp.name) / from_config)
    try:
        meta = examples[0].get("meta", {})
        job = Job(quest_id=Path(quest).name, examples=examples, model_path=model_path,
                  run_id=run_id, training=training, skill=meta.get("skill"),
                  skill_level=meta.get("level"))
        if say:
            from .callbacks import StepProgress
            job.callbacks.append(StepProgress())
            steps = training.max_steps if training.max_steps > 0 else f"{training.epochs:g} epoch(s)"
            say(f"{len(examples)} examples; training {model_path} ({training.method}, "
                f"{training.optimizer}, {steps}) as run {run_id}, in a realm of its own: "
                f"{paths.home} (checkpoints in {paths.checkpoints}; DIO's realm is not touched)")
        writer = "train" if is_main_process() else f"train-rank{os.environ.get('RANK')}"
        result = TrainerEngine(paths, Ledger(paths, writer)).run_job(job)
        return result if is_main_process() else None
    finally:
        if tmp is not None:
            tmp.cleanup()
