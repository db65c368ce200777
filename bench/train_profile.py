"""Where the milliseconds of one training step go: ours vs plain HF Trainer, same data.

Both sides run under cProfile (same threads, same logging and save cadence as
bench/train_cpu.py); each named part's cumulative time is divided by the steps. Where a
name matches several functions (a super() call, nested modules' forward) the outermost
counts. The parts overlap by design (`step` holds forward + backward; `callbacks` holds our ledger,
status and heartbeat work). Prints a markdown table for docs/engine.md.

    python bench/train_profile.py [--model dio-mini] [--steps 50]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_cpu import Side, bench_config, prepare  # noqa: E402

# (label, function name, file fragment): cumulative time of each, per step.
PARTS = [
    ("whole train()", "train", "trainer.py"),
    ("collate (batch + mask)", "__call__", "packing.py"),
    ("collate (batch + mask)", "__call__", "data_collator.py"),
    ("forward + backward (training_step)", "training_step", "trainer.py"),
    ("  forward", "forward", "modeling_qwen3.py"),
    ("  backward", "backward", "accelerator.py"),
    ("optimizer step", "step", "optimizer.py"),
    ("grad clipping", "clip_grad_norm_", "accelerator.py"),
    ("log / save / eval decision (_maybe_log_save_evaluate)", "_maybe_log_save_evaluate", "trainer.py"),
    ("  held-out loss (evaluate)", "evaluate", "trainer.py"),
    ("  checkpoint save (_save_checkpoint)", "_save_checkpoint", "trainer.py"),
    ("callbacks: step end", "on_step_end", "trainer_callback.py"),
    ("callbacks: log", "on_log", "trainer_callback.py"),
    ("callbacks: save (publish, ledger rows)", "on_save", "trainer_callback.py"),
]


def profile(side: Side, steps: int) -> dict[str, float]:
    prof = cProfile.Profile()
    prof.enable()
    side.run()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    out: dict[str, float] = {}
    for label, name, frag in PARTS:
        # The outermost of same-named functions (super() calls, nested modules' forward).
        ct = max((v[3] for (f, _, n), v in stats.items() if n == name and f.endswith(frag)), default=0.0)
        out[label] = max(out.get(label, 0.0), ct)
    return {k: 1000 * v / steps for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dio-mini")
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir, exs = prepare(a.model, tmp, a.steps)
        cfg = bench_config(a.steps)
        ours, base = Side("ours", model_dir, exs, cfg, tmp), Side("baseline", model_dir, exs, cfg, tmp)
        ours.run(), base.run()  # warm-up, both sides
        mine, theirs = profile(ours, a.steps), profile(base, a.steps)
    print(f"| ms per step ({a.model}, {a.steps} steps) | ours | plain HF Trainer |")
    print("|---|---:|---:|")
    for label in dict.fromkeys(p[0] for p in PARTS):
        print(f"| {label} | {mine[label]:.1f} | {theirs[label]:.1f} |")


if __name__ == "__main__":
    main()
