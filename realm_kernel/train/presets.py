"""Model architectures by name, for random-init benchmarks (`--from-config NAME`).

The Qwen3 entries are the published configs of those checkpoints; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hero_model.vram import QWEN3_ARCHITECTURES

PRESETS: dict[str, dict[str, Any]] = {
    **QWEN3_ARCHITECTURES,
    # ~20M parameters with dio-mini's small vocabulary: the CPU benchmark's larger model.
    "qwen3-20m": {"vocab_size": 1024, "hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 10,
                  "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 64,
                  "max_position_embeddings": 2048, "tie_word_embeddings": True},
}


def qwen3_config(name: str, vocab_size: int | None = None, **overrides: Any):
    """A Qwen3Config for a preset name (or 'dio-mini', read from a built dio-mini dir)."""
    from transformers import Qwen3Config

    if name == "dio-mini":
        from .dio_mini import ARCH
        params = dict(ARCH)
    elif name in PRESETS:
        params = dict(PRESETS[name])
    else:
        raise ValueError(f"unknown model preset {name!r}; known: dio-mini, {', '.join(PRESETS)}")
    if vocab_size is not None:
        params["vocab_size"] = vocab_size
    params.update(overrides)
    return Qwen3Config(**params)


def init_from_config(name: str, tokenizer_dir: Path, dest: Path, seed: int = 0, dtype=None,
                     **overrides: Any) -> Path:
    """Save a randomly initialised model of a preset with a local tokenizer, as an HF dir
    (`overrides` change the config, e.g. num_hidden_layers=2 for a cut of the real one)."""
    import torch
    from transformers import AutoTokenizer, Qwen3ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    # Real architectures keep their real vocabulary (embedding and logits cost what they
    # cost); the small CPU ones take the tokenizer's.
    real = name in PRESETS and PRESETS[name].get("vocab_size", 0) > 100_000
    config = qwen3_config(name, vocab_size=None if real else len(tok),
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                          bos_token_id=None, **overrides)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest
