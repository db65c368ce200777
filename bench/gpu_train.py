"""GPU training benchmark, one prepared script for the device machine (< 8 minutes).

Part 1, speed: Qwen3-0.6B (random init, real vocabulary), mixed-length chat data up to
--seq-len tokens, bf16. Baseline: plain HF Trainer, pad to longest, AdamW, no packing,
sdpa. Ours: TrainerEngine (packing with exact masking, flash-attn varlen if installed
else sdpa + block mask, Liger if installed, fused AdamW). Same examples per step, the
same logging cadence and one checkpoint at the end on both sides, the same torch
threads on CPU; a warm-up run of each side, then --pairs pairs in alternating order
(ours, baseline, baseline, ours, ...), the ratio the median of the pairs' ratios.
Figures: real tokens/s, MFU, peak memory; targets >= 2x tokens/s, peak <= 0.6x.

Part 2, memory: Qwen3-4B full fine-tuning, paged_adamw_8bit + Liger + gradient
checkpointing, seq 512, batch 1, under a 24 GiB cap (set_per_process_memory_fraction).
Figures: peak memory (target <= 18.6 GB, aim 16) and the VRAM calculator's error
against it (target within 10%).

Both parts also keep what the engine itself records after each battle on CUDA
(train/memory.py, the realm's status/memory_peaks.json): torch's peak allocated and
reserved, NVML's used memory, and the calculator's estimate for the battle's own
settings (micro-batch, packed length) with its error: `speed_battle_*` for Qwen3-0.6B,
`memory_battle_*` for the 4B recipe. Off CUDA the engine records none and the keys are
absent.

`--tiny` runs both parts on CPU with dio-mini-sized models (the test suite does this).
On the device machine (which lacks duckdb, pydantic, liger-kernel and bitsandbytes),
fetch wheels first with `bash bench/gpu_wheels.sh` and run:
  pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
  PYTHONPATH=/tmp/site:. python3 bench/gpu_train.py
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import alternating, report, run_engine  # noqa: E402

from realm_kernel.hero_model.vram import CUDA_CONTEXT_BYTES, count_params, estimate  # noqa: E402
from realm_kernel.store.config import TrainingConfig  # noqa: E402
from realm_kernel.train.data import build_datasets  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.train.mixed import mixed_examples  # noqa: E402
from realm_kernel.train.presets import PRESETS, init_from_config  # noqa: E402

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12,
                   "4090": 165e12, "3090": 71e12}


def cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def peak_flops() -> float | None:
    import torch
    if not cuda():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def reset_memory() -> None:
    import torch
    gc.collect()
    if cuda():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> int | None:
    import torch
    return torch.cuda.max_memory_allocated() if cuda() else None


def baseline(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path) -> dict:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    reset_memory()
    tok = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if cuda() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa")
    train, _, _ = build_datasets(tok, exs, cfg.max_length, 0.0, 0, cfg.seed)
    train.rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in train.rows]
    if not cuda():
        from realm_kernel.train.trainer import cpu_share
        torch.set_num_threads(cfg.threads or cpu_share())  # what our engine takes on CPU
    args = TrainingArguments(output_dir=str(workdir), per_device_train_batch_size=cfg.batch_size,
                             learning_rate=cfg.learning_rate, max_steps=cfg.max_steps,
                             logging_steps=cfg.logging_steps, save_strategy="steps",
                             save_steps=cfg.save_steps, report_to="none",
                             use_cpu=not cuda(), bf16=cuda(), disable_tqdm=True, seed=cfg.seed,
                             include_num_input_tokens_seen="non_padding")
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=DataCollatorForSeq2Seq(tok, padding="longest"))
    out = trainer.train()
    result = {"tokens_per_s": trainer.state.num_input_tokens_seen / out.metrics["train_runtime"],
              "peak_memory": peak_memory()}
    del trainer, model
    return result


def battle_peak(workdir: Path, prefix: str) -> dict:
    """The peak the engine recorded for its battle in this realm home (train/memory.py)
    beside the calculator's estimate for the battle's own settings, as flat figures;
    empty off CUDA, where no peak is recorded."""
    from realm_kernel.store.batch_fit import PEAKS
    from realm_kernel.store.paths import RealmPaths
    path = RealmPaths.at(workdir).status / PEAKS
    peaks = json.loads(path.read_text()) if path.is_file() else {}
    if not peaks:
        return {}
    key, p = next(iter(peaks.items()))
    return {f"{prefix}card": key.partition("|")[0], f"{prefix}micro_batch": p.get("micro_batch"),
            f"{prefix}peak_allocated_bytes": p.get("max_memory_allocated"),
            f"{prefix}peak_reserved_bytes": p.get("max_memory_reserved"),
            f"{prefix}nvml_used_bytes": p.get("nvml_used"),
            f"{prefix}vram_estimate_bytes": p.get("estimate"),
            f"{prefix}vram_estimate_error": p.get("error")}


def ours(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path) -> dict:
    reset_memory()
    r = run_engine(model_dir, exs, cfg, workdir)
    return {"tokens_per_s": r.tokens_per_second, "peak_memory": r.peak_memory_bytes,
            "packing_efficiency": r.packing_efficiency, "attn": r.attn_implementation,
            "battle": battle_peak(workdir, "battle_")}


def mfu(tokens_per_s: float, params: int, layers: int, hidden: int, seq: int) -> float | None:
    peak = peak_flops()
    if not peak:
        return None
    # 6N per token, plus attention's 12 * layers * hidden * seq (upper bound: full rows).
    return tokens_per_s * (6 * params + 12 * layers * hidden * seq) / peak


def speed_part(tmp: Path, tok_dir: Path, tiny: bool, steps: int, seq_len: int, pairs: int,
               liger: str = "auto") -> dict:
    name = "dio-mini" if tiny else "qwen3-0.6b"
    model_dir = tok_dir if tiny else init_from_config(name, tok_dir, tmp / name)
    bundle = max(2, seq_len // 48)  # BIN problems per example: lengths ~45 .. seq_len tokens
    # One save, at the end, on both sides (ours always ends a quest on a checkpoint).
    cfg = TrainingConfig(max_steps=steps, save_steps=steps, eval_fraction=0.0, batch_size=8,
                         max_length=seq_len, learning_rate=1e-4, logging_steps=5, liger=liger)
    exs = mixed_examples(cfg.batch_size * steps + 16, seed=0, max_bundle=bundle)
    runs: dict[str, list[dict]] = {"ours": [], "base": []}

    def side(who: str, fn):
        def run() -> float:
            r = fn(model_dir, exs, cfg, tmp / f"{who}-{len(runs[who])}")
            runs[who].append(r)
            return r["tokens_per_s"]
        return run

    ratios, mine_tps, base_tps = alternating(side("ours", ours), side("base", baseline), pairs)
    mine = {**runs["ours"][-1], "tokens_per_s": statistics.median(mine_tps)}
    base = {**runs["base"][-1], "tokens_per_s": statistics.median(base_tps)}
    arch = PRESETS.get(name, {"hidden_size": 128, "num_hidden_layers": 6})
    from transformers import AutoConfig
    params = count_params(AutoConfig.from_pretrained(model_dir))
    out = {"speed_model": name, "speed_seq_len": seq_len, "speed_liger": liger,
           "tokens_per_s_ratio": round(statistics.median(ratios), 3),
           "pair_ratios": [round(r, 3) for r in ratios],
           "tokens_per_s": round(mine["tokens_per_s"], 1),
           "baseline_tokens_per_s": round(base["tokens_per_s"], 1),
           "packing_efficiency": round(mine["packing_efficiency"], 4), "attn": mine["attn"]}
    for who, r in (("", mine), ("baseline_", base)):
        m = mfu(r["tokens_per_s"], params, arch["num_hidden_layers"], arch["hidden_size"], seq_len)
        out[f"{who}mfu"] = round(m, 4) if m else None
        out[f"{who}peak_memory_bytes"] = r["peak_memory"]
    if base["peak_memory"] and mine["peak_memory"]:
        out["peak_memory_ratio"] = round(mine["peak_memory"] / base["peak_memory"], 3)
    out.update({f"speed_{k}": v for k, v in mine["battle"].items()})
    return out


def memory_part(tmp: Path, tok_dir: Path, tiny: bool, steps: int) -> dict:
    import torch
    name = "dio-mini" if tiny else "qwen3-4b"
    have_bnb = importlib.util.find_spec("bitsandbytes") is not None
    have_liger = importlib.util.find_spec("liger_kernel") is not None
    optimizer = "paged_adamw_8bit" if have_bnb else "adamw"
    model_dir = tok_dir if tiny else init_from_config(name, tok_dir, tmp / name,
                                                      dtype=torch.bfloat16)
    if cuda():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, 24 * 2**30 / total))
    cfg = TrainingConfig(max_steps=steps, save_steps=10_000, eval_fraction=0.0, batch_size=1,
                         max_length=512, pack_length=512, learning_rate=1e-5, optimizer=optimizer,
                         gradient_checkpointing=True, liger="on" if have_liger else "off")
    exs = mixed_examples(steps * 4 + 8, seed=1, max_bundle=10)
    r = ours(model_dir, exs, cfg, tmp / "mem")
    from transformers import AutoConfig
    est = estimate(AutoConfig.from_pretrained(model_dir).to_dict(), seq_len=512,
                   dtype="bfloat16" if cuda() else "float32", optimizer=optimizer,
                   gradient_checkpointing=True, liger=have_liger)
    out = {"memory_model": name, "memory_optimizer": optimizer, "memory_liger": have_liger,
           "memory_peak_bytes": r["peak_memory"], "vram_estimate_bytes": round(est.total)}
    if r["peak_memory"]:
        measured = r["peak_memory"] + CUDA_CONTEXT_BYTES  # the estimate counts the context
        out["vram_estimate_error"] = round((est.total - measured) / measured, 4)
    out.update({f"memory_{k}": v for k, v in r["battle"].items()})
    return out


def qlora_part(tmp: Path, tok_dir: Path, tiny: bool, steps: int) -> dict:
    """QLoRA (4-bit NF4 base + LoRA r=16) on Qwen3-4B: it trains, and its peak against the
    VRAM calculator's estimate. Needs CUDA and bitsandbytes (else it says why)."""
    import torch
    if not cuda() or importlib.util.find_spec("bitsandbytes") is None:
        return {"qlora": "skipped: needs CUDA and bitsandbytes"}
    name = "dio-mini" if tiny else "qwen3-4b"
    model_dir = tok_dir if tiny else init_from_config(name, tok_dir, tmp / f"{name}-q",
                                                      dtype=torch.bfloat16)
    cfg = TrainingConfig(max_steps=steps, save_steps=10_000, eval_fraction=0.0, batch_size=1,
                         max_length=512, pack_length=512, learning_rate=1e-4, method="qlora",
                         lora_rank=16, gradient_checkpointing=True, liger="off")
    r = ours(model_dir, mixed_examples(steps * 4 + 8, seed=2, max_bundle=10), cfg, tmp / "qlora")
    from transformers import AutoConfig
    est = estimate(AutoConfig.from_pretrained(model_dir).to_dict(), seq_len=512, dtype="bfloat16",
                   gradient_checkpointing=True, method="qlora", lora_rank=16)
    out = {"qlora_model": name, "qlora_peak_bytes": r["peak_memory"],
           "qlora_estimate_bytes": round(est.total)}
    if r["peak_memory"]:
        measured = r["peak_memory"] + CUDA_CONTEXT_BYTES
        out["qlora_estimate_error"] = round((est.total - measured) / measured, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU smoke run with dio-mini-sized models")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=3, help="alternating pairs after a warm-up")
    ap.add_argument("--part", choices=("all", "speed", "memory", "qlora"), default="all")
    ap.add_argument("--liger", choices=("auto", "off"), default="auto",
                    help="ours with Liger where installed (auto) or without it (off)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    steps = a.steps or (3 if a.tiny else 30)
    seq_len = a.seq_len or (256 if a.tiny else 2048)
    t0 = time.time()
    figures: dict = {"tiny": a.tiny}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok_dir = build_dio_mini(tmp / "dio-mini")
        if a.part in ("all", "speed"):
            figures.update(speed_part(tmp, tok_dir, a.tiny, steps, seq_len, a.pairs, a.liger))
        if a.part in ("all", "memory"):
            figures.update(memory_part(tmp, tok_dir, a.tiny, max(3, steps // 5)))
        if a.part in ("all", "qlora"):
            figures.update(qlora_part(tmp, tok_dir, a.tiny, max(3, steps // 5)))
    figures["seconds"] = round(time.time() - t0, 1)
    summary = ", ".join(f"{k}={v}" for k, v in figures.items())
    name = "gpu_train_tiny" if a.tiny else "gpu_train"
    report(name + ("_liger_off" if a.liger == "off" else ""), figures, summary, a.out)


if __name__ == "__main__":
    main()
