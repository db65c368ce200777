"""TrainerEngine features on dio-mini for real: exact resume, Muon, packing on/off."""

from pathlib import Path

import pytest
import torch

from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.mixed import mixed_examples as mixed_bin_examples
from realm_kernel.train.trainer import installed
from tests.helpers import stop_at

pytestmark = pytest.mark.slow
CUDA = torch.cuda.is_available()
# Float32 on a CPU repeats a loss to 1e-5; bf16 kernels on a GPU do not reduce in the
# same order twice, so equality there means equal to bf16's precision.
LOSS_TOL = 2e-2 if CUDA else 1e-5
# What attention "auto" picks on this machine (the engine's own rule, stated here).
AUTO_ATTN = ("flash_attention_2" if installed("flash_attn") else "sdpa") if CUDA else "sdpa_segments"


def job_for(paths, run_id, examples, **training):
    cfg = load_config(paths.home).training.model_copy(update=training)
    return Job(quest_id="q.jsonl", examples=examples, model_path=paths.dio_mini, run_id=run_id,
               training=cfg)


def losses(led, run_id):
    return {r["step"]: r["loss"] for r in led.query(
        "SELECT step, loss FROM metrics WHERE run_id = ? AND loss IS NOT NULL", [run_id])}


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(realm_home):
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(400)
    settings = dict(max_steps=20, save_steps=10, eval_fraction=0.0, batch_size=8)
    straight = engine.run_job(job_for(realm_home, "straight", examples, **settings))
    assert straight.success, straight.error_message
    # Only the newest checkpoint keeps its resume state (train/keeper.py): the same run,
    # interrupted after its save at step 10, leaves the checkpoint a crash would resume from.
    cut = job_for(realm_home, "resumed", examples, **settings)
    cut.callbacks = [stop_at(10)]
    assert engine.run_job(cut).stopped is False  # stopped by the callback, not by a control file
    ten = led.query("SELECT path FROM checkpoints WHERE run_id = 'resumed' AND step = 10")[0]["path"]
    assert (Path(ten) / "optimizer.pt").exists()
    job = job_for(realm_home, "resumed", examples, **settings)
    job.resume_from = ten
    resumed = engine.run_job(job)
    assert resumed.success, resumed.error_message
    a, b = losses(led, "straight"), losses(led, "resumed")
    assert sorted(b) == list(range(1, 21)), "the resumed run continues at step 11"
    for step in range(11, 21):
        assert b[step] == pytest.approx(a[step], abs=LOSS_TOL), f"step {step}"


def test_muon_trains_and_packing_counts_real_tokens(realm_home):
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(200, seed=1)
    # 3e-3: a few steps must halve the loss (the default rate is tuned for long idle runs).
    res = engine.run_job(job_for(realm_home, "muon", examples, optimizer="muon", epochs=1.0,
                                 eval_fraction=0.0, batch_size=8, learning_rate=3e-3))
    assert res.success, res.error_message
    curve = losses(led, "muon")
    first, last = curve[min(curve)], curve[max(curve)]
    assert last < first / 2, f"Muon learns: {first:.3f} -> {last:.3f}"
    assert res.packing_efficiency > 0.8 and res.attn_implementation == AUTO_ATTN
    # Tokens seen are the real tokens of one epoch, not the sum of a 4-D mask.
    from transformers import AutoTokenizer

    from realm_kernel.train.data import build_datasets
    tok = AutoTokenizer.from_pretrained(realm_home.dio_mini)
    train, _, _ = build_datasets(tok, examples, 128, 0.0, 0, 42)
    real = sum(len(r["input_ids"]) for r in train.rows)
    assert led.scalar("SELECT max(tokens_seen) FROM metrics WHERE run_id = 'muon'") == real


def test_unpacked_path_and_a_failing_self_check(realm_home):
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(60, seed=2)
    res = engine.run_job(job_for(realm_home, "pad", examples, packing=False, max_steps=3))
    assert res.success and res.packing_efficiency is None
    # eager attention + packing works (float mask); the self-check passes on it
    res = engine.run_job(job_for(realm_home, "eager", examples, attn_implementation="eager",
                                 max_steps=3))
    assert res.success, res.error_message
    # flash_attention_2 without flash-attn or CUDA: a clear error, not a crash; with
    # both, it trains (packed rows go through its varlen path).
    res = engine.run_job(job_for(realm_home, "fa2", examples, attn_implementation="flash_attention_2",
                                 max_steps=3))
    if CUDA and installed("flash_attn"):
        assert res.success and res.attn_implementation == "flash_attention_2", res.error_message
    else:
        assert not res.success and "flash" in res.error_message.lower()


