"""Chat formatting and loss masking: only assistant tokens (and their end-of-turn
token, so the hero learns to stop) carry loss."""

from __future__ import annotations

import random
from typing import Any

import torch

IGNORE = -100


def assistant_spans(text: str, messages: list[dict], eos: str | None) -> list[tuple[int, int]]:
    """Character spans of each assistant reply (plus a following eos) in rendered text.

    Replies are found in order, each after the previous, so a reply quoted earlier in a
    user turn is never mistaken for the reply itself.
    """
    spans, cursor = [], 0
    for m in messages:
        content = m["content"]
        if m["role"] != "assistant":
            found = text.find(content, cursor) if content else -1
            if found >= 0:
                cursor = found + len(content)
            continue
        start = text.find(content, cursor)
        if start < 0:
            raise ValueError("chat template dropped an assistant message; cannot mask loss")
        end = start + len(content)
        if eos:
            e = text.find(eos, end)
            if e >= 0 and not text[end:e].strip():
                end = e + len(eos)
        spans.append((start, end))
        cursor = end
    return spans


def tokenize_example(tokenizer: Any, messages: list[dict], max_length: int) -> dict[str, list[int]]:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                    truncation=True, max_length=max_length)
    spans = assistant_spans(text, messages, tokenizer.eos_token)
    labels = []
    for tok_id, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = e > s and any(a <= s and e <= b for a, b in spans)
        labels.append(tok_id if inside else IGNORE)
    return {"input_ids": list(enc["input_ids"]), "labels": labels}


class ChatDataset(torch.utils.data.Dataset):
    """Tokenised rows: input_ids, labels and the index of the example they came from."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def build_datasets(tokenizer: Any, examples: list[dict], max_length: int, eval_fraction: float,
                   max_eval: int, seed: int) -> tuple[ChatDataset, ChatDataset | None, int]:
    """Tokenise, drop rows with no loss-carrying token, split off a held-out set."""
    rows = [{**tokenize_example(tokenizer, ex["messages"], max_length), "example": i}
            for i, ex in enumerate(examples)]
    kept = [r for r in rows if any(lab != IGNORE for lab in r["labels"])]
    dropped = len(rows) - len(kept)
    n_eval = min(max_eval, int(len(kept) * eval_fraction)) if len(kept) >= 20 else 0
    if n_eval:
        order = list(range(len(kept)))
        random.Random(seed).shuffle(order)
        held = set(order[:n_eval])
        return (ChatDataset([r for i, r in enumerate(kept) if i not in held]),
                ChatDataset([kept[i] for i in sorted(held)]), dropped)
    return ChatDataset(kept), None, dropped


class PadCollator:
    """Pad to the longest row of the batch; padding never carries loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
