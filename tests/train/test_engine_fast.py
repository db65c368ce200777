"""Fast twins of the engine's slow tests: TrainerEngine trains dio-mini (built from its
config) in this process for two to five steps, and each test reads what the run left
behind: the ledger's metric, checkpoint and event rows, the checkpoints and their
sidecars on disk, the status file, the hooks' calls and the result. Seconds each, so
the mutation check (bench/mutation.py, target `train`) reaches the callbacks, the
engine, the retries and the trainer's mixins."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch

from realm_kernel.store import batch_fit
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.status import TRAINING, read_status
from realm_kernel.store.vault import dir_bytes
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.data import build_datasets
from realm_kernel.train.loading import precision
from realm_kernel.train.mixed import mixed_examples
from realm_kernel.train.rescue import card_name
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's engine path")


def job_for(paths, run_id: str, examples: list[dict], **training) -> Job:
    cfg = load_config(paths.home).training.model_copy(update=training)
    return Job(quest_id="q.jsonl", examples=examples, model_path=paths.dio_mini, run_id=run_id,
               training=cfg)


def events(led: Ledger, kind: str) -> list[dict]:
    return [json.loads(r["data"]) if r["data"] else {} for r in led.query(
        "SELECT data FROM events WHERE kind = ? ORDER BY ts", [kind])]


def metric_rows(led: Ledger, run_id: str) -> list[dict]:
    return led.query("SELECT * FROM metrics WHERE run_id = ? ORDER BY ts", [run_id])


def test_a_run_records_metrics_checkpoints_sidecars_events_status_and_hooks(realm_home, monkeypatch):
    """Also: a held-out pass that runs out of memory above one row backs off (4 -> 2 -> 1)
    without touching the training. One thread (the test realm's): the mutation check runs
    tests in processes forked from one that already ran OpenMP, where a second thread hangs."""
    monkeypatch.setenv("REALM_FAULT", "oom:eval@1:1")
    led = Ledger(realm_home, "test")
    progress: list[tuple[int, int]] = []
    saved: list[tuple[int, Path]] = []
    from transformers import TrainerCallback

    class BeforeOptimizer(TrainerCallback):  # the fault hook passes HF's state and control on
        seen: list[tuple[int, bool]] = []
        output_dirs: list[str] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.output_dirs.append(args.output_dir)

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.seen.append((state.global_step, control.should_training_stop))
    examples = mixed_examples(40, seed=2, max_bundle=2)  # short: all kept, 8 held out
    job = job_for(realm_home, "run-a", examples, max_steps=4, save_steps=2, eval_fraction=0.25,
                  max_eval_examples=8, packing=False, batch_size=4)
    job.step_offset, job.skill, job.skill_level = 100, "bin", 1
    job.callbacks = [BeforeOptimizer()]
    job.on_progress = lambda prev, step, flush: progress.append((prev, step))
    job.on_checkpoint = lambda step, path: saved.append((step, path))
    result = TrainerEngine(realm_home, led).run_job(job)
    assert result.success, result.error_message

    # The result: steps continue the hero's XP; the split; what the run computed in.
    assert result.global_step == 104 and not result.stopped
    assert (result.micro_batch, result.gradient_accumulation_steps) == (4, 1)
    assert result.gradient_checkpointing is False and result.world_size == 1
    assert result.attn_implementation == "sdpa_segments" and result.packing_efficiency is None
    assert result.precision == precision(job.training.dtype, cuda=False)
    assert result.tokens_per_second > 0 and result.seconds >= result.train_seconds > 0
    assert min(result.eval_seconds, result.save_seconds, result.publish_seconds) > 0
    assert result.oom_backoffs == 0 and result.rollbacks == 0 and not result.disk_full
    assert BeforeOptimizer.seen == [(0, False), (1, False), (2, False), (3, False)]
    # HF's own saves go to the run's working folder inside the realm (removed after).
    assert BeforeOptimizer.output_dirs == [str(realm_home.checkpoints / ".run-run-a")]
    backoffs = led.query("SELECT message, data FROM events WHERE kind = 'eval_backoff' ORDER BY ts")
    assert [r["message"] for r in backoffs] == [
        "The held-out pass ran out of memory: again at batch 2",
        "The held-out pass ran out of memory: again at batch 1"]
    assert [{k: v for k, v in json.loads(r["data"]).items() if k != "error"} for r in backoffs] == [
        {"from": 4, "to": 2}, {"from": 2, "to": 1}]
    assert "out of memory" in json.loads(backoffs[0]["data"])["error"].lower()

    # One metric row per step with its loss, rate, norm and tokens; held-out rows at each save.
    rows = metric_rows(led, "run-a")
    train = [r for r in rows if r["loss"] is not None]
    assert [(r["step"], r["local_step"]) for r in train] == [(101 + i, 1 + i) for i in range(4)]
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["learning_rate"] is not None
               and r["quest"] == "q.jsonl" for r in train)
    assert [r["epoch"] for r in train] == sorted(r["epoch"] for r in train) and train[-1]["epoch"] > 0
    tok = __import__("transformers").AutoTokenizer.from_pretrained(realm_home.dio_mini)
    train_set, held, dropped = build_datasets(tok, examples, 128, 0.25, 8, job.training.seed)
    seen = [r["tokens_seen"] for r in train]
    assert seen == sorted(seen) and seen[0] > 0 and all(r["tokens_per_s"] > 0 for r in train[1:])
    assert seen[-1] <= sum(len(r["input_ids"]) for r in train_set.rows)
    assert result.final_loss == train[-1]["loss"]
    vals = [r for r in rows if r["val_loss"] is not None]
    assert [r["step"] for r in vals] == [102, 104] and all(v["val_loss"] > 0 for v in vals)
    assert len(held) == 8 and dropped == 0
    # BIN L1 has DEF's fixed held-out set: its loss is logged beside the quest's own.
    defs = [r for r in rows if r["def_loss"] is not None]
    assert [r["step"] for r in defs] == [102, 104] and all(d["def_loss"] > 0 for d in defs)

    # Two checkpoints, published under canonical names with sidecars matching the rows.
    ckpts = led.query("SELECT * FROM checkpoints WHERE run_id = 'run-a' ORDER BY step")
    assert [c["step"] for c in ckpts] == [102, 104]
    by_step = {r["step"]: r for r in train}
    val_at = {r["step"]: r["val_loss"] for r in vals}
    for c in ckpts:
        path = Path(c["path"])
        assert path.parent == realm_home.checkpoints and path.name == c["name"]
        assert c["name"].startswith(f"checkpoint-{c['step']}-")
        side = json.loads((path / ".ledger.json").read_text())
        assert side == {**side, "name": c["name"], "step": c["step"], "skill": "bin", "skill_level": 1,
                        "training_file": "q.jsonl", "run_id": "run-a", "adapter": False,
                        "base_model": str(realm_home.dio_mini)}
        assert side["def_loss"] == next(d["def_loss"] for d in defs if d["step"] == c["step"])
        assert side["loss"] == c["loss"] == by_step[c["step"]]["loss"]
        assert side["learning_rate"] == c["learning_rate"] == by_step[c["step"]]["learning_rate"]
        assert side["val_loss"] == c["val_loss"] == val_at[c["step"]]
        assert side["epoch"] == c["epoch"] and side["date"] == c["date"]
        assert (c["skill"], c["skill_level"], c["training_file"]) == ("bin", 1, "q.jsonl")
        assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
        assert not (path / "optimizer.pt").exists(), "weights-only: older ones stripped, the last finished"
    assert result.last_checkpoint_path == ckpts[-1]["path"]
    assert not list(realm_home.checkpoints.glob(".run-*")), "the run's working folder is removed"

    # Events: each save with its size and time; each checkpoint asks for its eval.
    saves = events(led, "checkpoint_saved")
    assert [(e["step"], e["path"]) for e in saves] == [(c["step"], c["path"]) for c in ckpts]
    assert saves[-1]["bytes"] == dir_bytes(Path(ckpts[-1]["path"])) and saves[0]["bytes"] > 0
    assert all(e["save_seconds"] is not None and e["save_seconds"] >= 0 for e in saves)
    assert events(led, "eval_requested") == [
        {"checkpoint": c["name"], "step": c["step"], "path": c["path"], "skill": "bin", "level": 1}
        for c in ckpts]

    # The status file says the run finished, where, and what it learned last.
    status = read_status(realm_home, TRAINING)
    assert status["state"] == "finished" and status["run_id"] == "run-a" and status["quest"] == "q.jsonl"
    assert (status["step"], status["local_step"], status["total_steps"]) == (104, 4, 4)
    assert status["loss"] == train[-1]["loss"] and status["val_loss"] == vals[-1]["val_loss"]
    assert status["learning_rate"] == train[-1]["learning_rate"] and status["tokens_per_s"] > 0

    # The hooks: progress after each logged row (from the step the run started at), and
    # each published checkpoint.
    logged = [r["step"] for r in rows]
    assert progress == list(zip([100, *logged[:-1]], logged, strict=True))
    assert saved == [(c["step"], Path(c["path"])) for c in ckpts]


@pytest.mark.timeout(300)
def test_a_paused_battle_waits_resumes_and_a_stop_file_ends_it_on_a_resumable_checkpoint(realm_home):
    """Pause before the first step: the battle waits at step 1 (its status says paused);
    the pause lifted and a stop file written, it resumes and stops there, on a checkpoint
    that keeps its resume state."""
    led = Ledger(realm_home, "test")
    pause, stop = realm_home.control_file("pause"), realm_home.control_file("stop")
    pause.parent.mkdir(parents=True, exist_ok=True)
    pause.touch()

    def lift() -> None:  # always lifts the pause, so a broken pause loop fails, never hangs
        try:
            wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "paused", 120, "the pause")
        finally:
            stop.touch()
            pause.unlink()

    lifter = threading.Thread(target=lift, daemon=True)
    lifter.start()
    result = TrainerEngine(realm_home, led).run_job(
        job_for(realm_home, "run-p", mixed_examples(24, seed=3), max_steps=3, save_steps=10,
                eval_fraction=0.0, packing=False, batch_size=4))
    lifter.join(timeout=60)
    assert result.success and result.stopped and result.global_step == 1, result.error_message
    paused, resumed = (led.query("SELECT message FROM events WHERE kind = ?", [k])
                       for k in ("battle_paused", "battle_resumed"))
    assert [r["message"] for r in paused] == ["Battle paused at step 1"]
    assert [r["message"] for r in resumed] == ["Battle resumed at step 1"]
    [ckpt] = led.query("SELECT * FROM checkpoints WHERE run_id = 'run-p'")
    assert ckpt["step"] == 1 and result.last_checkpoint_path == ckpt["path"]
    assert (Path(ckpt["path"]) / "optimizer.pt").exists(), "a stopped run keeps its resume state"
    status = read_status(realm_home, TRAINING)
    assert status["state"] == "stopped" and status["local_step"] == 1 and status["total_steps"] == 3


def test_a_loss_alarm_rolls_back_to_the_last_checkpoint_skips_the_step_and_lowers_the_rate(
        realm_home, monkeypatch):
    """A NaN loss at local step 3: the battle rolls back to its checkpoint at step 2,
    skips step 3 and goes on at alarm_lr_factor x the learning rate, schedule kept."""
    monkeypatch.setenv("REALM_FAULT", "nan@3")
    led = Ledger(realm_home, "test")
    job = job_for(realm_home, "run-n", mixed_examples(40, seed=4), max_steps=4, save_steps=2,
                  eval_fraction=0.0, packing=False, batch_size=4, alarm_lr_factor=0.5)
    job.step_offset = 10
    result = TrainerEngine(realm_home, led).run_job(job)
    assert result.success and result.rollbacks == 1 and result.global_step == 14, result.error_message
    [first] = led.query("SELECT path FROM checkpoints WHERE run_id = 'run-n' AND step = 12 "
                        "ORDER BY ts LIMIT 1")
    [alarm] = events(led, "loss_alarm")
    assert alarm["step"] == 13 and "nan" in alarm["reason"]
    [rollback] = events(led, "rollback")
    assert rollback == {"to": first["path"], "skip_steps": [13], "lr_scale": 0.5, "rollbacks": 1}
    rows = metric_rows(led, "run-n")
    lr = {}
    for r in rows:  # the replay's rows come last
        if r["loss"] is not None:
            lr[r["step"]] = r
    # Step 3 skipped: no forward, a zero loss; step 4 at half the schedule's rate for step 4.
    assert lr[13]["loss"] == 0.0
    from transformers import get_cosine_schedule_with_warmup
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=job.training.learning_rate)
    sched = get_cosine_schedule_with_warmup(opt, math.ceil(0.05 * 4), 4)
    rates = []
    for _ in range(4):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lr[14]["learning_rate"] == pytest.approx(0.5 * rates[3], rel=1e-6)
    assert lr[12]["learning_rate"] == pytest.approx(rates[1], rel=1e-6)


def test_out_of_memory_backs_off_to_a_smaller_micro_batch_and_the_split_is_remembered(
        realm_home, monkeypatch):
    """A card that fits one row: micro-batch 4 -> 2 -> 1 with 4x accumulation, each back-off
    an event, and the split that worked remembered for the next battle on this card."""
    monkeypatch.setenv("REALM_FAULT", "oom:forward@1:1")
    led = Ledger(realm_home, "test")
    job = job_for(realm_home, "run-o", mixed_examples(24, seed=5), max_steps=1, save_steps=10,
                  eval_fraction=0.0, packing=False, batch_size=4)
    result = TrainerEngine(realm_home, led).run_job(job)
    assert result.success and result.oom_backoffs == 2, result.error_message
    assert (result.micro_batch, result.gradient_accumulation_steps) == (1, 4)
    assert result.gradient_checkpointing is False
    sizes = events(led, "oom_backoff")
    assert [(e["from"]["micro_batch"], e["to"]["micro_batch"], e["to"]["gradient_accumulation_steps"])
            for e in sizes] == [(4, 2, 2), (2, 1, 4)]
    assert all(e["resume_from"] is None and "out of memory" in e["error"].lower() for e in sizes)
    key = batch_fit.fit_key(card_name(False), str(realm_home.dio_mini), 128)
    fit = batch_fit.remembered(realm_home, key)
    assert (fit["micro_batch"], fit["gradient_accumulation_steps"], fit["gradient_checkpointing"]) == \
        (1, 4, False)
    from realm_kernel.train.retries import Retries
    again = Retries(realm_home, led, job).remembered(job)
    assert (again.max_micro, again.checkpointing) == (1, False)


def test_realm_train_runs_in_a_home_of_its_own_and_says_what_it_does(realm_home, tmp_path, monkeypatch):
    from realm_kernel.quests.formats import write_quest
    from realm_kernel.store.paths import RealmPaths
    from realm_kernel.train.standalone import train_quest
    monkeypatch.setenv("REALM_RUN_ID", "train-fixed")
    monkeypatch.delenv("RANK", raising=False)
    examples = [{**e, "meta": {"skill": "bin", "level": 1}} for e in mixed_examples(24, seed=6)]
    quest = write_quest(tmp_path / "bin.jsonl", examples)
    said: list[str] = []
    result = train_quest(quest, max_steps=2, packing=False, vram_gb=64.0, say=said.append)
    assert result.success and result.global_step == 2, result.error_message
    run = realm_home.home / "standalone" / "train-fixed"
    led = Ledger(RealmPaths.at(run))
    [ckpt] = led.query("SELECT * FROM checkpoints")
    assert (ckpt["step"], ckpt["skill"], ckpt["skill_level"], ckpt["training_file"], ckpt["run_id"]) == \
        (2, "bin", 1, "bin.jsonl", "train-fixed")
    assert Path(ckpt["path"]).parent == run / "checkpoints"
    assert Ledger(realm_home).scalar("SELECT count(*) FROM metrics") == 0, "DIO's realm untouched"
    assert {r["source"] for r in led.query("SELECT source FROM events")} == {"train"}
    assert said[0].startswith("VRAM estimate: ") and said[0].endswith(" of the card's 64.0 GiB")
    assert said[1] == f"Reading quest {quest}..."
    assert said[2] == (f"24 examples; training {realm_home.dio_mini} (full, adamw, 2) as run "
                       f"train-fixed, in a realm of its own: {run} (checkpoints in {run / 'checkpoints'}; "
                       "DIO's realm is not touched)")


# A 4B-parameter model's shape (Qwen3-4B's config.json, the part the estimate reads).
CONFIG_4B = {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
             "vocab_size": 151936, "num_attention_heads": 32, "num_key_value_heads": 8,
             "head_dim": 128, "tie_word_embeddings": True}


def test_realm_train_refuses_before_anything_starts(realm_home, tmp_path):
    from realm_kernel.quests.formats import write_quest
    from realm_kernel.train.standalone import TrainRefused, train_quest, vram_check
    quest = write_quest(tmp_path / "q.jsonl", mixed_examples(4, seed=7))
    with pytest.raises(TrainRefused, match="unknown training preset 'nope'; known: qwen3-4b-24gb"):
        train_quest(quest, preset="nope")
    with pytest.raises(TrainRefused, match=r"exceeds the card's 0\.0 GiB: lower max_length"):
        train_quest(quest, vram_gb=0.001)
    with pytest.raises(TrainRefused, match="is DIO's own realm home"):
        train_quest(quest, output_dir=realm_home.home)
    big = tmp_path / "big"  # --model: the estimate is the named model's, not the realm's base
    big.mkdir()
    (big / "config.json").write_text(json.dumps(CONFIG_4B))
    with pytest.raises(TrainRefused, match=r"exceeds the card's 1\.0 GiB"):
        train_quest(quest, model=big, vram_gb=1.0)
    standalone = realm_home.home / "standalone"
    assert not standalone.exists() or not any(standalone.iterdir()), "refused before a run folder"
    training = load_config(realm_home.home).training
    forced = vram_check(realm_home.dio_mini, training, 0.001, force=True)
    assert forced.endswith(" of the card's 0.0 GiB (--force)")
    line = vram_check(realm_home.dio_mini, training, None, force=False)
    assert line.endswith("; no CUDA card to check it against")
    assert forced.startswith(line.removesuffix("; no CUDA card to check it against"))


def test_a_save_the_disk_budget_cannot_hold_is_skipped_and_said(realm_home):
    from realm_kernel.store.config import RetentionConfig
    from realm_kernel.train.keeper import GIB
    led = Ledger(realm_home, "test")
    job = job_for(realm_home, "run-b", mixed_examples(24, seed=8, max_bundle=2), max_steps=2,
                  save_steps=1, eval_fraction=0.0, packing=False, batch_size=4)
    job.retention = RetentionConfig(max_disk_gb=1e-6)
    result = TrainerEngine(realm_home, led).run_job(job)
    assert result.success and result.last_checkpoint_path is None, result.error_message
    assert led.scalar("SELECT count(*) FROM checkpoints") == 0
    assert not [p for p in realm_home.checkpoints.glob("checkpoint-*")]
    from transformers import AutoModelForCausalLM
    weights = sum(p.numel() * p.element_size() for p in AutoModelForCausalLM.from_pretrained(
        realm_home.dio_mini).parameters())
    said = led.query("SELECT message, data FROM events WHERE kind = 'disk_budget' ORDER BY ts")
    assert [json.loads(r["data"])["step"] for r in said] == [1, 2]
    assert said[0]["message"].startswith(
        f"Checkpoint at step 1 skipped: it needs ~{3 * weights / GIB:.2f} GiB and the checkpoints use "
        "0.00 GiB of the 1e-06 GiB budget ([retention] max_disk_gb) after retention")


def test_the_next_save_is_estimated_from_the_newest_checkpoint_with_resume_state(tmp_path):
    import os

    from realm_kernel.train.keeper import estimate_save_bytes
    old, new, bare = (tmp_path / f"checkpoint-{i}" for i in (1, 2, 3))
    for d, size in ((old, 100), (new, 300), (bare, 5000)):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"w" * size)
    (old / "optimizer.pt").write_bytes(b"o" * 10)
    (new / "optimizer.pt").write_bytes(b"o" * 20)
    os.utime(old, (1, 1))
    assert estimate_save_bytes(tmp_path, None) == 320, "the newest with resume state, not the bare one"
    assert estimate_save_bytes(tmp_path / "none", None) == 0
    model = torch.nn.Linear(4, 2)  # 10 float32 parameters, AdamW's two moments beside them
    assert estimate_save_bytes(tmp_path / "none", model) == 3 * 10 * 4


def test_the_vram_line_is_the_estimate_for_the_settings_the_run_uses(tmp_path):
    """`realm train`'s estimate (standalone.vram_check) for a 4B-sized config: the
    optimizer and Liger setting reach it, and a card exactly as large as the need is
    enough (no --force said)."""
    from realm_kernel.hero_model.vram import estimate_from_path
    from realm_kernel.store.config import TrainingConfig
    from realm_kernel.train.keeper import GIB
    from realm_kernel.train.standalone import vram_check
    (tmp_path / "config.json").write_text(json.dumps(CONFIG_4B))
    for optimizer, liger in (("muon", "off"), ("adamw", "off"), ("adamw", "on")):
        training = TrainingConfig(optimizer=optimizer, liger=liger, dtype="bfloat16", max_length=4096,
                                  batch_size=4, pack_length=0)
        est = estimate_from_path(str(tmp_path), seq_len=4096, batch_size=4, dtype="bfloat16",
                                 optimizer=optimizer, gradient_checkpointing=False,
                                 liger=liger != "off", method="full", lora_rank=training.lora_rank)
        need = est.total / GIB
        line = vram_check(tmp_path, training, need, force=False)  # exactly the card's size: fits
        assert line == (f"VRAM estimate: {need:.1f} GiB (weights {est.weights / GIB:.1f}, gradients "
                        f"{est.gradients / GIB:.1f}, optimizer {est.optimizer / GIB:.1f} on the card + "
                        f"{est.optimizer_host / GIB:.1f} on the host, activations "
                        f"{est.activations / GIB:.1f}, logits {est.logits / GIB:.1f}) of the card's "
                        f"{need:.1f} GiB")


def test_packed_runs_pack_the_held_out_sets_too(realm_home):
    """With packing on, the quest's held-out split and DEF's fixed set are packed rows
    like the training set (the collator takes rows only), every held-out example kept."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.packing import PackedDataset
    examples = mixed_examples(40, seed=2, max_bundle=2)
    job = job_for(realm_home, "run-p", examples, eval_fraction=0.25, max_eval_examples=8, packing=True)
    job.skill, job.skill_level = "bin", 1  # BIN L1 has DEF's fixed held-out set
    engine = TrainerEngine(realm_home, Ledger(realm_home, "test"))
    job = engine._without_fixed_set(job)
    tok = AutoTokenizer.from_pretrained(realm_home.dio_mini)
    model = AutoModelForCausalLM.from_pretrained(realm_home.dio_mini)
    train, evals, _, _, efficiency = engine._data(job, tok, model, "sdpa_segments")
    assert isinstance(train, PackedDataset) and 0 < efficiency <= 1
    assert sorted(evals) == ["def", "quest"]
    _, held, _ = build_datasets(tok, job.examples, 128, 0.25, 8, job.training.seed)
    for name, want in (("quest", held.rows), ("def", None)):
        packed = evals[name]
        assert isinstance(packed, PackedDataset) and len(packed) > 0
        got = [e["input_ids"] for row in packed.rows for e in row]
        if want is not None:
            assert sorted(got) == sorted(r["input_ids"] for r in want)
