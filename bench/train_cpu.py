"""Training throughput of dio-mini: our TrainerEngine vs a plain HF Trainer, same run.

Both train the same BIN examples (timed over trainer.train(), which for ours includes
the ledger writes, status files and the final checkpoint) with the same batch size, learning rate and steps;
tokens/s counts non-pad tokens only. The baseline is plain `transformers.Trainer` with
`DataCollatorForSeq2Seq` (pad to longest, AdamW, no packing). Runs alternate and the
best of `--repeats` is kept, because this machine is shared and noisy.

    python bench/train_cpu.py [--steps 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import report  # noqa: E402

import skills  # noqa: E402
from realm_kernel.config import TrainingConfig  # noqa: E402
from realm_kernel.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.engine import Job, TrainerEngine  # noqa: E402
from realm_kernel.engine.data import build_datasets  # noqa: E402
from realm_kernel.ledger import Ledger  # noqa: E402
from realm_kernel.paths import RealmPaths  # noqa: E402


def examples(n: int) -> list[dict]:
    return [p.as_example() for p in skills.generate("bin", 1, n, seed=0)]


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
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    train, _, _ = build_datasets(tok, exs, cfg.max_length, 0.0, 0, cfg.seed)
    args = TrainingArguments(output_dir=str(workdir), per_device_train_batch_size=cfg.batch_size,
                             learning_rate=cfg.learning_rate, max_steps=cfg.max_steps,
                             lr_scheduler_type="cosine", logging_steps=10, save_strategy="no",
                             report_to="none", use_cpu=True, disable_tqdm=True, seed=cfg.seed,
                             include_num_input_tokens_seen="non_padding")
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=DataCollatorForSeq2Seq(tok, padding="longest"))
    out = trainer.train()
    return trainer.state.num_input_tokens_seen / out.metrics["train_runtime"]


def ours(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path) -> float:
    paths = RealmPaths.at(workdir).ensure()
    job = Job(quest_id="bench.jsonl", examples=exs, model_path=model_dir, run_id="bench",
              training=cfg)
    result = TrainerEngine(paths, Ledger(paths, "bench")).run_job(job)
    if not result.success:
        raise SystemExit(result.error_message)
    return result.tokens_per_second  # non-pad tokens / trainer.train() time, as the baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_dio_mini(tmp / "dio-mini")
        cfg = TrainingConfig(max_steps=a.steps, save_steps=10_000, eval_fraction=0.0, batch_size=16)
        exs = examples(cfg.batch_size * a.steps)
        base, mine = [], []
        for i in range(a.repeats):
            base.append(baseline(model_dir, exs, cfg, tmp / f"base{i}"))
            mine.append(ours(model_dir, exs, cfg, tmp / f"ours{i}"))
    figures = {"tokens_per_s_ratio": round(max(mine) / max(base), 3),
               "tokens_per_s": round(max(mine), 1), "baseline_tokens_per_s": round(max(base), 1),
               "steps": a.steps, "batch_size": 16, "model": "dio-mini", "data": "BIN level 1"}
    summary = (f"dio-mini {figures['tokens_per_s']:.0f} tok/s (ours, ledger + checkpoints) vs "
               f"{figures['baseline_tokens_per_s']:.0f} tok/s (plain HF Trainer), "
               f"ratio {figures['tokens_per_s_ratio']:.2f}")
    report("train_cpu", figures, summary, a.out)


if __name__ == "__main__":
    main()
