"""The real hero's architecture through the real loop, on this CPU.

Qwen3-0.6B built from its published config (random init, vocab 151,936, bf16; dio-mini's
tokenizer, since no weights or tokenizer can be downloaded) is the base model of a temp
realm. A real daemon subprocess trains a few steps of a BIN quest and saves; the eval
pipeline (evals/evalqueue.evaluate, as the Task Master runs it) scores the newest
checkpoint; the Oracle loads the older, weights-only checkpoint and answers. Recorded:
step seconds, the daemon's peak RSS, bytes and seconds per checkpoint (resume and
weights-only), eval seconds, Oracle load seconds and first token, and the share of wall
time saving would take at an RTX 4090's step rate (`projected_save_share`, see ASSUMED).

    python bench/real_hero_cpu.py [--steps 4] [--save-every 200]

tests/test_real_hero.py runs the same loop with the config cut to 2 layers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import realm_skills as skills  # noqa: E402
from realm_kernel.quests.formats import write_quest  # noqa: E402
from realm_kernel.store.checkpoints import carries_resume_state, extract_step  # noqa: E402
from realm_kernel.store.home import Home  # noqa: E402
from realm_kernel.store.paths import RealmPaths  # noqa: E402
from tests.helpers import Procs, start_daemon, wait_for  # noqa: E402

# The step rate assumed for Qwen3-0.6B full fine-tuning on one RTX 4090, for the projected
# save share: 165 TFLOPS dense bf16 (NVIDIA Ada Lovelace whitepaper, FP16/BF16 tensor with
# FP32 accumulate) at 40% model FLOPs utilisation, 6 x 0.6e9 FLOPs per trained token, so
# ~18,300 tokens/s; a step of the qwen3-0.6b profile's size (16 rows x 1,024 tokens packed)
# then takes ~0.9 s. Replace it with bench/gpu_check.sh's measured rate when a GPU is at hand.
ASSUMED = {"gpu": "RTX 4090", "tflops_bf16": 165.0, "mfu": 0.40, "params": 0.6e9,
           "tokens_per_step": 16 * 1024}
ASSUMED["tokens_per_s"] = ASSUMED["tflops_bf16"] * 1e12 * ASSUMED["mfu"] / (6 * ASSUMED["params"])
ASSUMED["step_s"] = ASSUMED["tokens_per_step"] / ASSUMED["tokens_per_s"]

TOML = """
[hero]
base_model = "models/qwen3-0.6b"

[training]
dtype = "bfloat16"
batch_size = {batch}
max_length = {seq}
save_steps = {save_steps}
max_steps = {steps}
max_eval_examples = 2
logging_steps = 1
threads = {threads}

[daemon]
poll_seconds = 0.5
settle_seconds = 0.2

[taskmaster]
enabled = false
"""


def peak_rss(pid: int) -> int:
    """VmHWM: the process's resident-set high-water mark, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def build_realm(workdir: Path, layers: int | None, steps: int, save_steps: int, batch: int,
                seq: int) -> RealmPaths:
    import torch

    from realm_kernel.train.dio_mini import build_dio_mini
    from realm_kernel.train.presets import init_from_config

    paths = RealmPaths.at(workdir / "realm").ensure()
    tok = build_dio_mini(workdir / "dio-mini-tokenizer")
    overrides = {"num_hidden_layers": layers} if layers else {}
    init_from_config("qwen3-0.6b", tok, paths.home / "models" / "qwen3-0.6b",
                     dtype=torch.bfloat16, **overrides)
    (paths.home / "realm.toml").write_text(TOML.format(
        batch=batch, seq=seq, save_steps=save_steps, steps=steps, threads=os.cpu_count() or 1))
    return paths


