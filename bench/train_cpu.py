"""Training throughput on CPU: our TrainerEngine vs plain HF Trainer, same run.

Models: dio-mini and a ~20M-parameter Qwen3 (random init). Data: the same mixed-length
BIN examples (1-8 problems per example). Baseline: plain `transformers.Trainer`, pad to
the longest example of each batch (`DataCollatorForSeq2Seq`), AdamW, no packing. Ours:
TrainerEngine with padding-free packing (sdpa + block-causal mask), its self-check,
ledger writes, status files and checkpoints. Both: same examples per step, same steps.
tokens/s counts real (non-pad) tokens over trainer.train() time. Runs alternate and the
best of --repeats is kept (this machine is shared and noisy).

    python bench/train_cpu.py [--steps 40] [--steps-large 12] [--repeats 2] [--models dio-mini,qwen3-20m]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report, run_engine  # noqa: E402

from realm_kernel.store.config import TrainingConfig  # noqa: E402
from realm_kernel.train.data import build_datasets  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.train.mixed import mixed_examples  # noqa: E402
from realm_kernel.train.presets import init_from_config  # noqa: E402


def baseline(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path) -> float:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="sdpa")
    train, _, _ = build_datasets(tok, exs, cfg.max_length, 0.0, 0, cfg.seed)
    train.rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in train.rows]
    args = TrainingArguments(output_dir=str(workdir), per_device_train_batch_size=cfg.batch_size,
                             learning_rate=cfg.learning_rate, max_steps=cfg.max_steps,
                             lr_scheduler_type="cosine", logging_steps=10, save_strategy="no",
                             report_to="none", use_cpu=True, disable_tqdm=True, seed=cfg.seed,
                             optim="adamw_torch", include_num_input_tokens_seen="non_padding")
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=DataCollatorForSeq2Seq(tok, padding="longest"))
    out = trainer.train()
    return trainer.state.num_input_tokens_seen / out.metrics["train_runtime"]


def ours(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path) -> tuple[float, float]:
    result = run_engine(model_dir, exs, cfg, workdir)
    return result.tokens_per_second, result.packing_efficiency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps for dio-mini")
    ap.add_argument("--steps-large", type=int, default=12,
                    help="steps for the larger models (a 20M step takes seconds on 2 cores)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", default="dio-mini,qwen3-20m")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    figures: dict = {"steps": a.steps, "batch_size": 16, "data": "BIN L1, 1-8 problems per example"}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dio = build_dio_mini(tmp / "dio-mini")
        for name in a.models.split(","):
            model_dir = dio if name == "dio-mini" else init_from_config(name, dio, tmp / name)
            steps = a.steps if name == "dio-mini" else min(a.steps, a.steps_large)
            cfg = TrainingConfig(max_steps=steps, save_steps=10_000, eval_fraction=0.0,
                                 batch_size=16, max_length=512, learning_rate=1e-3)
            exs = mixed_examples(cfg.batch_size * steps + 64, seed=0)
            base, mine, eff = [], [], 0.0
            for i in range(a.repeats):
                base.append(baseline(model_dir, exs, cfg, tmp / f"base-{name}-{i}"))
                tps, eff = ours(model_dir, exs, cfg, tmp / f"ours-{name}-{i}")
                mine.append(tps)
            key = name.replace("-", "_").replace(".", "_")
            figures.update({f"{key}_tokens_per_s_ratio": round(max(mine) / max(base), 3),
                            f"{key}_tokens_per_s": round(max(mine), 1),
                            f"{key}_baseline_tokens_per_s": round(max(base), 1),
                            f"{key}_packing_efficiency": round(eff, 4)})
            lines.append(f"{name} {max(mine):.0f} vs {max(base):.0f} tok/s = "
                         f"{max(mine) / max(base):.2f}x (packing efficiency {eff:.1%})")
    first = a.models.split(",")[0].replace("-", "_").replace(".", "_")
    figures["tokens_per_s_ratio"] = figures[f"{first}_tokens_per_s_ratio"]
    summary = "ours (packing) vs plain HF Trainer (pad to longest): " + "; ".join(lines)
    report("train_cpu", figures, summary, a.out)


if __name__ == "__main__":
    main()
