"""LoRA against full fine-tuning, same run, same machine: dio-mini and a ~20M Qwen3 (random
init from the tokenizer of dio-mini) trained on the same BIN quest for the same steps,
full then LoRA; seconds per step, trainable parameters, checkpoint bytes and final loss,
with LoRA's figures as ratios to full (the baseline measured in this run). Also the VRAM
calculator's full / LoRA / QLoRA estimates for Qwen3-0.6B and -4B.

    .venv/bin/python bench/lora_cpu.py [--steps 40]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import report, run_engine

import realm_skills as skills
from realm_kernel.hero_model.vram import GB, estimate
from realm_kernel.store.config import TrainingConfig
from realm_kernel.train.dio_mini import build_dio_mini
from realm_kernel.train.presets import PRESETS, init_from_config


def trainable(ckpt: Path) -> int:
    from safetensors import safe_open
    name = next(n for n in ("adapter_model.safetensors", "model.safetensors") if (ckpt / n).exists())
    with safe_open(str(ckpt / name), "pt") as f:
        return sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def one(model_dir: Path, method: str, steps: int, workdir: Path) -> dict:
    ex = [p.as_example() for p in skills.generate("bin", 1, 8 * steps, seed=3)]
    cfg = TrainingConfig(max_steps=steps, batch_size=8, max_length=128, save_steps=steps, threads=1,
                         eval_fraction=0.0, method=method, lora_rank=16, lora_alpha=32,
                         learning_rate=1e-3 if method == "full" else 3e-3)
    result = run_engine(model_dir, ex, cfg, workdir)
    ckpt = Path(result.last_checkpoint_path)
    files = [p for p in ckpt.iterdir() if p.name.endswith(".safetensors")]
    return {"s_per_step": result.seconds / steps, "loss": result.final_loss,
            "checkpoint_bytes": sum(p.stat().st_size for p in files), "trainable": trainable(ckpt)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    figures: dict = {"steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mini = build_dio_mini(tmp / "dio-mini")
        q20 = init_from_config("qwen3-20m", mini, tmp / "qwen3-20m")
        for label, model in (("dio_mini", mini), ("qwen3_20m", q20)):
            for method in ("full", "lora"):
                r = one(model, method, args.steps, tmp / f"{label}-{method}")
                for k, v in r.items():
                    figures[f"{label}_{method}_{k}"] = v
            for k in ("s_per_step", "checkpoint_bytes", "trainable"):
                lora, full = figures[f"{label}_lora_{k}"], figures[f"{label}_full_{k}"]
                figures[f"{label}_lora_vs_full_{k}"] = lora / full
    for name in ("qwen3-0.6b", "qwen3-4b"):
        for method in ("full", "lora", "qlora"):
            est = estimate(PRESETS[name], seq_len=512, gradient_checkpointing=True, method=method)
            key = name.replace("-", "_").replace(".", "_")
            figures[f"vram_{key}_{method}_gb"] = round(est.total / GB, 2)
    parts = []
    for label in ("dio_mini", "qwen3_20m"):
        if f"{label}_lora_vs_full_s_per_step" in figures:
            f = {k.removeprefix(f"{label}_"): v for k, v in figures.items() if k.startswith(label)}
            parts.append(f"{label}: LoRA/full s/step {f['lora_vs_full_s_per_step']:.2f}x, trainable "
                         f"{f['lora_vs_full_trainable']:.3f}x, "
                         f"checkpoint {f['lora_vs_full_checkpoint_bytes']:.3f}x, "
                         f"loss {f['full_loss']:.3f} (full) / {f['lora_loss']:.3f} (LoRA)")
    v = [figures[f"vram_qwen3_4b_{m}_gb"] for m in ("full", "lora", "qlora")]
    parts.append(f"VRAM estimate Qwen3-4B seq 512 ckpt: full {v[0]} GB, LoRA {v[1]} GB, QLoRA {v[2]} GB")
    report("issue17", figures, f"{args.steps} steps, batch 8, 1 thread; " + "; ".join(parts))


if __name__ == "__main__":
    main()
