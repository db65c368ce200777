"""realm.toml, validated with pydantic; `load_config()` is the one way in.

Environment overrides use REALM_<SECTION>__<KEY>, e.g. REALM_TRAINING__MAX_STEPS=50.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .paths import RealmPaths


class ConfigError(ValueError):
    """A bad realm.toml or override: says which file, key and problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HeroConfig(_Section):
    name: str = "DIO"
    # Empty means the embedded CPU demo hero, models/dio-mini in the realm home.
    base_model: str = ""


class TrainingConfig(_Section):
    learning_rate: float = Field(3e-3, gt=0, lt=1)
    batch_size: int = Field(16, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    max_length: int = Field(256, ge=8, le=131072)
    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: int = Field(-1, ge=-1)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, lt=1)
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=1)
    eval_fraction: float = Field(0.05, ge=0, lt=0.5)
    max_eval_examples: int = Field(64, ge=0)
    seed: int = 42
    max_grad_norm: float = Field(1.0, gt=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # "auto": flash_attention_2 where flash-attn is installed (CUDA), else sdpa.
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    # Padding-free packing: examples share rows of up to pack_length tokens (0 = max_length),
    # with position_ids restarting per example and attention never crossing examples.
    packing: bool = True
    pack_length: int = Field(0, ge=0, le=131072)
    optimizer: Literal["adamw", "muon", "paged_adamw_8bit"] = "adamw"
    # Muon's learning rate for 2-D hidden weights; 0 = the same as learning_rate (Muon
    # scales its update to AdamW's RMS, so one rate serves both).
    muon_learning_rate: float = Field(0.0, ge=0, lt=1)
    # Liger kernels (fused linear cross-entropy: logits never materialised): "auto" uses
    # them where liger-kernel is installed and a CUDA device is present.
    liger: Literal["auto", "on", "off"] = "auto"
    gradient_checkpointing: bool = False
    threads: int = Field(0, ge=0, le=1024)


class DaemonConfig(_Section):
    poll_seconds: float = Field(1.0, gt=0, le=60)
    settle_seconds: float = Field(0.5, ge=0, le=60)
    max_quest_bytes: int = Field(512 * 1024 * 1024, ge=1)
    keep_completed: int = Field(100, ge=1)
    # recently_completed/ also forgets quests older than this (0 = keep by count only)
    completed_retention_days: float = Field(30.0, ge=0)


class QuestsConfig(_Section):
    # quick | standard | deep (deep tokenises with the hero's tokenizer); see quests.py
    validation_level: Literal["quick", "standard", "deep"] = "standard"
    specs: list[str] = ["chat", "completion", "skill", "sparring"]
    max_examples: int = Field(2_000_000, ge=1)
    max_example_chars: int = Field(200_000, ge=1)
    reject_duplicates: bool = True


class RetentionConfig(_Section):
    """Checkpoint retention: keep the best N, the latest N and every Kth; never the
    champion or the checkpoint in use."""
    keep_best: int = Field(3, ge=0)
    keep_latest: int = Field(3, ge=1)
    keep_every: int = Field(10, ge=0)  # every Kth checkpoint in save order; 0 = none
    metric: Literal["loss", "val_loss", "accuracy"] = "loss"


class OracleConfig(_Section):
    # The pool of models the Oracle keeps loaded (per process): at most max_models, and
    # at most max_bytes of weights (0 = no byte bound); least recently used goes first.
    max_models: int = Field(2, ge=1, le=64)
    max_bytes: int = Field(0, ge=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # torch threads for inference in this process (0 = torch's default).
    threads: int = Field(0, ge=0, le=1024)


class RealmConfig(_Section):
    hero: HeroConfig = HeroConfig()
    training: TrainingConfig = TrainingConfig()
    daemon: DaemonConfig = DaemonConfig()
    quests: QuestsConfig = QuestsConfig()
    oracle: OracleConfig = OracleConfig()
    retention: RetentionConfig = RetentionConfig()

    def quest_limits(self):
        from .quests import Limits
        return Limits(max_bytes=self.daemon.max_quest_bytes, max_examples=self.quests.max_examples,
                      max_example_chars=self.quests.max_example_chars,
                      specs=tuple(self.quests.specs))

    def base_model_path(self, paths: RealmPaths) -> Path:
        if not self.hero.base_model:
            return paths.dio_mini
        p = Path(self.hero.base_model).expanduser()
        return p if p.is_absolute() else (paths.home / p)


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if key.startswith("REALM_") and "__" in key:
            section, _, field = key[len("REALM_"):].lower().partition("__")
            out.setdefault(section, {})[field] = value
    return out


def load_config(home: str | os.PathLike | None = None,
                environ: dict[str, str] | None = None) -> RealmConfig:
    paths = RealmPaths.at(home)
    path = paths.config_file
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
    for section, fields in _env_overrides(dict(os.environ if environ is None else environ)).items():
        data.setdefault(section, {}).update(fields)
    try:
        return RealmConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e
