"""realm.toml, validated with pydantic; `load_config()` is the one way in.

Environment overrides use REALM_<SECTION>__<KEY>, e.g. REALM_TRAINING__MAX_STEPS=50.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..hero_model import hub, profiles
from . import batch_fit
from .paths import RealmPaths


class ConfigError(ValueError):
    """A bad realm.toml or override: says which file, key and problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HeroConfig(_Section):
    name: str = "DIO"
    # Empty means the embedded CPU demo hero, models/dio-mini in the realm home (or the
    # profile's base model: Qwen/Qwen3-0.6B for qwen3-0.6b).
    base_model: str = ""
    # Training defaults sized for the hero (hero_model/profiles.py): "auto" (dio-mini, or
    # qwen3-0.6b when base_model is Qwen/Qwen3-0.6B), "dio-mini" or "qwen3-0.6b". Values
    # set in realm.toml or the environment always win over the profile's.
    profile: str = profiles.AUTO
    # Size a GPU profile for a card of this many GiB instead of CUDA device 0 (0 = detect).
    vram_gb: float = Field(0.0, ge=0, le=100_000)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        return profiles.check_name(v)


class TrainingConfig(_Section):
    # Tuned for dio-mini (the demo hero): 3e-3 stalled it on BIN L1 at the marginal answer
    # (28% after 445 steps, loss 0.48) where 1e-3 reached 100% by step 50; see
    # bench/RESULTS.md (idle loop). A real Qwen3 wants far less (e.g. 1e-5).
    learning_rate: float = Field(1e-3, gt=0, lt=1)
    batch_size: int = Field(16, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    max_length: int = Field(256, ge=8, le=131072)
    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: int = Field(-1, ge=-1)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, lt=1)
    logging_steps: int = Field(1, ge=1)
    # Every checkpoint is evaluated once (the Task Master's eval queue) and a level-up
    # needs three evals >= 80%, so frequent small checkpoints keep the idle loop moving.
    save_steps: int = Field(25, ge=1)
    # The held-out loss every eval_steps (0 = at each save): evals may run less often
    # than saves on a large model, where the held-out pass costs more than the write.
    eval_steps: int = Field(0, ge=0)
    eval_fraction: float = Field(0.05, ge=0, lt=0.5)
    # The held-out loss is computed at every checkpoint; 16 examples keep that cheap
    # (64 cost ~5 s per checkpoint on a busy 2-core CPU, a third of the time between saves).
    max_eval_examples: int = Field(16, ge=0)
    seed: int = 42
    max_grad_norm: float = Field(1.0, gt=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # "auto": flash_attention_2 where flash-attn is installed (CUDA), else sdpa.
    attn_implementation: Literal["auto", "sdpa", "sdpa_segments", "eager", "flash_attention_2"] = "auto"
    # Padding-free packing: examples share rows of up to pack_length tokens (0 = chosen:
    # max_length under flash-attn; with sdpa/eager the shortest that packs >= 90% full),
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
    # torch threads for CPU training; 0 = half the cores, and all of them for the steps
    # while the Task Master is idle (train/threads.py). The Task Master's evals and the
    # Jupyter server share the machine: on a busy 2-core CPU one training thread ran dio-mini
    # at 2.7 steps/s where two threads, oversubscribed, managed 0.7.
    threads: int = Field(0, ge=0, le=1024)
    # Experiment trackers the HF Trainer reports to, beside the ledger: "tensorboard"
    # (event files in trackers/tensorboard/<run>), "mlflow" (MLFLOW_TRACKING_URI, else a
    # local file store in trackers/mlruns), "wandb" (WANDB_* settings; WANDB_MODE=offline
    # works without an account), or "none". A list reports to several.
    report_to: list[Literal["none", "tensorboard", "mlflow", "wandb"]] = ["none"]
    # How the weights are tuned: "full", "lora" (peft adapters on the base; checkpoints are
    # adapters whose sidecar names the base) or "qlora" (LoRA on a 4-bit base: CUDA and
    # bitsandbytes). lora_targets: module names, or ["all-linear"].
    method: Literal["full", "lora", "qlora"] = "full"
    lora_rank: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], min_length=1)
    # Loss alarms (train/rescue.py, docs/engine.md "What happens when a battle fails"): a
    # non-finite loss or gradient norm, or a spike, rolls the battle back to its last good
    # checkpoint. A spike: once loss_spike_warmup losses of the run are logged, a loss above
    # loss_spike_factor x the median of the last loss_spike_window losses (0 = no spikes).
    loss_spike_factor: float = Field(10.0, ge=0)
    loss_spike_window: int = Field(20, ge=1, le=10_000)
    loss_spike_warmup: int = Field(20, ge=1)
    # Each rollback multiplies the quest's learning rate by this; after max_rollbacks in one
    # quest it is set aside (failed/, with the reason).
    alarm_lr_factor: float = Field(0.5, gt=0, le=1)
    max_rollbacks: int = Field(3, ge=1, le=100)
    # Processes one battle trains over on this machine (docs/engine.md "Several processes"):
    # 0 = one per visible GPU, 1 on a CPU. Above 1 the daemon runs the battle under
    # `accelerate launch` (DDP, gloo on a CPU); a step's batch is split across the ranks,
    # so a step (one XP) holds the same examples at any count.
    nproc: int = Field(0, ge=0, le=64)
    # How the ranks hold the model: "ddp" (a whole copy each) or "fsdp" (sharded, for a
    # model that does not fit one card); checkpoints are full state dicts either way.
    parallel: Literal["ddp", "fsdp"] = "ddp"

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        v = [v] if isinstance(v, str) else v
        if isinstance(v, list) and "none" in v and len(v) > 1:
            raise ValueError(f"'none' cannot be combined with trackers (got {v})")
        return v