def hero_loop(workdir: Path, *, layers: int | None = None, steps: int = 4, save_steps: int = 2,
              batch: int = 4, seq: int = 128, eval_size: int = 4, timeout: float = 480) -> dict:
    """Train (daemon), save, score (eval pipeline), load and answer (Oracle): the figures."""
    import torch
    from transformers import AutoModelForCausalLM

    from realm_kernel.api import Realm
    from realm_kernel.evals import evalqueue

    t_build = time.monotonic()
    paths = build_realm(workdir, layers, steps, save_steps, batch, seq)
    figures: dict = {"layers": layers or 28, "steps": steps, "save_steps": save_steps,
                     "batch_size": batch, "max_length": seq,
                     "build_s": round(time.monotonic() - t_build, 2)}
    procs = Procs(paths.logs)
    daemon = start_daemon(procs, paths)
    try:
        exs = [p.as_example() for p in skills.generate("bin", 1, 24 * batch * steps, seed=7)]
        write_quest(paths.inbox / ".hero.jsonl", exs)
        t0 = time.monotonic()
        os.replace(paths.inbox / ".hero.jsonl", paths.inbox / "hero.jsonl")
        wait_for(lambda: (paths.queue("recently_completed") / "hero.jsonl").exists()
                 or (paths.queue("failed") / "hero.jsonl").exists(), timeout,
                 "the quest to finish (see logs/daemon.log)", interval=0.5)
        figures["quest_s"] = round(time.monotonic() - t0, 1)
        figures["daemon_peak_rss_bytes"] = peak_rss(daemon.pid)
    finally:
        procs.stop_all()
    if not (paths.queue("recently_completed") / "hero.jsonl").exists():
        raise RuntimeError(f"the quest failed: see {paths.logs / 'daemon.log'}")

    home = Home(paths.home, "bench")
    led = home.ledger
    rows = led.query("SELECT step, epoch(ts) AS t FROM metrics WHERE loss IS NOT NULL ORDER BY step")
    saves = [json.loads(r["data"]) for r in led.query(
        "SELECT data FROM events WHERE kind = 'checkpoint_saved' ORDER BY ts")]
    # Step seconds: the gaps between logged steps, those after a save (and its eval) left out.
    saved_at = {s["step"] for s in saves}
    gaps = [(b["t"] - a["t"], a["step"]) for a, b in zip(rows, rows[1:], strict=False)]
    plain = [g for g, step in gaps if step not in saved_at] or [g for g, _ in gaps]
    figures["step_s"] = round(statistics.median(plain), 3)
    # The run's last save is weights-only (a finished run resumes into nothing); the ones
    # before it carried resume state when written (their bytes are as written: they have
    # gone weights-only since).
    final = max(saves, key=lambda e: e["step"])
    resumes = [e for e in saves if e is not final]
    figures["resume_save_s"] = round(statistics.median(e["save_seconds"] for e in resumes), 3)
    figures["resume_checkpoint_bytes"] = int(statistics.median(e["bytes"] for e in resumes))
    figures["weights_only_save_s"] = round(final["save_seconds"], 3)
    figures["weights_only_checkpoint_bytes"] = final["bytes"]
    ckpts = sorted((p for p in paths.checkpoints.glob("checkpoint-*") if p.is_dir()),
                   key=lambda p: extract_step(p.name))
    assert ckpts and not any(map(carries_resume_state, ckpts)), \
        [(p.name, carries_resume_state(p)) for p in ckpts]
    figures["checkpoints"] = len(ckpts)
    newest, older = ckpts[-1], ckpts[:-1]

    # A weights-only checkpoint is plain HF: load it, and time a bare save_pretrained.
    t = time.monotonic()
    model = AutoModelForCausalLM.from_pretrained(older[-1], dtype=torch.bfloat16)
    figures["hf_load_s"] = round(time.monotonic() - t, 2)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t = time.monotonic()
        model.save_pretrained(tmp)
        figures["hf_save_pretrained_s"] = round(time.monotonic() - t, 3)
    del model

    # The eval pipeline scores the newest checkpoint, as the Task Master would.
    request = next(r for r in evalqueue.pending(home) if r["checkpoint"] == newest.name)
    t = time.monotonic()
    scored = evalqueue.evaluate(home, request, size=eval_size)
    figures["eval_s"] = round(time.monotonic() - t, 2)
    figures["eval_problems"] = scored.get("n")
    figures["eval_accuracy"] = scored.get("accuracy")
    assert scored["status"] == "done", scored

    # The Oracle loads the weights-only checkpoint and answers.
    realm = Realm(paths.home)
    step = extract_step(older[-1].name)
    t = time.monotonic()
    realm.oracle.load(step)
    figures["oracle_load_s"] = round(time.monotonic() - t, 2)
    t, first, reply = time.monotonic(), None, None
    for ev in realm.oracle.stream(step, "What is 101 + 11 in binary?",
                                  sampling={"max_new_tokens": 8}):
        if ev["type"] == "token" and first is None:
            first = time.monotonic() - t
        if ev["type"] == "done":
            reply = ev
    figures["oracle_first_token_s"] = round(first or 0.0, 3)
    figures["oracle_answer_tokens"] = ((reply or {}).get("usage") or {}).get("completion_tokens")
    realm.oracle.unload(step)
    figures["bench_peak_rss_bytes"] = peak_rss(os.getpid())
    return figures


