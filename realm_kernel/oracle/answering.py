"""Batched greedy answers from one model directory: what evals and sparring ask of a
checkpoint. Prompts are grouped by their exact token length, so no batch is ever padded
(skills write fixed-width problems, so a level's prompts fall into a few groups) and the
answers are exactly what unbatched greedy decoding would give."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..train.loading import load_model_and_tokenizer

# Room past the longest golden answer, so a model that rambles is cut off, not waited on.
EXTRA_TOKENS = 8


@dataclass
class Answers:
    texts: list[str]
    seconds: float
    max_new_tokens: int


def load(path: str | Path, threads: int = 0) -> tuple[Any, Any]:
    """A checkpoint for batched greedy answers (its trained dtype on the default device)."""
    return load_model_and_tokenizer(path, "auto", "sdpa", threads=threads, inference=True)


def budget(tokenizer: Any, golden: Sequence[str]) -> int:
    """max_new_tokens sized from the level: its longest golden answer plus a margin."""
    longest = max((len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in golden), default=0)
    return longest + 1 + EXTRA_TOKENS  # +1: the end-of-turn token


def answer(model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int,
           batch_size: int = 64) -> Answers:
    """Greedy answers to single-turn questions (the chat template the quests trained)."""
    import torch

    from .pool import eos_ids

    t0 = time.perf_counter()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}],
                                             add_generation_prompt=True, tokenize=True)
               for q in questions]
    prompts = [p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    eos = eos_ids(tokenizer, model)
    out = [""] * len(questions)
    with torch.inference_mode():
        for _, idx in sorted(groups.items()):
            for k in range(0, len(idx), batch_size):
                chunk = idx[k:k + batch_size]
                ids = torch.tensor([prompts[i] for i in chunk], device=model.device)
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
                for row, i in zip(gen[:, ids.shape[1]:].tolist(), chunk, strict=True):
                    out[i] = tokenizer.decode(row, skip_special_tokens=True)
    return Answers(out, time.perf_counter() - t0, max_new_tokens)
