"""LoRA and QLoRA through peft: which checkpoints are adapters, what base they sit on,
and turning a loaded model into the one the configured method trains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..store.paths import SIDECAR

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def base_of(path: str | Path) -> Path:
    """The full model a checkpoint sits on: itself, or for an adapter the base its
    sidecar names (else the one peft recorded in adapter_config.json)."""
    path = Path(path)
    if not is_adapter(path):
        return path
    base = None
    if (path / SIDECAR).is_file():
        base = json.loads((path / SIDECAR).read_text()).get("base_model")
    base = base or json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}: an adapter that names no base model")
    return Path(base)


def check_method(method: str, cuda: bool) -> None:
    """LoRA needs peft; QLoRA also needs CUDA and bitsandbytes. Refused up front, by name."""
    import importlib.util
    if method == "full":
        return
    if importlib.util.find_spec("peft") is None:
        raise RuntimeError(f"method = {method!r} needs peft: pip install peft")
    if method == "qlora":
        if not cuda:
            raise RuntimeError("method = 'qlora' needs a CUDA device (4-bit bitsandbytes kernels); "
                               "use method = 'lora' on a CPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise RuntimeError("method = 'qlora' needs bitsandbytes: pip install -e '.[gpu]'")


def quantization_config(dtype: Any) -> Any:
    """QLoRA's base: 4-bit NF4 weights with double quantisation, computing in `dtype`."""
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)


def for_method(model: Any, cfg: Any) -> Any:
    """The model the configured method trains. A loaded adapter keeps training as it is
    (its rank and targets are in its checkpoint); method "full" on an adapter merges it."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    if isinstance(model, PeftModel):
        return model.merge_and_unload() if cfg.method == "full" else model
    if cfg.method == "full":
        return model
    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    targets = "all-linear" if cfg.lora_targets == ["all-linear"] else list(cfg.lora_targets)
    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, config)