class DaemonConfig(_Section):
    poll_seconds: float = Field(1.0, gt=0, le=60)
    settle_seconds: float = Field(0.5, ge=0, le=60)
    max_quest_bytes: int = Field(512 * 1024 * 1024, ge=1)
    keep_completed: int = Field(100, ge=1)
    # recently_completed/ also forgets quests older than this (0 = keep by count only)
    completed_retention_days: float = Field(30.0, ge=0)
    # Hang detection (the Weaver's watchdog, docs/reliability.md): a training step is hung
    # when it takes hang_factor x the slowest of the last 20 steps, and never less than
    # the floor (first steps load the model; saves and evals write or read a lot).
    hang_factor: float = Field(20.0, ge=2)
    hang_floor_s: float = Field(300.0, gt=0)
    hang_save_floor_s: float = Field(900.0, gt=0)
    # A clean stop waits this long for the step boundary and its checkpoint.
    stop_timeout_s: float = Field(180.0, gt=0)


class LogsConfig(_Section):
    # logs/<name>.log rotates at max_mb / files; at most `files` files per log.
    max_mb: float = Field(64.0, gt=0)
    files: int = Field(4, ge=2, le=100)


class BackupConfig(_Section):
    # Automatic snapshots (before a migration, a compaction's deletion, a retention
    # --apply, a champion change) are kept by count, per reason.
    keep: int = Field(5, ge=1, le=1000)
    auto: bool = True


class QuestsConfig(_Section):
    # How far a quest is checked: quick | standard | deep (deep tokenises with the hero's
    # tokenizer); see quests/formats.py `Depth`.
    validation_depth: Literal["quick", "standard", "deep"] = "standard"
    specs: list[str] = ["chat", "completion", "skill", "sparring"]
    max_examples: int = Field(2_000_000, ge=1)
    max_example_chars: int = Field(200_000, ge=1)
    reject_duplicates: bool = True

    @model_validator(mode="before")
    @classmethod
    def _old_depth_name(cls, data: object) -> object:
        """Deprecated: `validation_level`, the old name of validation_depth (renamed as
        "level" means hero and skill levels), is still read; validation_depth wins over it."""
        if isinstance(data, dict) and "validation_level" in data:
            data = dict(data)
            old = data.pop("validation_level")
            data.setdefault("validation_depth", old)
        return data


class RetentionConfig(_Section):
    """Checkpoint retention: keep the best N, the latest N and every Kth; never the
    champion or the checkpoint in use."""
    keep_best: int = Field(3, ge=0)
    keep_latest: int = Field(3, ge=1)
    keep_every: int = Field(10, ge=0)  # every Kth checkpoint in save order; 0 = none
    # At most this many "every Kth" checkpoints: past it K doubles (every 20th, 40th, ...),
    # so the history stays spread over the whole run and its count stays bounded.
    keep_every_max: int = Field(10, ge=1)
    metric: Literal["loss", "val_loss", "accuracy"] = "loss"
    # Applied after each saved checkpoint (in the background, off the training step).
    auto: bool = True
    # Disk the checkpoints folder may use (GB, 0 = no budget), enforced before each save:
    # the checkpoints retention values least go first; a save that cannot fit is skipped.
    max_disk_gb: float = Field(0.0, ge=0)


