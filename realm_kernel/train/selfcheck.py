"""The masking self-check: run on a real first batch of every job, before training.

It fails the job with a clear message if any token outside an assistant reply carries
loss, or if two packed examples could attend to each other (checked on the mask and by
running the model on each example alone: the per-example loss must not change).
"""

from __future__ import annotations

from typing import Any

import torch

from .data import IGNORE


class MaskingError(RuntimeError):
    pass


def expected_loss_text(messages: list[dict], eos: str | None) -> str:
    return "".join(m["content"] + (eos or "") for m in messages if m["role"] == "assistant")


def check_labels(tokenizer: Any, rows: list[dict], examples: list[dict]) -> None:
    """Every labelled token decodes to assistant text (plus its end-of-turn), nothing else."""
    for row in rows:
        ex = examples[row["example"]]
        got = tokenizer.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True)
                                if lab != IGNORE])
        want = expected_loss_text(ex["messages"], tokenizer.eos_token)
        # Truncation may cut the tail of the last reply; never add to it.
        if not (got == want or (got and want.startswith(got))):
            raise MaskingError(f"example {row['example']}: tokens outside assistant replies carry "
                               f"loss (loss on {got[:120]!r}, expected {want[:120]!r})")


def segments_of(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each packed example in a row: position_ids restart at 0."""
    starts = (position_ids == 0).nonzero().flatten().tolist() + [len(position_ids)]
    return list(zip(starts[:-1], starts[1:], strict=True))


def _example_loss(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Mean next-token loss of one example, HF convention (labels shift by one)."""
    target = torch.cat([labels[1:], labels.new_full((1,), IGNORE)])
    if (target != IGNORE).sum() == 0:
        return None
    return torch.nn.functional.cross_entropy(logits.float(), target, ignore_index=IGNORE).item()


@torch.no_grad()
def check_packed_batch(model: Any, batch: dict[str, torch.Tensor], max_examples: int = 4) -> float:
    """Assert the packed row behaves as its examples run alone. Returns the worst diff."""
    pos, labels, ids = batch["position_ids"][0], batch["labels"][0], batch["input_ids"][0]
    segs = segments_of(pos)
    for a, b in segs:
        if not torch.equal(pos[a:b], torch.arange(b - a, device=pos.device)):
            raise MaskingError(f"position_ids do not restart per example at {a}:{b}")
        if labels[a] != IGNORE:
            raise MaskingError(f"the first token of the example at {a} carries loss")
    mask = batch.get("attention_mask")
    if mask is not None:
        allowed = mask[0, 0] if mask.dtype == torch.bool else mask[0, 0] == 0
        seg_id = torch.empty(len(pos), dtype=torch.long, device=pos.device)
        for s, (a, b) in enumerate(segs):
            seg_id[a:b] = s
        expected = (seg_id[:, None] == seg_id[None, :]) & torch.ones_like(allowed).tril()
        if not torch.equal(allowed, expected):
            raise MaskingError("the attention mask lets packed examples see each other")
    checked = segs[:max_examples]
    end = checked[-1][1]
    was_training = model.training
    model.eval()
    try:
        kwargs = {"input_ids": ids[None, :end], "position_ids": pos[None, :end]}
        if mask is not None:
            kwargs["attention_mask"] = mask[:1, :, :end, :end]
        packed = model(**kwargs).logits[0]
        worst = 0.0
        half = packed.dtype in (torch.bfloat16, torch.float16)
        tol = 5e-2 if half else 1e-3
        for a, b in checked:
            alone = model(input_ids=ids[None, a:b]).logits[0]
            lp, la = _example_loss(packed[a:b], labels[a:b]), _example_loss(alone, labels[a:b])
            diff = (packed[a:b].float() - alone.float()).abs().max().item() if lp is None else abs(lp - la)
            worst = max(worst, diff)
            if diff > tol * (10 if lp is None else 1):
                raise MaskingError(
                    f"packed examples attend to each other: the example at {a}:{b} gives loss "
                    f"{lp} packed vs {la} alone (diff {diff:.3g} > {tol:g})")
        return worst
    finally:
        model.train(was_training)
