"""Oracle inference: load time of a checkpoint, time to first token and tokens/s.

Ours: `ModelPool.load` then `ModelPool.stream` (chat template, the TokenBatches streamer
in a generation thread, EOS handling). Baseline, same run and weights: plain
`model.generate` on the same prompt without a streamer, in a worker thread too. Both
generate exactly --tokens new tokens (min_new_tokens), greedy, with the same torch
threads. Fair by construction: a warm-up of each side, then --pairs pairs in alternating
order (ours, baseline, baseline, ours, ...); the ratio is the median of the pairs' ratios.

    python bench/oracle.py                          # dio-mini on this machine
    python bench/oracle.py --from-config qwen3-0.6b # random-init Qwen3-0.6B (the GPU run)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import alternating, load_average, report  # noqa: E402

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
    # 256: a 64-token reply is ~90 ms here, too short to tell the sides apart (pairs 0.73-1.18)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dio = build_dio_mini(tmp / "dio-mini")
        name = a.from_config
        model_dir = dio if name == "dio-mini" else init_from_config(name, dio, tmp / name)
        loads = []
        for _ in range(3):  # a fresh pool each time: a cold load of the checkpoint
            pool = ModelPool(lambda step: (name, model_dir), max_models=1)
            loads.append(pool.load(0)["load_seconds"])
        m = pool.get(0)
        m.model.generation_config.min_new_tokens = a.tokens  # both sides make exactly --tokens
        ttft: list[float] = []

        def ours() -> float:
            done = list(pool.stream(0, PROMPT, Sampling(max_new_tokens=a.tokens)))[-1]
            ttft.append(done["ttft_seconds"])
            return done["usage"]["completion_tokens"] / done["seconds"]

        ratios, tps, base = alternating(ours, lambda: baseline_tokens_per_s(m.model, m.tokenizer, a.tokens),
                                        a.pairs)
        device = str(m.model.device)
    med = statistics.median
    key = name.replace("-", "_").replace(".", "_")
    figures = {"model": name, "device": device, "new_tokens": a.tokens, "pairs": a.pairs,
               "params": sum(p.numel() for p in m.model.parameters()),
               f"{key}_load_seconds": round(med(loads), 4), f"{key}_ttft_seconds": round(med(ttft), 4),
               f"{key}_tokens_per_s": round(med(tps), 1), f"{key}_baseline_tokens_per_s": round(med(base), 1),
               "pair_ratios": [round(r, 3) for r in ratios], "tokens_per_s_ratio": round(med(ratios), 3),
               "load_before": load_before, "load_after": load_average()}
    summary = (f"{name} on {device}: load {med(loads):.3f} s, first token {med(ttft) * 1000:.1f} ms, "
               f"{med(tps):.0f} tok/s streamed vs {med(base):.0f} tok/s plain generate "
               f"(ratio {med(ratios):.2f}, median of {a.pairs} alternating pairs after a warm-up: "
               f"{figures['pair_ratios']}), {a.tokens} new tokens, greedy; load average "
               f"{load_before} -> {figures['load_after']}")
    report(f"oracle_{key}", figures, summary, a.out)


if __name__ == "__main__":
    main()
