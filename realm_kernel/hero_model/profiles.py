"""Hero profiles: the training defaults that suit the hero's size, and where each comes from.

`[hero] profile` in realm.toml (or `realm play --hero NAME`) picks one; "auto" (the
default) is dio-mini, or qwen3-0.6b when `base_model` is the Hub id Qwen/Qwen3-0.6B. A
profile only fills what realm.toml and the environment leave unset: an explicit value
always wins. `load_config()` resolves it; `RealmConfig.resolved_profile` says, per key, the
value and its source, `realm hero profile` prints that, and every battle_started event
records it.

A GPU profile sizes the per-device batch, gradient accumulation (their product stays the
profile's effective batch), gradient checkpointing and, on a small card, max_length with
the VRAM calculator (hero_model/vram.py `fit`) to the card that is present: torch.cuda's
device 0, or `[hero] vram_gb` (REALM_HERO__VRAM_GB, `--vram-gb`) to plan for a card of
that size. Without CUDA it falls back to the CPU at batch 1 (same effective batch) with
dtype "auto" (float32 weights, bf16 matmuls where the CPU has native bf16) and says so in
its notes: it works, slowly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import hub
from .vram import GIB, QWEN3_ARCHITECTURES, fit

AUTO = "auto"


@dataclass(frozen=True)
class Default:
    value: Any
    source: str  # a published recipe, a measurement (bench/RESULTS.md), or the reasoning


@dataclass(frozen=True)
class HeroProfile:
    name: str
    summary: str
    defaults: dict[str, Default]  # "section.field" -> value and source
    # GPU profiles: the architecture to size for when the base model is not on disk yet,
    # and the effective batch (examples per optimizer step) the fit keeps.
    architecture: str | None = None
    effective_batch: int = 16


_DIO_MINI_BATCH = "measured: bench/RESULTS.md idle_loop_tuning 2026-11-26 (dio-mini, BIN, batch 16)"
_FIT = "VRAM calculator (hero_model/vram.py fit) for the card"

PROFILES: dict[str, HeroProfile] = {p.name: p for p in (
    HeroProfile("dio-mini", "the 1.5M-parameter CPU demo hero (models/dio-mini)", {
        "training.learning_rate": Default(1e-3, "measured: bench/RESULTS.md idle_loop_tuning "
                                                "2026-11-26 (1e-3 reached 100% on BIN L1 by step 50; "
                                                "3e-3 stalled at 28% after 445 steps)"),
        "training.max_length": Default(256, "dio-mini's quests (BIN/SY problems) are far shorter; "
                                            "its context is 1024"),
        "training.batch_size": Default(16, _DIO_MINI_BATCH),
        "training.gradient_accumulation_steps": Default(1, _DIO_MINI_BATCH),
        "training.gradient_checkpointing": Default(False, "a 1.5M model needs none"),
        "training.dtype": Default("auto", "fp32 on the CPU, its matmuls in bf16 where the CPU "
                                          "has native bf16 (bf16 where CUDA is present)"),
        "training.save_steps": Default(25, "measured: bench/RESULTS.md idle_loop 2026-11-26 "
                                           "(a checkpoint every 25 steps: 194 checkpoints, 14 "
                                           "level-ups in 60 min on 2 cores)"),
        "training.max_eval_examples": Default(16, "measured: 64 held-out examples cost ~5 s per "
                                                  "checkpoint on a busy 2-core CPU, a third of the "
                                                  "time between saves"),
    }),
    HeroProfile("qwen3-0.6b", "Qwen3-0.6B, full fine-tuning in bf16 on one CUDA card", {
        "hero.base_model": Default("Qwen/Qwen3-0.6B", "the published checkpoint on the Hugging Face "
                                                      "Hub (found in the local HF cache)"),
        "training.learning_rate": Default(1e-5, "published recipe: LLaMA-Factory "
                                                "examples/train_full/llama3_full_sft.yaml (full SFT, "
                                                "1.0e-5, cosine, bf16); the rate of this project's "
                                                "qwen3-4b-24gb preset"),
        "training.max_length": Default(2048, "published recipe: LLaMA-Factory full SFT example "
                                             "(cutoff_len 2048); halved by the fit on a small card"),
        "training.batch_size": Default(16, _FIT + ": the largest power of two whose estimate fits "
                                              "85% of the card (batch x accumulation = 16)"),
        "training.gradient_accumulation_steps": Default(1, _FIT + ": 16 / batch_size, so a step "
                                                              "(one XP) is 16 examples as for dio-mini"),
        "training.gradient_checkpointing": Default(False, _FIT + ": on only when batch 1 does not "
                                                                 "fit without it"),
        "training.dtype": Default("bfloat16", "Qwen3's published weights are bf16; the seed's "
                                              "recipes train in bf16 (\"auto\" on the CPU fallback)"),
        "training.save_steps": Default(200, "measured and projected: bench/real_hero_cpu.py "
                                            "2026-12-01 (Qwen3-0.6B bf16: a resume save 3.6 GB, "
                                            "~7.9 s; weights-only 1.2 GB) at an assumed RTX 4090 "
                                            "rate of ~0.9 s/step keeps saving under 5% of wall "
                                            "time; a quest's own final save is weights-only"),
        "training.max_eval_examples": Default(64, "chosen: the whole 5% held-out share of a "
                                                  "1200-example quest (60), cheap on a GPU; 16 "
                                                  "was dio-mini's CPU budget"),
    }, architecture="qwen3-0.6b"),
)}

# The keys a card fit decides (the rest of a GPU profile's defaults are fixed values).
FITTED = ("training.batch_size", "training.gradient_accumulation_steps",
          "training.gradient_checkpointing", "training.max_length")


def names() -> list[str]:
    return [AUTO, *PROFILES]


def check_name(name: str) -> str:
    if name not in names():
        raise ValueError(f"unknown hero profile {name!r}; known: {', '.join(names())}")
    return name


@dataclass
class Resolution:
    """The profile a realm uses here, each profile key's value and its source."""
    profile: str
    chosen_by: str
    device: str
    values: dict[str, Any] = field(default_factory=dict)  # every profile key: the value in force
    sources: dict[str, str] = field(default_factory=dict)  # every profile key: where it came from
    applied: dict[str, Any] = field(default_factory=dict)  # what the profile filled in
    notes: list[str] = field(default_factory=list)
    card_gib: float | None = None
    fit: str | None = None
    # Batch splits battles on this model and max_length backed off to after running out
    # of memory, per card (store/batch_fit.py): each battle on that card starts there.
    measured: list[dict] = field(default_factory=list)
    # The measured peak (store/batch_fit.py) the fit was calibrated by: the battle's peak
    # over the calculator's estimate for its settings on this card, model and max_length.
    calibration: dict | None = None

    def as_dict(self) -> dict:
        return {"profile": self.profile, "chosen_by": self.chosen_by, "device": self.device,
                "card_gib": self.card_gib, "fit": self.fit, "notes": list(self.notes),
                "measured": list(self.measured), "calibration": self.calibration,
                "values": {k: {"value": v, "source": self.sources[k]} for k, v in self.values.items()}}

    def text(self) -> str:
        lines = [f"Hero profile: {self.profile} (chosen by {self.chosen_by}) on {self.device}"]
        if self.fit:
            lines.append(f"Fit: {self.fit}")
        width = max(map(len, self.values), default=0)
        lines += [f"  {k:<{width}}  {json.dumps(v):<18} {self.sources[k]}" for k, v in self.values.items()]
        lines += [f"Measured on {m['card']}: micro-batch {m['micro_batch']} x accumulation "
                  f"{m['gradient_accumulation_steps']}"
                  f"{' with gradient checkpointing' if m.get('gradient_checkpointing') else ''} "
                  f"fits (out-of-memory back-off, {m.get('measured')}); battles there start at it"
                  for m in self.measured]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def detect_card() -> tuple[str, float] | None:
    """(name, GiB) of CUDA device 0 through torch.cuda, None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return props.name, props.total_memory / GIB


def _auto(base_model: str) -> tuple[str, str]:
    if base_model.lower() == "qwen/qwen3-0.6b":
        return "qwen3-0.6b", f"base_model {base_model!r}"
    return "dio-mini", "default"


def _architecture(base_model: str, home: Path, fallback: str) -> tuple[dict, str]:
    """The base model's config.json when it is on disk, else the published architecture."""
    if base_model and hub.is_hub_id(base_model, home):
        path = hub.cached(base_model)
    elif base_model:
        path = Path(base_model).expanduser()
        path = path if path.is_absolute() else home / path
    else:
        path = None
    if path is not None and (path / "config.json").is_file():
        try:
            return json.loads((path / "config.json").read_text()), f"{path}/config.json"
        except (OSError, ValueError):
            pass
    return dict(QWEN3_ARCHITECTURES[fallback]), f"the published {fallback} config"


