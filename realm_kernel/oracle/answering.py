"""Batched greedy answers from one model directory: what evals and sparring ask of a
checkpoint. Prompts are grouped by their exact token length, so no batch is ever padded
(skills write fixed-width problems, so a level's prompts fall into a few groups) and the
answers are exactly what unbatched greedy decoding would give.

An answer batch that runs out of memory is asked again at half the batch and with the
answer budget cut to its floor (`smaller`), down to one question at a time; the answers
already given stand, so each question is answered once. Only batch 1 at the floor gives
up (the error goes to the caller: no eval is recorded, its request stays pending)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import faults
from ..train.loading import load_model_and_tokenizer
from ..train.rescue import is_oom, release_memory

# Room past the longest golden answer, so a model that rambles is cut off, not waited on.
EXTRA_TOKENS = 8
BATCH_SIZE = 64  # questions per generate call, before any out-of-memory back-off


@dataclass
class Answers:
    texts: list[str]
    seconds: float
    max_new_tokens: int  # the budget the last batch ran at (lower after a back-off)
    batch_size: int = BATCH_SIZE  # the batch the last batch ran at
    backoffs: list[dict] = field(default_factory=list)  # each out-of-memory retry: from, to, error


# One back-off after an out-of-memory error: {"from": {...}, "to": {...}, "error": str}.
OnBackoff = Callable[[dict], None]
_generate_calls = 0  # this process's answer batches, for REALM_FAULT=oom:generate@<n>


def load(path: str | Path, threads: int = 0) -> tuple[Any, Any]:
    """A checkpoint for batched greedy answers (its trained dtype on the default device)."""
    return load_model_and_tokenizer(path, "auto", "sdpa", threads=threads, inference=True)


def budget(tokenizer: Any, golden: Sequence[str]) -> int:
    """max_new_tokens sized from the level: its longest golden answer plus a margin."""
    longest = max((len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in golden), default=0)
    return longest + 1 + EXTRA_TOKENS  # +1: the end-of-turn token


def floor(max_new_tokens: int) -> int:
    """The shortest budget a back-off cuts to: `budget` without its margin, so the longest
    golden answer and its end-of-turn token still fit (a right answer is never cut; only
    a rambling one is cut sooner)."""
    return max(1, max_new_tokens - EXTRA_TOKENS)


def smaller(batch_size: int, max_new_tokens: int, least: int) -> tuple[int, int] | None:
    """The next try after an answer batch ran out of memory: half the batch and the budget
    at its floor `least` (each generated token holds the whole batch's KV cache); None at
    batch 1 and the floor, where no smaller try is left."""
    if batch_size <= 1 and max_new_tokens <= least:
        return None
    return max(1, batch_size // 2), min(max_new_tokens, least)


def answer(model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int,
           batch_size: int = BATCH_SIZE, on_backoff: OnBackoff | None = None) -> Answers:
    """Greedy answers to single-turn questions (the chat template the quests trained).
    Out of memory: the batch asked again smaller (`smaller`), each retry told to
    `on_backoff` and listed in `Answers.backoffs`."""
    import torch

    from .pool import eos_ids

    global _generate_calls
    t0 = time.perf_counter()
    least = floor(max_new_tokens)
    backoffs: list[dict] = []
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
            k = 0
            while k < len(idx):
                chunk = idx[k:k + batch_size]
                ids = torch.tensor([prompts[i] for i in chunk], device=model.device)
                try:
                    _generate_calls += 1
                    faults.out_of_memory("generate", _generate_calls, len(chunk))
                    gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         max_new_tokens=max_new_tokens, do_sample=False,
                                         eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
                except Exception as e:
                    nxt = smaller(len(chunk), max_new_tokens, least) if is_oom(e) else None
                    if nxt is None:
                        raise
                    step = {"from": {"batch": len(chunk), "max_new_tokens": max_new_tokens},
                            "to": {"batch": nxt[0], "max_new_tokens": nxt[1]},
                            "error": str(e).splitlines()[0] if str(e) else type(e).__name__}
                else:
                    step = None
                if step is not None:
                    # Outside the except block: the error's frames (and what they held) are gone.
                    del ids
                    release_memory()
                    backoffs.append(step)
                    if on_backoff is not None:
                        on_backoff(step)
                    batch_size, max_new_tokens = step["to"]["batch"], step["to"]["max_new_tokens"]
                    continue  # the rest of the call stays smaller
                for row, i in zip(gen[:, ids.shape[1]:].tolist(), chunk, strict=True):
                    out[i] = tokenizer.decode(row, skip_special_tokens=True)
                k += len(chunk)
    return Answers(out, time.perf_counter() - t0, max_new_tokens, batch_size, backoffs)
