"""The one model loader, for training and inference alike: any local HF causal-LM
directory (dio-mini, Qwen3-0.6B, a checkpoint), or a LoRA adapter checkpoint (its base
named in its sidecar, with the adapter on top). The caller chooses dtype, attention and
device; nothing here reads realm.toml."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any


def torch_dtype(name: str, cuda: bool) -> Any:
    """"auto" is bf16 on CUDA and float32 on CPU; otherwise a torch dtype's name."""
    import torch
    if name == "auto":
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, name)


@cache
def cpu_bf16_native(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """This CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): a bf16 matmul measured
    ~5x an fp32 one on the 2-core dev EPYC. Without them oneDNN emulates bf16, slower
    than fp32, so nothing else counts."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", text) is not None


def cpu_autocast_bf16(name: str) -> bool:
    """Training on a CPU with dtype "auto": fp32 weights, gradients and AdamW state, matmuls
    in bf16 under autocast (HF's bf16=True on a CPU), where the CPU has native bf16."""
    return name == "auto" and cpu_bf16_native()


def precision(name: str, cuda: bool) -> str:
    """What a training run computes in (TrainingResult.precision, the daemon's result log)."""
    if not cuda and cpu_autocast_bf16(name):
        return "float32 + bf16 autocast"
    return str(torch_dtype(name, cuda)).removeprefix("torch.")


def load_model_and_tokenizer(path: str | Path, dtype: str = "auto", attn: str = "sdpa",
                             device: str | None = None, threads: int = 0,
                             inference: bool = False, quantize_4bit: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory. device None: CUDA when present, else
    CPU. threads > 0 sets torch's CPU threads first; inference puts the model in eval
    mode (an adapter merged into its base). An adapter is loaded trainable otherwise.
    quantize_4bit loads the base in 4-bit NF4 (QLoRA; CUDA). A missing config.json or a
    tokenizer without a chat template is refused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .lora import base_of, is_adapter, quantization_config
    from .segment_attention import NAME as SEGMENTS
    from .segment_attention import register

    if attn == SEGMENTS:
        register()

    path = Path(path)
    adapter = is_adapter(path)
    base = base_of(path)
    if not (base / "config.json").exists():
        what = f"the base model of adapter {path}" if adapter else "HF model directory"
        raise FileNotFoundError(f"no {what} at {base} (config.json missing)")
    if threads:
        torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path if (path / "tokenizer_config.json").exists() else base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"{path}: tokenizer has no chat template; quests are chat examples")
    torch_type = torch_dtype(dtype, device.startswith("cuda"))
    extra: dict[str, Any] = {}
    if quantize_4bit:
        extra = {"quantization_config": quantization_config(torch_type), "device_map": {"": device}}
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_type, attn_implementation=attn, **extra)
    if device != "cpu" and not quantize_4bit:
        model = model.to(device)
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, path, is_trainable=not inference)
        if inference:
            model = model.merge_and_unload()
    if inference:
        model.eval()
    return model, tokenizer


def merge_adapter(adapter: Path, dest: Path, dtype: str = "float32") -> Path:
    """Base + LoRA adapter merged into one full HF directory at `dest` (weights, tokenizer)."""
    model, tok = load_model_and_tokenizer(adapter, dtype, "sdpa", device="cpu", inference=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return Path(dest)
