"""`realm train`: one quest through TrainerEngine without the daemon (also the entry
point each process runs under `accelerate launch`)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..quests.formats import QuestError, load_quest
from ..store.config import load_config
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from .trainer import Job, TrainerEngine, TrainingResult


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_quest(quest: Path, *, model: Path | None = None, from_config: str | None = None,
                max_steps: int | None = None, optimizer: str | None = None,
                packing: bool | None = None,
                say: Callable[[str], None] | None = None) -> TrainingResult | None:
    """`say` (the CLI's messages) also turns on a progress bar of steps."""
    paths = RealmPaths.at().ensure()
    cfg = load_config(paths.home)
    say = say if say and is_main_process() else None
    if say:
        say(f"Reading quest {quest}...")
    examples, report = load_quest(Path(quest), cfg.daemon.max_quest_bytes)
    if not report.ok:
        raise QuestError(report)
    training = cfg.training.model_copy(update={k: v for k, v in {
        "max_steps": max_steps, "optimizer": optimizer, "packing": packing}.items() if v is not None})
    model_path = Path(model) if model else cfg.base_model_path(paths)
    tmp = None
    if from_config:
        from .dio_mini import build_dio_mini
        from .presets import init_from_config
        tmp = tempfile.TemporaryDirectory(prefix="realm-init-")
        tok_dir = paths.dio_mini if (paths.dio_mini / "tokenizer.json").exists() else \
            build_dio_mini(paths.dio_mini)
        model_path = init_from_config(from_config, tok_dir, Path(tmp.name) / from_config)
    try:
        meta = examples[0].get("meta", {})
        run_id = os.environ.get("REALM_RUN_ID") or f"train-{time.strftime('%Y%m%d-%H%M%S')}"
        job = Job(quest_id=Path(quest).name, examples=examples, model_path=model_path,
                  run_id=run_id, training=training, skill=meta.get("skill"),
                  skill_level=meta.get("level"))
        if say:
            from .callbacks import StepProgress
            job.callbacks.append(StepProgress())
            steps = training.max_steps if training.max_steps > 0 else f"{training.epochs:g} epoch(s)"
            say(f"{len(examples)} examples; training {model_path} ({training.method}, "
                f"{training.optimizer}, {steps}) as run {run_id}; checkpoints in {paths.checkpoints}")
        writer = "train" if is_main_process() else f"train-rank{os.environ.get('RANK')}"
        result = TrainerEngine(paths, Ledger(paths, writer)).run_job(job)
        return result if is_main_process() else None
    finally:
        if tmp is not None:
            tmp.cleanup()
