"""Packed attention by segments ("sdpa_segments"): each packed example attends to itself
through its own causal sdpa call, found from the position ids (they restart at 0 for
every example), so no [L, L] mask is built and none of the row's cross-example blocks
is computed. sdpa with an explicit block-causal mask computes every pair of the row and
throws most away; causal calls per example skip everything above the diagonal too.
Measured on dio-mini (1 thread, rows of 320): a training step 1.08x faster than the
masked path, logits equal to 7e-7; Qwen3 20M: 1.03x (attention is ~12% of its step).

Under CPU autocast (training with dtype "auto" on a CPU with native bf16) the examples'
attention runs in float32: CPU flash attention's bf16 backward is slower than its float32
one, and the matmuls around it stay bf16. Measured (1 thread, a packed row of 1,651
tokens, forward + backward + AdamW): a dio-mini step 270 -> 201 ms, Qwen3 20M ~1.35 s ->
1.19 s; and the softmax keeps float32's precision.

Anything else — a padding mask, a KV cache, a decode step — goes to transformers' own
sdpa path unchanged, so a model loaded this way still generates and evaluates normally.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "sdpa_segments"


def segment_bounds(position_ids: torch.Tensor, rows: int) -> list[list[tuple[int, int]]]:
    """[R, L] (or [1, L]) position ids -> each row's (start, end) segments: a new one
    wherever the positions do not continue (pos[t] != pos[t-1] + 1)."""
    pos = position_ids.expand(rows, -1)
    length = pos.shape[1]
    brk = torch.ones_like(pos, dtype=torch.bool)
    brk[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    starts: list[list[int]] = [[] for _ in range(rows)]
    for r, t in brk.nonzero().tolist():
        starts[r].append(t)
    return [list(zip(s, [*s[1:], length], strict=True)) for s in starts]


def segment_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                      value: torch.Tensor, attention_mask: torch.Tensor | None,
                      dropout: float = 0.0, scaling: float | None = None,
                      is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    pos = kwargs.get("position_ids")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if (attention_mask is None and pos is not None and query.shape[2] == key.shape[2]
            and kwargs.get("sliding_window") is not None):
        # segment_mask gave no mask, so sdpa's fallback would drop the window: say so.
        raise ValueError("sdpa_segments does not do sliding-window attention; "
                         "set training.attn_implementation = 'sdpa'")
    if (attention_mask is not None or pos is None or not causal
            or query.shape[2] != key.shape[2]):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    if query.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return _by_segment(query.float(), key.float(), value.float(), pos, dropout, scaling)
    return _by_segment(query, key, value, pos, dropout, scaling)


def _by_segment(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                pos: torch.Tensor, dropout: float, scaling: float | None) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import repeat_kv

    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    rows = query.shape[0]
    out = []
    for r, bounds in enumerate(segment_bounds(pos, rows)):
        # split, not a slice per example: a slice's backward writes a zeroed row-sized
        # gradient per example (O(examples x row) a layer), split's one concatenation.
        sizes = [b - a for a, b in bounds]
        q, k, v = ((t if rows == 1 else t[r:r + 1]).split(sizes, dim=2) for t in (query, key, value))
        parts = [torch.nn.functional.scaled_dot_product_attention(
            qs, ks, vs, dropout_p=dropout, scale=scaling, is_causal=True)
            for qs, ks, vs in zip(q, k, v, strict=True)]
        out.append(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0])
    return (torch.cat(out) if rows > 1 else out[0]).transpose(1, 2).contiguous(), None


def segment_mask(**kwargs: Any) -> torch.Tensor | None:
    """No mask for a whole sequence without padding or cache (the attention finds the
    examples from the position ids); sdpa's own mask for anything else."""
    from transformers.masking_utils import sdpa_mask

    if (kwargs.get("attention_mask") is None and kwargs["q_length"] == kwargs["kv_length"]
            and not kwargs.get("q_offset") and not kwargs.get("kv_offset")):
        return None
    return sdpa_mask(**kwargs)


def register() -> str:
    """Make NAME a transformers attention implementation (idempotent); returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, segment_attention)
    AttentionMaskInterface.register(NAME, segment_mask)
    return NAME
