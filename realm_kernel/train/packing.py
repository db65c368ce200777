"""Padding-free packing with exact masking.

Examples are packed into rows of at most `capacity` tokens (best-fit decreasing, so
rows come out nearly full). In a row every example keeps its own positions (position_ids
restart at 0) and attends only to itself:
  - sdpa: an explicit 4-D boolean block-causal mask (True = may attend);
  - eager: the same mask as an additive float mask (eager mishandles boolean masks);
  - sdpa_segments (train/segment_attention.py, CPU's default): no mask; sdpa runs on each
    example alone, found from the position_ids, so a step's rows go in as one unpadded
    row [1, tokens] (no pad token is computed);
  - flash_attention_2: no mask; position_ids alone select the varlen kernel.
Without one of these, packed examples attend to each other (measured here: logits off
by ~1 against running each example alone). The first token of every example carries
no loss, so the last token of one example never learns to predict the next example.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .data import IGNORE

MASKED_IMPLS = ("sdpa", "eager")
# Rows as short as the data allows: where a step's cost grows with the row (the masked
# paths), and sdpa_segments, measured faster on rows of 320 than of 512 (dio-mini, 1 thread).
SHORT_ROW_IMPLS = (*MASKED_IMPLS, "sdpa_segments")
# Attention that finds the examples itself: a batch's rows are concatenated, unpadded.
FLAT_IMPLS = ("sdpa_segments",)


def pack_indices(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing bin packing of example indices into rows of <= capacity tokens.

    Deterministic; O(n * capacity) worst case via buckets keyed by free space.
    """
    if any(n > capacity for n in lengths):
        raise ValueError(f"an example of {max(lengths)} tokens exceeds the pack length {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    by_free: dict[int, list[int]] = {}  # free space -> rows with exactly that much room
    for i in order:
        n = lengths[i]
        row = None
        for room in range(n, capacity + 1):
            bucket = by_free.get(room)
            if bucket:
                row = bucket.pop()
                break
        if row is None:
            row = len(rows)
            rows.append([])
            free.append(capacity)
        rows[row].append(i)
        free[row] -= n
        by_free.setdefault(free[row], []).append(row)
    return rows


def masked_capacity(lengths: list[int], max_len: int, multiple: int = 64, min_fill: float = 0.9) -> int:
    """The row length for masked attention (sdpa, eager), whose cost grows with the row
    (the mask is row x row; measured on dio-mini: rows of 320 vs 512 made a step's
    forward + backward 1.4x cheaper per real token): the shortest multiple of `multiple`,
    at least the longest example and at most max_len, whose rows come out at least
    `min_fill` full; max_len when none does."""
    total = sum(lengths)
    cap = min(max_len, -(-max(lengths) // multiple) * multiple)
    while cap < max_len:
        if total / (len(pack_indices(lengths, cap)) * cap) >= min_fill:
            return cap
        cap += multiple
    return max_len


class RowLayout(NamedTuple):
    """One packed row, flat: token ids, labels (none on an example's first token),
    position ids restarting at 0 per example, and segment ids (the example's index)."""

    ids: torch.Tensor
    labels: torch.Tensor
    pos: torch.Tensor
    seg: torch.Tensor


class PackedRow(list):
    """A packed row: its examples (a list of tokenised rows), with its layout built once."""

    __slots__ = ("layout",)

    def __init__(self, examples: list[dict]) -> None:
        super().__init__(examples)
        self.layout = row_layout(examples)


def row_layout(row: list[dict]) -> RowLayout:
    cached = getattr(row, "layout", None)
    if cached is not None:
        return cached
    ids, labels, pos, seg = [], [], [], []
    for s, ex in enumerate(row):
        n = len(ex["input_ids"])
        ids += ex["input_ids"]
        labels += [IGNORE, *ex["labels"][1:]] if n else []
        pos += range(n)
        seg += [s] * n
    return RowLayout(*(torch.tensor(x, dtype=torch.long) for x in (ids, labels, pos, seg)))


class PackedDataset(torch.utils.data.Dataset):
    """Each item is one packed row (a PackedRow: its examples, its layout built once)."""

    def __init__(self, examples: list[dict], capacity: int) -> None:
        self.capacity = capacity
        self.rows = [PackedRow([examples[i] for i in row])
                     for row in pack_indices([len(e["input_ids"]) for e in examples], capacity)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> list[dict]:
        return self.rows[i]

    def efficiency(self) -> float:
        """Real tokens / row capacity: how full the rows are."""
        used = sum(len(e["input_ids"]) for row in self.rows for e in row)
        return used / max(1, len(self.rows) * self.capacity)


def block_causal_mask(segments: torch.Tensor, causal: torch.Tensor | None = None) -> torch.Tensor:
    """[R, L] segment ids -> [R, 1, L, L] bool: causal and within the same segment.
    `causal`: a ready [L, L] lower-triangular bool matrix (the collator keeps one per width)."""
    same = segments[:, :, None] == segments[:, None, :]
    if causal is None:
        causal = torch.ones(segments.shape[1], segments.shape[1], dtype=torch.bool,
                            device=segments.device).tril()
    return (same & causal)[:, None]


class PackedCollator:
    """Rows -> a batch. Each row's ids, labels, positions and segments come ready from its
    layout (slice copies here); the 4-D mask is one vectorised compare of the segment ids
    against a causal matrix kept per width."""

    def __init__(self, pad_id: int, attn_implementation: str,
                 mask_dtype: torch.dtype = torch.float32) -> None:
        self.pad_id, self.attn, self.mask_dtype = pad_id, attn_implementation, mask_dtype
        self._causal: dict[int, torch.Tensor] = {}

    def __call__(self, rows: list[list[dict]]) -> dict[str, torch.Tensor]:
        layouts = [row_layout(row) for row in rows]
        if self.attn in FLAT_IMPLS:
            ids, labels, pos = (torch.cat([lay[i] for lay in layouts])[None] for i in range(3))
            return {"input_ids": ids, "labels": labels, "position_ids": pos,
                    "num_real_tokens": torch.tensor(ids.shape[1])}
        width = max(len(lay.ids) for lay in layouts)
        shape = (len(rows), width)
        ids = torch.full(shape, self.pad_id, dtype=torch.long)
        labels = torch.full(shape, IGNORE, dtype=torch.long)
        pos = torch.zeros(shape, dtype=torch.long)
        seg = torch.full(shape, -1, dtype=torch.long)
        for r, lay in enumerate(layouts):
            n = len(lay.ids)
            ids[r, :n], labels[r, :n], pos[r, :n], seg[r, :n] = lay
            # Padding continues as its own segment so no row of the mask is empty.
            pos[r, n:] = torch.arange(width - n)
        batch = {"input_ids": ids, "labels": labels, "position_ids": pos,
                 "num_real_tokens": (seg >= 0).sum()}
        if self.attn in MASKED_IMPLS:
            causal = self._causal.get(width)
            if causal is None:
                causal = self._causal[width] = torch.ones(width, width, dtype=torch.bool).tril()
            mask = block_causal_mask(seg, causal)
            if self.attn == "eager":
                mask = torch.zeros(mask.shape, dtype=self.mask_dtype).masked_fill(
                    ~mask, torch.finfo(self.mask_dtype).min)
            batch["attention_mask"] = mask
        return batch