def test_two_process_gloo_training_writes_the_realm_once(realm_home, tmp_path):
    """`realm train --nproc 2`: torchrun, DDP over gloo on CPU; rank 0 alone writes."""
    import json
    import subprocess
    import sys

    from realm_kernel.quests.formats import write_quest

    from ..helpers import child_env

    quest = write_quest(tmp_path / "q.jsonl", mixed_bin_examples(64, seed=3))
    run = subprocess.run([sys.executable, "-m", "realm_kernel.cli", "train", str(quest), "--max-steps", "4",
                          "--nproc", "2"], env=child_env(realm_home.home), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout[run.stdout.index("{\n"):])
    assert result["success"] and result["world_size"] == 2 and result["global_step"] == 4
    # Every rank in one run folder of its own (not DIO's realm), written once.
    [run] = list((realm_home.home / "standalone").iterdir())
    led = Ledger(RealmPaths.at(run))
    assert led.scalar("SELECT count(*) FROM checkpoints") == 1
    assert led.scalar("SELECT count(DISTINCT step) FROM metrics WHERE loss IS NOT NULL") == 4
    assert led.scalar("SELECT count(*) FROM metrics WHERE loss IS NOT NULL") == 4, "one writer"
    assert Ledger(realm_home).scalar("SELECT count(*) FROM metrics") == 0


def test_gradient_checkpointing_gives_the_same_first_losses(realm_home):
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(40, seed=4)
    for run_id, ckpt in (("plain", False), ("ckpt", True)):
        res = engine.run_job(job_for(realm_home, run_id, examples, max_steps=3, eval_fraction=0.0,
                                     gradient_checkpointing=ckpt))
        assert res.success, res.error_message
    a, b = losses(led, "plain"), losses(led, "ckpt")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in a:
        assert b[step] == pytest.approx(a[step], abs=LOSS_TOL)


def test_threads_0_borrows_the_cores_the_task_master_leaves_idle(realm_home):
    from realm_kernel.store.status import write_status
    from realm_kernel.train.threads import TASKMASTER_STATUS, all_cores, cpu_share
    if CUDA or all_cores() <= cpu_share():
        pytest.skip("lending is for CPU training on a machine with more than one core")
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(60, seed=3)
    seen: list[int] = []

    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.append(torch.get_num_threads())
            # The Task Master starts a task after step 3: the next steps give the cores back.
            if state.global_step == 3:
                write_status(realm_home, TASKMASTER_STATUS, state="running", task="process_eval_queue")

    write_status(realm_home, TASKMASTER_STATUS, state="idle")
    job = job_for(realm_home, "lend", examples, threads=0, max_steps=6, eval_fraction=0.0)
    job.callbacks = [Watch()]
    res = engine.run_job(job)
    assert res.success, res.error_message
    assert seen == [all_cores()] * 3 + [cpu_share()] * 3
    assert res.all_cores_share == pytest.approx(0.5)
    assert torch.get_num_threads() == cpu_share(), "the share is given back at the end"
    # Pinned threads (realm.toml's threads = N) are never changed.
    write_status(realm_home, TASKMASTER_STATUS, state="idle")
    res = engine.run_job(job_for(realm_home, "pinned", examples, threads=1, max_steps=2,
                                 eval_fraction=0.0))
    assert res.success and res.all_cores_share is None


def test_auto_dtype_on_a_cpu_with_native_bf16_trains_its_matmuls_in_bf16(realm_home, tmp_path):
    """dtype "auto" on a CPU: fp32 weights and optimizer; matmuls in bf16 under autocast
    only where the CPU multiplies bf16 in hardware (elsewhere bf16 is emulated, slower)."""
    from transformers import TrainerCallback

    from realm_kernel.train.loading import cpu_bf16_native, precision
    if CUDA:
        pytest.skip("the CPU's rule")
    for name, flags, native in (("zen4", "fpu avx512f avx512_bf16 avx512_vnni", True),
                                ("spr", "fpu avx512f amx_bf16 amx_tile", True),
                                ("skx", "fpu avx2 avx512f avx512_vnni", False)):  # AVX-512, no BF16
        (tmp_path / name).write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert cpu_bf16_native(str(tmp_path / name)) is native, name
    assert not cpu_bf16_native(str(tmp_path / "absent"))
    native = cpu_bf16_native()
    assert precision("auto", cuda=False) == ("float32 + bf16 autocast" if native else "float32")
    assert precision("float32", cuda=False) == "float32"

    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(40, seed=5)
    for dtype, mm in (("auto", torch.bfloat16 if native else torch.float32),
                      ("float32", torch.float32)):
        seen: set = set()

        class Watch(TrainerCallback):
            def __init__(self, into: set):
                self.into = into

            def on_train_begin(self, args, state, control, model=None, **kwargs):
                into = self.into
                model.get_output_embeddings().register_forward_hook(
                    lambda m, i, out: into.add((out.dtype, m.weight.dtype)) if m.training else None)

        job = job_for(realm_home, f"dtype-{dtype}", examples, dtype=dtype, max_steps=2,
                      eval_fraction=0.0)
        job.callbacks = [Watch(seen)]
        res = engine.run_job(job)
        assert res.success, res.error_message
        assert res.precision == precision(dtype, cuda=False)
        assert seen == {(mm, torch.float32)}, f"{dtype}: (matmul, weight) dtypes {seen}"
        assert losses(led, f"dtype-{dtype}")[2] > 0