# A model's measured peaks (store/batch_fit.py peaks_for): model -> [{"card", "max_length",
# "card_gib", "max_memory_allocated", "max_memory_reserved", "estimate", "measured", ...}].
PeaksFor = Callable[[str], list[dict]]


def resolve(cfg: Any, explicit: dict[str, str], home: Path,
            peaks_for: PeaksFor | None = None) -> Resolution:
    """The profile for a validated RealmConfig `cfg` read without profile defaults.
    `explicit`: "section.field" -> where the user set it ("realm.toml", "environment ...").
    `peaks_for`: the battles' measured peaks, which a card fit prefers to the bare estimate."""
    name, chosen_by = cfg.hero.profile, explicit.get("hero.profile", "")
    if name == AUTO:
        name, chosen_by = _auto(cfg.hero.base_model)
    profile = PROFILES[check_name(name)]
    res = Resolution(profile=name, chosen_by=chosen_by, device="any (not sized to a card)")
    wanted = {k: d.value for k, d in profile.defaults.items()}
    sources = {k: f"profile {name}: {d.source}" for k, d in profile.defaults.items()}
    if profile.architecture:
        _size(res, profile, cfg, explicit, home, wanted, sources, peaks_for)
    for key, value in wanted.items():
        section, _, fld = key.partition(".")
        if key in explicit:
            res.values[key] = getattr(getattr(cfg, section), fld)
            res.sources[key] = f"{explicit[key]} (profile {name} would give {json.dumps(value)})"
        else:
            res.values[key] = res.applied[key] = value
            res.sources[key] = sources[key]
    return res