def project(figures: dict, save_every: int, quest_steps: int = 75) -> dict:
    """The share of wall time saving costs at the assumed 4090 step rate, with the save
    seconds measured here (this disk, this serialisation): a long run saving resume state
    every `save_every` steps, and a curriculum quest of `quest_steps` (1,200 examples at 16
    a step) that ends on its one weights-only save."""
    step_s = ASSUMED["step_s"]
    resume, final = figures["resume_save_s"], figures["weights_only_save_s"]
    return {"assumed_4090_step_s": round(step_s, 3),
            "assumed_4090_tokens_per_s": round(ASSUMED["tokens_per_s"]),
            "projected_save_every_steps": save_every,
            "projected_save_share": round(resume / (save_every * step_s + resume), 4),
            "projected_quest_steps": quest_steps,
            "projected_quest_end_save_share": round(final / (quest_steps * step_s + final), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--save-steps", type=int, default=2, help="the daemon's save cadence here")
    ap.add_argument("--save-every", type=int, default=200,
                    help="the save cadence projected at the 4090's rate (the qwen3-0.6b profile's)")
    ap.add_argument("--quest-steps", type=int, default=75,
                    help="a curriculum quest's length projected at the 4090's rate")
    ap.add_argument("--layers", type=int, default=None, help="cut the config (default: all 28)")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    a = ap.parse_args()
    from common import load_average, report

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        figures = hero_loop(Path(tmp), layers=a.layers, steps=a.steps, save_steps=a.save_steps)
    figures.update(project(figures, a.save_every, a.quest_steps))
    figures["wall_s"] = round(time.monotonic() - t0, 1)
    figures["load_avg"] = load_average()
    gb = 1024 ** 3
    summary = (f"Qwen3-0.6B ({figures['layers']} layers, random init, bf16) through the real loop: "
               f"step {figures['step_s']} s, daemon peak RSS {figures['daemon_peak_rss_bytes'] / gb:.1f} GB, "
               f"resume checkpoint {figures['resume_checkpoint_bytes'] / gb:.2f} GB in "
               f"{figures['resume_save_s']} s, weights-only "
               f"{figures['weights_only_checkpoint_bytes'] / gb:.2f} GB "
               f"({figures['weights_only_save_s']} s to write, a run's final save), "
               f"eval {figures['eval_s']} s "
               f"({figures['eval_problems']} problems), Oracle load {figures['oracle_load_s']} s; "
               f"projected save share at a 4090's ~{figures['assumed_4090_step_s']} s/step: "
               f"resume state every "
               f"{a.save_every} steps {figures['projected_save_share']:.1%}, a {a.quest_steps}-step quest's "
               f"final save {figures['projected_quest_end_save_share']:.1%}; wall {figures['wall_s']} s, "
               f"load {figures['load_avg']}")
    report("real_hero_cpu", figures, summary, a.out)


if __name__ == "__main__":
    main()
