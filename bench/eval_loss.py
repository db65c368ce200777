"""Held-out loss in chunks (train/chunked_loss.py) vs HF's plain loss on one long batch:
the largest logits tensor each holds, the seconds each takes (alternating, median of the
pairs' ratios) and how far the two losses differ.

The model is a random 2-layer Qwen3 with Qwen3's real 151,936-token vocabulary (so the
logits are the size they are on the real hero) and a small hidden size (so a CPU can run
it); the batch is random token ids, the first quarter of each row masked as a prompt.
Usage: python bench/eval_loss.py [--rows 2] [--length 1024] [--pairs 3] [--chunk 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from common import alternating, load_average, report
from transformers import Qwen3Config, Qwen3ForCausalLM

from realm_kernel.train import chunked_loss

VOCAB = 151_936  # Qwen3's


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=chunked_loss.CHUNK_TOKENS)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32)).eval()
    ids = torch.randint(0, VOCAB, (a.rows, a.length))
    labels = ids.clone()
    labels[:, : a.length // 4] = -100
    batch = {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}
    largest = {"plain": 0, "chunked": 0}
    side = ["plain"]
    model.get_output_embeddings().register_forward_hook(
        lambda _m, _i, out: largest.__setitem__(side[0], max(largest[side[0]],
                                                              out.numel() * out.element_size())))
    losses: dict[str, float] = {}

    def timed(name: str, fn) -> float:
        side[0] = name
        t0 = time.perf_counter()
        with torch.no_grad():
            losses[name] = float(fn())
        return time.perf_counter() - t0

    def plain() -> float:
        return timed("plain", lambda: model(**batch).loss)

    def chunked() -> float:
        return timed("chunked", lambda: chunked_loss.held_out_loss(model, batch, None, a.chunk))

    # Ratios of seconds: chunked over plain (below 1: the chunked pass is faster).
    ratios, mine, theirs = alternating(chunked, plain, a.pairs)
    load = load_average()
    figures = {"rows": a.rows, "length": a.length, "chunk": a.chunk, "vocab": VOCAB,
               "plain_largest_logits_bytes": largest["plain"],
               "chunked_largest_logits_bytes": largest["chunked"],
               "logits_bytes_ratio": round(largest["chunked"] / largest["plain"], 4),
               "seconds_ratio": round(statistics.median(ratios), 3),
               "pair_ratios": [round(r, 3) for r in ratios],
               "chunked_seconds": round(statistics.median(mine), 3),
               "plain_seconds": round(statistics.median(theirs), 3),
               "loss_abs_diff": abs(losses["chunked"] - losses["plain"]),
               "threads": 1, "load_average": load}
    summary = (f"held-out loss of {a.rows} x {a.length} tokens (vocab {VOCAB}, chunk {a.chunk}), "
               f"1 thread, warm-up + {a.pairs} alternating pairs, load average {load}: largest "
               f"logits {largest['chunked'] / 1e6:.0f} MB chunked vs {largest['plain'] / 1e6:.0f} MB "
               f"plain ({figures['logits_bytes_ratio']}x); seconds chunked/plain "
               f"{figures['seconds_ratio']} (median of pairs {figures['pair_ratios']}); "
               f"losses differ by {figures['loss_abs_diff']:.2e}")
    report("eval_loss", figures, summary, None if a.out is None else Path(a.out))


if __name__ == "__main__":
    main()
