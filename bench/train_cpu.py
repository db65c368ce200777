"""Training throughput on CPU: our TrainerEngine vs plain HF Trainer, same run.

Models: dio-mini and a ~20M-parameter Qwen3 (random init). Data: the same mixed-length
BIN examples (1-8 problems per example). Baseline: plain `transformers.Trainer`, pad to
the longest example of each batch (`DataCollatorForSeq2Seq`), AdamW, no packing. Ours:
TrainerEngine with the daemon's settings: padding-free packing (CPU's sdpa_segments:
each packed example attends to itself alone, a step's rows go in as one unpadded row),
its self-check, ledger rows, status and heartbeat files, checkpoints published
with their ledger rows and a held-out loss at every save.

Fair by construction: the same torch thread count on both sides (--threads, default
what the daemon takes: half the cores), the same precision (--dtype: auto, the daemon's,
is bf16 autocast on a CPU with native bf16 and the baseline then gets HF's bf16=True;
float32 for both), the same examples per step, the same steps, the
same logging cadence (every step, as the daemon logs) and save cadence (--save-steps,
both sides save full checkpoints; steps are a multiple of it so neither side saves
more); one warm-up run of each side first; then pairs in alternating order (ours,
baseline, baseline, ours, ...), and each model's ratio is the median of the pairs'
ratios. tokens/s counts real (non-pad) tokens over trainer.train() time. Our extra
per-save work (held-out loss, publishing the checkpoint with its ledger rows) is in our
time and also reported as its own figure: its share of our training time.

The compute ceiling: each side's fill (real tokens / tokens computed, rows x width of
every batch its collator made) and their quotient, the ratio packing can reach when a
step's cost is proportional to the tokens computed (a FLOP-bound model: the larger one
on CPU). A ratio near the ceiling means the step's overhead is gone; beyond it needs
less work per token than the baseline does.

    python bench/train_cpu.py [--steps 50] [--steps-large 25] [--pairs 3] [--models dio-mini,qwen3-20m]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import alternating, load_average, report, run_engine  # noqa: E402

from realm_kernel.store.config import TrainingConfig  # noqa: E402
from realm_kernel.train.data import build_datasets  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.train.loading import cpu_autocast_bf16, precision  # noqa: E402
from realm_kernel.train.mixed import mixed_examples  # noqa: E402
from realm_kernel.train.packing import PackedCollator  # noqa: E402
from realm_kernel.train.presets import init_from_config  # noqa: E402
from realm_kernel.train.trainer import cpu_share  # noqa: E402

SAVE_STEPS = 25


def bench_config(steps: int, threads: int = 0, save_steps: int = SAVE_STEPS,
                 dtype: str = "auto") -> TrainingConfig:
    """The daemon's defaults (logging every step, a held-out loss at every save), pinned."""
    return TrainingConfig(max_steps=steps, save_steps=save_steps, batch_size=16, max_length=512,
                          learning_rate=1e-3, threads=threads or cpu_share(), dtype=dtype)


def prepare(name: str, tmp: Path, steps: int) -> tuple[Path, list[dict]]:
    dio = tmp / "dio-mini"
    if not dio.exists():
        build_dio_mini(dio)
    model_dir = dio if name == "dio-mini" else init_from_config(name, dio, tmp / name)
    return model_dir, mixed_examples(16 * steps + 64, seed=0)


@dataclass
class Fill:
    """Real and computed (rows x width) tokens of the batches a collator makes."""

    real: int = 0
    computed: int = 0

    def count(self, batch: dict) -> dict:
        self.computed += batch["input_ids"].numel()
        n = batch.get("num_real_tokens")
        self.real += int(n) if n is not None else int(batch["attention_mask"].sum())
        return batch

    @property
    def fill(self) -> float:
        return self.real / max(1, self.computed)


@dataclass
class Side:
    """One side of the comparison; run() trains once in a fresh folder, returns tokens/s."""

    who: str
    model_dir: Path
    examples: list[dict]
    cfg: TrainingConfig
    tmp: Path
    runs: int = 0
    efficiency: float = 0.0
    extra_shares: list[float] = field(default_factory=list)  # ours: held-out loss + publishing
    tokens: Fill = field(default_factory=Fill)

    def run(self) -> float:
        import torch
        torch.set_num_threads(self.cfg.threads)
        self.runs += 1
        workdir = self.tmp / f"{self.who}-{self.model_dir.name}-{self.runs}"
        if self.who == "baseline":
            return baseline(self.model_dir, self.examples, self.cfg, workdir, self.tokens)
        collate = PackedCollator.__call__
        PackedCollator.__call__ = lambda coll, rows: self.tokens.count(collate(coll, rows))
        try:
            r = run_engine(self.model_dir, self.examples, self.cfg, workdir)
        finally:
            PackedCollator.__call__ = collate
        self.efficiency = r.packing_efficiency or 0.0
        self.extra_shares.append((r.eval_seconds + r.publish_seconds) / r.train_seconds)
        return r.tokens_per_second


