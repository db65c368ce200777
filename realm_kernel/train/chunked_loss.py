"""Held-out loss without the full-vocabulary logits: the backbone's hidden states, then the
output head and cross-entropy over at most `CHUNK_TOKENS` loss-carrying tokens at a time,
so a held-out batch of long examples never holds a [batch x length x vocab] logits tensor
(TRL #4679: Qwen3-0.6B at 40k tokens reached ~50 GB in eval). The same sum and divisor as
HF's causal-LM loss (labels shifted by one, -100 ignored, float32 logits), so the figure is
the plain loss's, to rounding. Where Liger's fused loss is on (`liger`, CUDA) the Trainer
already skips the logits and this path stands aside."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE = -100
# Rows of logits per chunk: 1024 x Qwen3's 151,936-token vocabulary is 0.62 GB in float32,
# against 2.5 GB for one 4k-token example unchunked.
CHUNK_TOKENS = 1024


def supports(model: Any) -> bool:
    """A causal LM whose logits are exactly its output head over its decoder's last hidden
    state (no final soft-capping or logit scaling to reproduce)."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return False
    try:
        return model.get_decoder() is not None and model.get_output_embeddings() is not None
    except (AttributeError, NotImplementedError):
        return False


def summed_loss(hidden: torch.Tensor, head: Any, labels: torch.Tensor,
                chunk: int = CHUNK_TOKENS) -> tuple[torch.Tensor, int]:
    """(sum of the token cross-entropies, number of tokens that carry loss) for hidden
    states [batch, length, hidden] and labels [batch, length]; position t predicts t+1."""
    shifted = F.pad(labels, (0, 1), value=IGNORE)[..., 1:]
    keep = shifted != IGNORE
    states, targets = hidden[keep], shifted[keep]  # only loss-carrying positions get logits
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for i in range(0, len(targets), chunk):
        logits = head(states[i:i + chunk]).float()
        total = total + F.cross_entropy(logits, targets[i:i + chunk], reduction="sum")
    return total, len(targets)


def held_out_loss(model: Any, inputs: dict, divisor: torch.Tensor | int | None,
                  chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """The batch's loss as HF computes it: the sum over `divisor` tokens when the Trainer
    passes its token count (num_items_in_batch), else the mean over the batch's tokens."""
    rest = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = model.get_decoder()(**rest).last_hidden_state
    total, count = summed_loss(hidden, model.get_output_embeddings(), inputs["labels"], chunk)
    if divisor is None:
        return total / count  # 0/0 is NaN, as HF's mean over no tokens
    return total / torch.as_tensor(divisor, device=total.device)
