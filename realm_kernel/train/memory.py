"""A battle's measured peak GPU memory beside the VRAM calculator's estimate for the same
settings (hero_model/vram.py), so the calculator can be checked against the card
(`realm vram` shows both). CUDA only; no GPU has run this path yet (docs/engine.md)."""

from __future__ import annotations

import json
from typing import Any

import torch

from ..hero_model.vram import GIB, estimate
from ..store import batch_fit
from ..store.config import TrainingConfig
from ..store.ledger import Ledger
from ..store.paths import RealmPaths


def nvml_used_bytes() -> int | None:
    """The card's used memory as NVML sees it (all processes, the CUDA context included)."""
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            index = torch.cuda.current_device()
            return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no pynvml, no driver: torch's figure stands alone
        return None


def peak_record(model_config: dict, cfg: TrainingConfig, micro: int, liger: bool,
                allocated: int, reserved: int, nvml: int | None,
                card_gib: float | None = None) -> dict[str, Any]:
    """The measured figures and the calculator's estimate for this battle's settings;
    `card_gib`, the card's size, lets a profile planned for a card of that size
    ([hero] vram_gb) use the measurement (hero_model/profiles.py `calibration`)."""
    dtype = "bfloat16" if cfg.dtype == "auto" else cfg.dtype
    try:
        est = estimate(model_config, seq_len=cfg.max_length, batch_size=micro, dtype=dtype,
                       optimizer=cfg.optimizer, gradient_checkpointing=cfg.gradient_checkpointing,
                       liger=liger, method=cfg.method, lora_rank=cfg.lora_rank,
                       lora_targets=cfg.lora_targets).total
    except (ValueError, KeyError, TypeError, ZeroDivisionError):  # an architecture it cannot size
        est = None
    return {"max_memory_allocated": allocated, "max_memory_reserved": reserved,
            "nvml_used": nvml, "estimate": est, "micro_batch": micro,
            "gradient_checkpointing": cfg.gradient_checkpointing, "optimizer": cfg.optimizer,
            "method": cfg.method, "dtype": dtype, "liger": liger,
            "card_gib": None if card_gib is None else round(card_gib, 2),
            "error": None if est is None or not allocated else round(est / allocated - 1, 4)}


def measure(model: Any, cfg: TrainingConfig, micro: int, liger: bool) -> dict[str, Any]:
    """On CUDA, after the battle: torch's peaks since the battle began and NVML's view."""
    return peak_record(model.config.to_dict(), cfg, micro, liger, torch.cuda.max_memory_allocated(),
                       torch.cuda.max_memory_reserved(), nvml_used_bytes(),
                       torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GIB)


def record(paths: RealmPaths, ledger: Ledger, key: str, peak: dict[str, Any]) -> None:
    """A battle's peak where `realm vram` and the profile's fit read it
    (status/memory_peaks.json, newest per card, model and max_length) and as a
    `battle_memory` event."""
    batch_fit.record_peak(paths, key, **peak)
    ledger.event("battle_memory", f"Peak GPU memory {peak['max_memory_allocated'] / 1e9:.2f} GB "
                 f"(the calculator said {(peak['estimate'] or 0) / 1e9:.2f} GB)", json.dumps(peak))
