"""The one model loader, for training and inference alike: any local HF causal-LM
directory (dio-mini, Qwen3-0.6B, a checkpoint). The caller chooses dtype, attention and
device; nothing here reads realm.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def torch_dtype(name: str, cuda: bool) -> Any:
    """"auto" is bf16 on CUDA and float32 on CPU; otherwise a torch dtype's name."""
    import torch
    if name == "auto":
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, name)


def load_model_and_tokenizer(path: str | Path, dtype: str = "auto", attn: str = "sdpa",
                             device: str | None = None, threads: int = 0,
                             inference: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory. device None: CUDA when present, else
    CPU. threads > 0 sets torch's CPU threads first; inference puts the model in eval
    mode. A missing config.json or a tokenizer without a chat template is refused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no HF model directory at {path} (config.json missing)")
    if threads:
        torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"{path}: tokenizer has no chat template; quests are chat examples")
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(dtype, device.startswith("cuda")), attn_implementation=attn)
    if device != "cpu":
        model = model.to(device)
    if inference:
        model.eval()
    return model, tokenizer