def baseline(model_dir: Path, exs: list[dict], cfg: TrainingConfig, workdir: Path, tokens: Fill) -> float:
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
                             lr_scheduler_type="cosine", logging_steps=cfg.logging_steps,
                             save_strategy="steps", save_steps=cfg.save_steps,
                             report_to="none", use_cpu=True, disable_tqdm=True, seed=cfg.seed,
                             optim="adamw_torch", include_num_input_tokens_seen="non_padding",
                             bf16=cpu_autocast_bf16(cfg.dtype))  # the same precision as ours
    collate = DataCollatorForSeq2Seq(tok, padding="longest")
    trainer = Trainer(model=model, args=args, train_dataset=train,
                      data_collator=lambda rows: tokens.count(collate(rows)))
    out = trainer.train()
    return trainer.state.num_input_tokens_seen / out.metrics["train_runtime"]


def compare(name: str, tmp: Path, steps: int, pairs: int, threads: int, save_steps: int,
            dtype: str) -> dict:
    model_dir, exs = prepare(name, tmp, steps)
    cfg = bench_config(steps, threads, save_steps, dtype)
    ours, base = Side("ours", model_dir, exs, cfg, tmp), Side("baseline", model_dir, exs, cfg, tmp)
    ratios, mine, theirs = alternating(ours.run, base.run, pairs)
    key = name.replace("-", "_").replace(".", "_")
    return {f"{key}_tokens_per_s_ratio": round(statistics.median(ratios), 3),
            f"{key}_pair_ratios": [round(r, 3) for r in ratios],
            f"{key}_tokens_per_s": round(statistics.median(mine), 1),
            f"{key}_baseline_tokens_per_s": round(statistics.median(theirs), 1),
            f"{key}_packing_efficiency": round(ours.efficiency, 4),
            f"{key}_extra_save_work_share": round(statistics.median(ours.extra_shares), 4),
            f"{key}_fill": round(ours.tokens.fill, 4),
            f"{key}_baseline_fill": round(base.tokens.fill, 4),
            f"{key}_compute_ceiling_ratio": round(ours.tokens.fill / base.tokens.fill, 3),
            f"{key}_steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="steps for dio-mini")
    ap.add_argument("--steps-large", type=int, default=25, help="steps for the larger models")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--save-steps", type=int, default=SAVE_STEPS,
                    help="both sides save every N steps (make the steps a multiple of it)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, both sides (0: half the cores)")
    ap.add_argument("--models", default="dio-mini,qwen3-20m")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32"],
                    help="training.dtype, both sides: auto = the daemon's (bf16 autocast on a "
                         "CPU with native bf16, the baseline then runs with bf16=True), float32")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    threads = a.threads or cpu_share()
    prec = precision(a.dtype, cuda=False)
    figures: dict = {"batch_size": 16, "save_steps": a.save_steps, "pairs": a.pairs, "threads": threads,
                     "precision": prec,
                     "data": "BIN L1, 1-8 problems per example", "load_before": load_average()}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            steps = a.steps if name == "dio-mini" else a.steps_large
            f = compare(name, Path(tmp), steps, a.pairs, threads, a.save_steps, a.dtype)
            figures.update(f)
            key = name.replace("-", "_").replace(".", "_")
            lines.append(f"{name} {f[f'{key}_tokens_per_s']:.0f} vs {f[f'{key}_baseline_tokens_per_s']:.0f} "
                         f"tok/s = {f[f'{key}_tokens_per_s_ratio']:.2f}x (median of pairs "
                         f"{f[f'{key}_pair_ratios']}; packing {f[f'{key}_packing_efficiency']:.1%}; "
                         f"held-out loss + publishing {f[f'{key}_extra_save_work_share']:.1%} of our time; "
                         f"tokens computed that are real: ours {f[f'{key}_fill']:.1%}, baseline "
                         f"{f[f'{key}_baseline_fill']:.1%}, so a compute ceiling of "
                         f"{f[f'{key}_compute_ceiling_ratio']:.2f}x)")
    figures["load_after"] = load_average()
    first = a.models.split(",")[0].replace("-", "_").replace(".", "_")
    figures["tokens_per_s_ratio"] = figures[f"{first}_tokens_per_s_ratio"]
    summary = (f"ours (packing, daemon settings) vs plain HF Trainer (pad to longest), both in "
               f"{prec}, {threads} thread(s) each, log every step, save every {a.save_steps}, "
               f"warm-up + {a.pairs} "
               f"alternating pairs: " + "; ".join(lines) +
               f"; load average {figures['load_before']} -> {figures['load_after']}")
    report("train_cpu", figures, summary, a.out)


if __name__ == "__main__":
    main()