def calibration(peaks: list[dict], card: str, gib: float, planned: bool,
                max_length: int) -> dict | None:
    """The newest measured peak for this card and max_length that has an estimate beside it,
    with `scale` = the peak (reserved: what the card had to hold) over the estimate. A real
    card matches by name; a planned one ([hero] vram_gb) by size, within 5%."""
    def same_card(p: dict) -> bool:
        size = p.get("card_gib")
        return (isinstance(size, int | float) and abs(size - gib) <= 0.05 * gib) if planned \
            else p.get("card") == card

    usable = [p for p in peaks if same_card(p) and p.get("max_length") == max_length
              and isinstance(p.get("estimate"), int | float) and p["estimate"] > 0
              and isinstance(p.get("max_memory_reserved") or p.get("max_memory_allocated"), int | float)]
    if not usable:
        return None
    p = max(usable, key=lambda q: str(q.get("measured")))
    peak = p.get("max_memory_reserved") or p["max_memory_allocated"]
    return {**p, "scale": round(peak / p["estimate"], 4)}


def _size(res: Resolution, profile: HeroProfile, cfg: Any, explicit: dict[str, str], home: Path,
          wanted: dict[str, Any], sources: dict[str, str], peaks_for: PeaksFor | None = None) -> None:
    """A GPU profile's card-dependent values, in place: fitted to the card, or the CPU fallback."""
    t = cfg.training
    given = cfg.hero.vram_gb
    card = ("a planned card (hero.vram_gb)", given) if given else detect_card()
    length = t.max_length if "training.max_length" in explicit else wanted["training.max_length"]
    if card is None:
        res.device = "cpu (no CUDA device)"
        wanted.update({"training.dtype": "auto", "training.batch_size": 1,
                       "training.gradient_accumulation_steps": profile.effective_batch})
        for key in ("training.dtype", "training.batch_size", "training.gradient_accumulation_steps"):
            sources[key] = f"profile {res.profile}: CPU fallback (no CUDA device)"
        res.notes.append(f"no CUDA device: {res.profile} trains on the CPU in float32 (its matmuls in "
                         f"bf16 where the CPU has native bf16) at batch 1 x "
                         f"{profile.effective_batch} accumulation; it works, slowly (seconds to "
                         "minutes a step). On a GPU machine the batch is sized to the card; "
                         "[hero] vram_gb plans for a card of that size")
        return
    card_name, gib = card
    res.device, res.card_gib = f"cuda: {card_name}, {gib:.1f} GiB", round(gib, 2)
    model = cfg.hero.base_model or wanted.get("hero.base_model", "")
    arch, arch_from = _architecture(model, home, profile.architecture)
    cal = calibration(peaks_for(model or profile.name) if peaks_for else [], card_name, gib,
                      bool(given), length)
    res.calibration = cal
    dtype = t.dtype if "training.dtype" in explicit and t.dtype != "auto" else "bfloat16"
    batch = t.batch_size if "training.batch_size" in explicit else None
    checkpointing = t.gradient_checkpointing if "training.gradient_checkpointing" in explicit else None
    effective = profile.effective_batch
    if batch is not None:
        effective = batch * (t.gradient_accumulation_steps
                             if "training.gradient_accumulation_steps" in explicit
                             else max(1, profile.effective_batch // batch))
    try:
        chosen = fit(arch, card_bytes=gib * GIB, effective_batch=effective, max_length=length,
                     min_length=length if "training.max_length" in explicit else 512,
                     batch_size=batch, checkpointing=checkpointing, dtype=dtype,
                     optimizer=t.optimizer, liger=t.liger == "on", method=t.method,
                     lora_rank=t.lora_rank, lora_targets=t.lora_targets,
                     scale=cal["scale"] if cal else 1.0)
    except (ValueError, KeyError, TypeError) as e:  # an odd config.json: say so, keep the fixed values
        res.notes.append(f"the VRAM fit could not size {arch_from}: {e}; batch values are the "
                         "profile's fixed ones")
        return
    res.fit = f"{chosen.describe()} (sized from {arch_from})"
    measured = ""
    if cal:
        measured = (f"; estimates x{cal['scale']:g}, the peak a battle measured on {cal['card']} "
                    f"({cal.get('measured')}) over the calculator's figure")
        res.fit += measured
    wanted.update({"training.batch_size": chosen.batch_size,
                   "training.gradient_accumulation_steps": chosen.gradient_accumulation_steps,
                   "training.gradient_checkpointing": chosen.gradient_checkpointing,
                   "training.max_length": chosen.max_length})
    for key in FITTED:
        sources[key] += f" ({card_name}, {gib:.1f} GiB{measured})"
    if not chosen.fits:
        res.notes.append(f"{res.profile} does not fit this card even at batch 1 with gradient "
                         f"checkpointing and max_length {chosen.max_length}: {chosen.describe()}; "
                         "set [training] method = \"lora\" or \"qlora\", liger = \"on\", or "
                         "optimizer = \"paged_adamw_8bit\"")
