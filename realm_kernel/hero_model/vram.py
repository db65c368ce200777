"""VRAM calculator: what fine-tuning an HF causal LM needs on one GPU, full, LoRA or
QLoRA (method): LoRA keeps the base frozen (no gradients, no optimizer state for it) and
trains rank-r adapters on the targeted projections; QLoRA also stores the base's linear
layers in 4-bit NF4 (~0.52 bytes per weight with double quantisation).

Terms (bytes): weights, gradients, optimizer state (on the GPU, and on the host when a
paged optimizer is offloaded), activations with or without gradient checkpointing,
logits with or without Liger's fused linear cross-entropy, and a fixed overhead (CUDA
context, allocator slack). The overhead constants are calibrated on the reference
budget the project started from — Qwen3-4B full fine-tuning, bf16, seq 512, batch 1,
gradient checkpointing, paged 8-bit AdamW offloaded: peak 18.6 GB — and are to be
re-checked against peaks measured with bench/gpu_train.py on each card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GB = 1e9
GIB = 1024 ** 3
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Optimizer state in bytes per parameter, for parameters of `dtype_bytes` each.
OPTIMIZERS = {
    "adamw": lambda b: 2 * b,          # exp_avg + exp_avg_sq, same dtype as the weights
    "muon": lambda b: 1.5 * b,         # momentum on hidden matrices, Adam moments elsewhere
    "adamw_8bit": lambda b: 2 + 0.06,  # two 8-bit moments + block-wise scales
    "paged_adamw_8bit": lambda b: 2 + 0.06,
}
CUDA_CONTEXT_BYTES = 0.75 * GB
NF4_BYTES = 0.5 + 0.127 / 8  # 4-bit codes + double-quantised block scales (~0.127 bit)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ALLOCATOR_SLACK = 0.05  # of weights + gradients

QWEN3_COMMON = {"vocab_size": 151936, "head_dim": 128, "rms_norm_eps": 1e-6,
                "rope_theta": 1_000_000.0, "tie_word_embeddings": True,
                "max_position_embeddings": 40960, "hidden_act": "silu"}

# The published configs of these checkpoints (nothing is downloaded): what the calculator,
# the hero profiles and train/presets.py's random-init models use.
QWEN3_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": {**QWEN3_COMMON, "hidden_size": 1024, "intermediate_size": 3072,
                   "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8},
    "qwen3-1.7b": {**QWEN3_COMMON, "hidden_size": 2048, "intermediate_size": 6144,
                   "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8},
    "qwen3-4b": {**QWEN3_COMMON, "hidden_size": 2560, "intermediate_size": 9728,
                 "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8},
}


@dataclass
class VramEstimate:
    params: int
    weights: float
    gradients: float
    optimizer: float
    optimizer_host: float
    activations: float
    logits: float
    overhead: float
    total: float

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [(k, v) for k, v in self.as_dict().items() if k != "params"]
        lines = [f"parameters      {self.params / 1e9:8.3f} B"]
        lines += [f"{k:<15} {v / GB:8.2f} GB" for k, v in rows]
        return "\n".join(lines)


def _get(config: Any, key: str, default: Any = None) -> Any:
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def count_params(config: Any) -> int:
    """Exact parameter count of a Llama/Qwen-style decoder from its config."""
    h, inter = _get(config, "hidden_size"), _get(config, "intermediate_size")
    layers, vocab = _get(config, "num_hidden_layers"), _get(config, "vocab_size")
    heads = _get(config, "num_attention_heads")
    kv = _get(config, "num_key_value_heads", heads)
    head_dim = _get(config, "head_dim") or h // heads
    q, k = heads * head_dim, kv * head_dim
    attn = h * q + 2 * h * k + q * h
    if _get(config, "attention_bias", False):
        attn += q + 2 * k + h  # q/k/v biases, and o_proj's (Qwen3 biases it too)
    qk_norm = 2 * head_dim if _get(config, "model_type", "qwen3") == "qwen3" else 0
    per_layer = attn + qk_norm + 3 * h * inter + 2 * h
    embed = vocab * h
    head = 0 if _get(config, "tie_word_embeddings", False) else vocab * h
    return embed + layers * per_layer + h + head


def projection_shapes(config: Any) -> dict[str, tuple[int, int]]:
    """(in, out) features of each decoder layer's linear projections."""
    h, inter = _get(config, "hidden_size"), _get(config, "intermediate_size")
    heads = _get(config, "num_attention_heads")
    kv = _get(config, "num_key_value_heads", heads)
    head_dim = _get(config, "head_dim") or h // heads
    q, k = heads * head_dim, kv * head_dim
    return {"q_proj": (h, q), "k_proj": (h, k), "v_proj": (h, k), "o_proj": (q, h),
            "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}


def lora_params(config: Any, rank: int, targets: list[str] | tuple[str, ...] = PROJECTIONS) -> int:
    """Trainable LoRA parameters: r * (in + out) per targeted projection per layer."""
    shapes = projection_shapes(config)
    targets = PROJECTIONS if list(targets) == ["all-linear"] else targets
    return _get(config, "num_hidden_layers") * sum(rank * sum(shapes[t]) for t in targets if t in shapes)


def estimate(config: Any, *, seq_len: int, batch_size: int = 1, dtype: str = "bfloat16",
             optimizer: str = "adamw", gradient_checkpointing: bool = False,
             liger: bool = False, offload_optimizer: bool | None = None, method: str = "full",
             lora_rank: int = 16, lora_targets: list[str] | tuple[str, ...] = PROJECTIONS) -> VramEstimate:
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"method must be full, lora or qlora, got {method!r}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {dtype!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if seq_len < 1 or batch_size < 1:
        raise ValueError("seq_len and batch_size must be >= 1")
    b = DTYPE_BYTES[dtype]
    p = count_params(config)
    h, inter = _get(config, "hidden_size"), _get(config, "intermediate_size")
    layers, vocab = _get(config, "num_hidden_layers"), _get(config, "vocab_size")
    heads = _get(config, "num_attention_heads")
    kv = _get(config, "num_key_value_heads", heads)
    head_dim = _get(config, "head_dim") or h // heads
    tokens = seq_len * batch_size

    if method == "full":
        weights, trained = p * b, p
    else:
        trained = lora_params(config, lora_rank, lora_targets)
        linear = layers * sum(i * o for i, o in projection_shapes(config).values())
        base = (p - linear) * b + linear * (NF4_BYTES if method == "qlora" else b)
        weights = base + trained * b
    gradients = trained * b
    opt_state = trained * OPTIMIZERS[optimizer](b)
    if offload_optimizer is None:
        offload_optimizer = optimizer.startswith("paged_")
    optimizer_gpu, optimizer_host = (0.0, opt_state) if offload_optimizer else (opt_state, 0.0)

    # Tensors a decoder layer keeps for backward, per token (elements): norm inputs,
    # q/k/v, attention output (memory-efficient attention keeps no s*s scores), the
    # o-projection input, and the SwiGLU gate, up, product and down input.
    per_layer = 6 * h + 2 * (heads * head_dim + 2 * kv * head_dim) + 4 * inter
    if gradient_checkpointing:
        activations = tokens * b * (layers * h + per_layer)  # layer inputs + one recompute
    else:
        activations = tokens * b * layers * per_layer
    # Logits: bf16 logits, their fp32 upcast and its gradient; Liger computes the loss
    # chunk by chunk from the hidden states and never materialises them.
    logits = tokens * h * 4 * 2 if liger else tokens * vocab * (b + 4 + 4)
    overhead = CUDA_CONTEXT_BYTES + ALLOCATOR_SLACK * (weights + gradients)
    total = weights + gradients + optimizer_gpu + activations + logits + overhead
    return VramEstimate(params=p, weights=weights, gradients=gradients, optimizer=optimizer_gpu,
                        optimizer_host=optimizer_host, activations=activations, logits=logits,
                        overhead=overhead, total=total)


def estimate_from_path(model_dir: str, **kwargs: Any) -> VramEstimate:
    """Estimate for a local HF model directory (reads its config.json only)."""
    import json
    from pathlib import Path
    path = Path(model_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"no config.json in {model_dir}")
    return estimate(json.loads(path.read_text()), **kwargs)


# A profile's batch is sized to this share of the card: the rest is for what shares it
# (the Oracle's copy of the model and its KV cache, an eval kernel) and allocator
# fragmentation the estimate does not model.
CARD_HEADROOM = 0.85


@dataclass
class Fit:
    """What `fit` chose: the per-device batch and accumulation (their product is the
    effective batch), gradient checkpointing, the sequence length, and the estimate."""
    batch_size: int
    gradient_accumulation_steps: int
    gradient_checkpointing: bool
    max_length: int
    estimate: VramEstimate
    budget: float
    fits: bool

    def describe(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (f"batch {self.batch_size} x accumulation {self.gradient_accumulation_steps}, "
                f"max_length {self.max_length}, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}: estimate "
                f"{self.estimate.total / GIB:.1f} GiB {verdict} the budget of {self.budget / GIB:.1f} GiB")



def fit(config: Any, *, card_bytes: float, effective_batch: int, max_length: int,
        min_length: int = 512, headroom: float = CARD_HEADROOM, batch_size: int | None = None,
        checkpointing: bool | None = None, scale: float = 1.0, **kwargs: Any) -> Fit:
    """Size a run to a card: the largest per-device batch (a power of two dividing
    `effective_batch`, or the given `batch_size`) whose estimate is within headroom x the
    card, first without gradient checkpointing, then with it, then with max_length halved
    down to min_length; `checkpointing` True or False tries only that. Accumulation makes
    up the effective batch. When nothing fits: the last and smallest try, fits=False.
    `scale`: a battle's measured peak over the estimate for its settings on this card
    (profiles.py), by which every estimate here is multiplied. kwargs go to `estimate`."""
    if effective_batch < 1 or max_length < 1:
        raise ValueError("effective_batch and max_length must be >= 1")
    budget = card_bytes * headroom
    ladder = [] if checkpointing else [(False, max_length)]
    length = max_length
    while checkpointing is not False:
        ladder.append((True, length))
        if length // 2 < min_length:
            break
        length //= 2
    batches = [batch_size] if batch_size else [
        2 ** i for i in range(effective_batch.bit_length() - 1, -1, -1) if effective_batch % 2 ** i == 0]
    for on, seq in ladder:
        for b in batches:
            est = estimate(config, seq_len=seq, batch_size=b, gradient_checkpointing=on, **kwargs)
            if est.total * scale <= budget:
                return Fit(b, max(1, effective_batch // b), on, seq, est, budget, True)
    b = batches[-1]
    return Fit(b, max(1, effective_batch // b), on, seq, est, budget, False)