class VaultConfig(_Section):
    """Shipping published checkpoints to a shared zone (store/shipping.py)."""
    # The zone (its id, added by a person with `realm vault add-zone`) each published
    # checkpoint is copied to, weights-only, in the daemon's background; "" = none.
    ship_to: str = ""
    # After a failed copy (the zone unreachable) the next try waits this long, doubling
    # up to ship_retry_max_s; the checkpoint stays local, and retention keeps it meanwhile.
    ship_retry_s: float = Field(30.0, gt=0, le=3600)
    ship_retry_max_s: float = Field(900.0, gt=0, le=86400)
    # Retention per zone ([vault.retention.<zone id>], the keys of [retention]); a zone
    # without its own policy keeps every copy shipped to it.
    retention: dict[str, RetentionConfig] = {}


class OracleConfig(_Section):
    # The pool of models the Oracle keeps loaded (per process): at most max_models, and
    # at most max_bytes of weights (0 = no byte bound); least recently used goes first.
    max_models: int = Field(2, ge=1, le=64)
    max_bytes: int = Field(0, ge=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # torch threads for inference in this process (0 = torch's default).
    threads: int = Field(0, ge=0, le=1024)


class TaskSetting(_Section):
    """One task's settings over its registry defaults ([taskmaster.tasks.<task_id>]);
    parameter names and types are checked against the task's own (a wrong one is listed
    under the task's `problems` and left at its default)."""
    enabled: bool | None = None
    priority: int | None = Field(None, ge=0, le=100)
    cooldown_s: float | None = Field(None, ge=0, le=7 * 86400)
    parameters: dict[str, bool | int | float | str] = {}


class TaskmasterConfig(_Section):
    """The Task Master (realm_kernel/services/taskmaster.py): runs pipeline notebooks when idle."""
    enabled: bool = True
    poll_seconds: float = Field(2.0, gt=0, le=300)
    # GPU tasks run only while every GPU's utilisation is under this (percent).
    gpu_threshold: float = Field(40.0, ge=0, le=100)
    # On a busy GPU a waiting eval asks the daemon to lend it the GPU at its next quest
    # boundary, for at most this long (services/gpu_yield.py); 0 = never ask.
    gpu_yield_s: float = Field(300.0, ge=0, le=3600)
    # A notebook running longer than this is stopped and recorded as failed.
    task_timeout_s: float = Field(900.0, gt=0)
    # Output notebooks kept per task (older ones are deleted; the ledger keeps the rows).
    keep_outputs: int = Field(30, ge=1)
    # torch/OpenMP threads of the pipeline kernels; 0 = half the cores (training has the rest).
    kernel_threads: int = Field(0, ge=0, le=1024)
    # Per task: enabled, priority, cooldown_s and notebook parameters (counts, eval sizes,
    # thresholds), e.g. [taskmaster.tasks.sparring_bin] parameters = {count = 80}.
    tasks: dict[str, TaskSetting] = {}


class SkillPlanConfig(_Section):
    enabled: bool = True
    # Share of generated quests (relative to the other enabled skills); 0 = none.
    priority: int = Field(1, ge=0, le=100)


class CurriculumConfig(_Section):
    """What the generate task writes: the current level of each skill, plus review."""
    skills: dict[str, SkillPlanConfig] = Field(default_factory=lambda: {
        "bin": SkillPlanConfig(priority=1), "sy": SkillPlanConfig(priority=1)})
    # Fraction of each quest drawn from earlier levels (review), spread over the last
    # review_window levels.
    review_fraction: float = Field(0.25, ge=0, lt=1)
    review_window: int = Field(4, ge=0, le=100)
    # Examples per generated quest: small quests keep the curriculum close behind the
    # skill's level (a level-up switches the next quest at once).
    quest_examples: int = Field(1200, ge=16, le=1_000_000)
    # Generate while fewer than this many quests are queued or in training.
    queue_low: int = Field(2, ge=1, le=100)

    @field_validator("skills")
    @classmethod
    def _known_skills(cls, v: dict[str, SkillPlanConfig]) -> dict[str, SkillPlanConfig]:
        import realm_skills as skills
        unknown = sorted(set(v) - set(skills.skill_ids()))
        if unknown:
            raise ValueError(f"unknown skill(s) {unknown}; known: {skills.skill_ids()}")
        return v


class WatchConfig(_Section):
    """The forgetting watch (evals/forgetting.py): passive probes on champions and every
    Nth evaluated checkpoint."""
    enabled: bool = True
    # Probe every Nth evaluated checkpoint too (0 = champions only).
    every_n_evals: int = Field(20, ge=0, le=100_000)
    # Problems per primitive in the fixed probe set (60 primitives): the cost bound.
    per_primitive: int = Field(2, ge=1, le=100)
    seed: int = 20261201  # fixed, so probe numbers compare over time
    # A passive more than this many points below its best run is flagged as a drop.
    drop_points: float = Field(10.0, gt=0, le=100)
    review: bool = True  # a drop queues a review quest of that passive
    review_examples: int = Field(200, ge=1, le=100_000)


class ClusterConfig(_Section):
    """Cluster mode (docs/cluster.md): "local" (the default) is one machine, exactly as
    without this section: nothing is imported or started for it. "ray" places the
    inference tasks (evals, sparring, probes) on a running Ray cluster's nodes."""
    engine: Literal["local", "ray"] = "local"

    @property
    def on(self) -> bool:
        """Cluster mode: inference tasks go to the Ray cluster's nodes."""
        return self.engine == "ray"
    # The running Ray cluster to join ("127.0.0.1:6379", "ray://head:10001"); empty:
    # RAY_ADDRESS, else the cluster `ray start` left on this machine ("auto").
    address: str = ""
    # The Ray resource an inference task asks for (one unit per task): eval hosts offer it
    # (`ray start --resources '{"realm_inference": 1}'`), the trainer does not, so an eval
    # never lands on the training card while an eval node is up.
    inference_resource: str = Field("realm_inference", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    # GPUs each inference task takes on its node (0 on CPU-only nodes).
    gpus_per_task: float = Field(1.0, ge=0, le=8)
    # Where a node keeps the checkpoints it fetched, by step (empty: ~/.cache/realm/checkpoints).
    cache_dir: str = ""
    # Tries of a task whose node or worker died before the realm falls back to this machine.
    max_retries: int = Field(3, ge=0, le=100)


class RealmConfig(_Section):
    hero: HeroConfig = HeroConfig()
    training: TrainingConfig = TrainingConfig()
    daemon: DaemonConfig = DaemonConfig()
    quests: QuestsConfig = QuestsConfig()
    oracle: OracleConfig = OracleConfig()
    retention: RetentionConfig = RetentionConfig()
    vault: VaultConfig = VaultConfig()
    taskmaster: TaskmasterConfig = TaskmasterConfig()
    curriculum: CurriculumConfig = CurriculumConfig()
    logs: LogsConfig = LogsConfig()
    backup: BackupConfig = BackupConfig()
    watch: WatchConfig = WatchConfig()
    cluster: ClusterConfig = ClusterConfig()
    _profile: profiles.Resolution | None = PrivateAttr(default=None)

    @property
    def resolved_profile(self) -> profiles.Resolution:
        """The hero profile in force: each of its keys' value and source (load_config sets
        it; a RealmConfig built by hand is resolved here as if nothing were explicit)."""
        if self._profile is None:
            self._profile = profiles.resolve(self, {}, Path.cwd())
        return self._profile

    def base_model_path(self, paths: RealmPaths) -> Path:
        """The hero's base model folder: dio-mini, a local folder, or a hub id's snapshot
        in the local HF cache (where it would be, when not fetched yet: see hero_model.hub)."""
        if not self.hero.base_model:
            return paths.dio_mini
        if hub.is_hub_id(self.hero.base_model, paths.home):
            return hub.cached(self.hero.base_model) or hub.expected_path(self.hero.base_model)
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
    """realm.toml, then the environment over it, then the hero profile's defaults under
    both (hero_model/profiles.py): the profile fills only what neither sets."""
    paths = RealmPaths.at(home)
    path = paths.config_file
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
    explicit = {f"{s}.{k}": "realm.toml" for s, fields in data.items() if isinstance(fields, dict)
                for k in fields}
    for section, fields in _env_overrides(dict(os.environ if environ is None else environ)).items():
        data.setdefault(section, {}).update(fields)
        explicit.update({f"{section}.{k}": f"environment (REALM_{section.upper()}__{k.upper()})"
                         for k in fields})
    cfg = _validate(path, data)
    try:
        resolution = profiles.resolve(cfg, explicit, paths.home,
                                      lambda model: batch_fit.peaks_for(paths, model))
    except ValueError as e:
        raise ConfigError(f"{path}: hero.profile: {e}") from e
    changed = {k: v for k, v in resolution.applied.items() if _get(cfg, k) != v}
    if changed:  # dio-mini's values are the fields' own defaults: nothing to redo
        for key, value in changed.items():
            section, _, name = key.partition(".")
            data.setdefault(section, {})[name] = value
        cfg = _validate(path, data)
    resolution.measured = batch_fit.measured_for(paths, cfg.hero.base_model or "dio-mini",
                                                 cfg.training.max_length)
    cfg._profile = resolution
    return cfg


def _get(cfg: RealmConfig, key: str) -> object:
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section), name)


def _validate(path: Path, data: dict) -> RealmConfig:
    try:
        return RealmConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in e.errors()
        )
        raise ConfigError(f"{path}: {problems}") from e
