"""Oracle inference: load time of a checkpoint, time to first token and tokens/s.

Ours: `ModelPool.load` then `ModelPool.stream` (chat template, TextIteratorStreamer in a
generation thread, EOS handling). Baseline, same run and weights: plain
`model.generate` on the same prompt without a streamer, in a worker thread too. Both generate exactly
--tokens new tokens (min_new_tokens), greedy; best of --repeats.

    python bench/oracle.py                          # dio-mini on this machine
    python bench/oracle.py --from-config qwen3-0.6b # random-init Qwen3-0.6B (the GPU run)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report  # noqa: E402

from realm_kernel.oracle.pool import ModelPool, Sampling  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.train.presets import init_from_config  # noqa: E402

PROMPT = [{"role": "user", "content": "Binary Alchemy, level 1. Add without carry: ①⓪① + ①⓪⓪ = ?"}]


def baseline_tokens_per_s(model, tok, n: int) -> float:
    import torch
    inputs = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True).to(model.device)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    out: dict = {}

    def run() -> None:
        with torch.inference_mode():
            out["ids"] = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                        pad_token_id=tok.pad_token_id)

    # In a worker thread like the pool's generation (on a shared 2-core machine the main
    # thread's OpenMP team measured several times slower): only the streaming differs.
    t0 = time.perf_counter()
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (out["ids"].shape[1] - inputs["input_ids"].shape[1]) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-config", default="dio-mini", help="dio-mini, or a preset: qwen3-0.6b, ...")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dio = build_dio_mini(tmp / "dio-mini")
        name = a.from_config
        model_dir = dio if name == "dio-mini" else init_from_config(name, dio, tmp / name)
        loads = []
        for _ in range(a.repeats):  # a fresh pool each time: a cold load of the checkpoint
            pool = ModelPool(lambda step: (name, model_dir), max_models=1)
            loads.append(pool.load(0)["load_seconds"])
        m = pool.get(0)
        list(pool.stream(0, PROMPT, Sampling(max_new_tokens=4)))  # warm-up, both sides
        baseline_tokens_per_s(m.model, m.tokenizer, 4)
        m.model.generation_config.min_new_tokens = a.tokens  # both sides make exactly --tokens
        ttft, tps, base = [], [], []
        for _ in range(a.repeats):
            done = list(pool.stream(0, PROMPT, Sampling(max_new_tokens=a.tokens)))[-1]
            ttft.append(done["ttft_seconds"])
            tps.append(done["usage"]["completion_tokens"] / done["seconds"])
            base.append(baseline_tokens_per_s(m.model, m.tokenizer, a.tokens))
        device = str(m.model.device)
    key = name.replace("-", "_").replace(".", "_")
    figures = {"model": name, "device": device, "new_tokens": a.tokens, "repeats": a.repeats,
               "params": sum(p.numel() for p in m.model.parameters()),
               f"{key}_load_seconds": round(min(loads), 4), f"{key}_ttft_seconds": round(min(ttft), 4),
               f"{key}_tokens_per_s": round(max(tps), 1), f"{key}_baseline_tokens_per_s": round(max(base), 1),
               "tokens_per_s_ratio": round(max(tps) / max(base), 3)}
    summary = (f"{name} on {device}: load {min(loads):.3f} s, first token {min(ttft) * 1000:.1f} ms, "
               f"{max(tps):.0f} tok/s streamed vs {max(base):.0f} tok/s plain generate "
               f"(ratio {max(tps) / max(base):.2f}), {a.tokens} new tokens, greedy")
    report(f"oracle_{key}", figures, summary, a.out)


if __name__ == "__main__":
    main()
