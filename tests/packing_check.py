"""The one check that packed attention keeps examples apart, shared by the CPU tests
(tests/train/test_packed_attention.py) and the GPU test (tests/train/test_gpu.py): every
token's next-token log-probabilities in the packed row against the same example run
alone, example by example. A mean loss hides a leak (on untrained dio-mini a leak moved
the mean loss by 0.3% in the issue 29 audit); the largest per-token difference does not
(0.87 on the CPU, against ~1e-6 without a leak).

`leaky_attention` is a deliberately broken packed path: one causal attention over the
whole row, ignoring where examples start. The tests show the check fails on it."""

from __future__ import annotations

from typing import Any

import torch

from realm_kernel.train.data import PadCollator

LEAKY = "leaky_segments"


@torch.no_grad()
def per_example_error(model: Any, batch: dict, row: list[dict]) -> list[float]:
    """For each example of the packed `row` (collated into `batch`): the largest absolute
    difference, over its tokens and the vocabulary, between its log-probabilities in the
    packed row and those of the example run alone (unpadded, on the model's device)."""
    device = next(model.parameters()).device
    inputs = {k: batch[k].to(device) for k in ("input_ids", "position_ids", "attention_mask") if k in batch}
    packed = torch.log_softmax(model(**inputs).logits[0].float(), -1)
    out, at = [], 0
    for ex in row:
        n = len(ex["input_ids"])
        alone = PadCollator(0)([ex])["input_ids"].to(device)
        ref = torch.log_softmax(model(input_ids=alone).logits[0].float(), -1)
        out.append((packed[at:at + n] - ref).abs().max().item())
        at += n
    return out


def assert_examples_kept_apart(model: Any, batch: dict, row: list[dict], tol: float, what: str) -> float:
    """Raise AssertionError naming the first example whose tokens see another example
    (differ from running it alone by more than `tol`); return the largest difference."""
    errors = per_example_error(model, batch, row)
    bad = [(i, e) for i, e in enumerate(errors) if e > tol]
    assert not bad, (f"{what}: packed examples see each other: example {bad[0][0]} of {len(row)} differs "
                     f"from running it alone by {bad[0][1]:.3g} (tolerance {tol:g}); all: {errors}")
    return max(errors)


def leaky_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """A packed path with the bug: causal attention over the whole row, position ids
    ignored, so every example attends to the ones before it."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    kwargs.pop("is_causal", None)
    return sdpa_attention_forward(module, query, key, value, None, is_causal=True, **kwargs)


def register_leaky() -> str:
    """Make LEAKY a transformers attention implementation (with sdpa_segments' mask
    function: no mask for a whole unpadded sequence); returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    from realm_kernel.train.segment_attention import segment_mask
    AttentionInterface.register(LEAKY, leaky_attention)
    AttentionMaskInterface.register(LEAKY, segment_mask)
    return LEAKY
