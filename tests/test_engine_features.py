"""TrainerEngine features on dio-mini for real: exact resume, Muon, packing on/off."""

import random

import pytest

import skills
from realm_kernel.config import load_config
from realm_kernel.engine import Job, TrainerEngine
from realm_kernel.ledger import Ledger

pytestmark = pytest.mark.slow


def mixed_bin_examples(n: int, seed: int = 0) -> list[dict]:
    """BIN problems bundled 1-8 per example: mixed lengths, as real quests have."""
    rng = random.Random(seed)
    problems = skills.generate("bin", 1, n * 8, seed=seed)
    out, i = [], 0
    while len(out) < n:
        k = rng.randint(1, 8)
        chunk = problems[i:i + k]
        i += k
        out.append({"messages": [
            {"role": "user", "content": "\n".join(p.question for p in chunk)},
            {"role": "assistant", "content": "\n".join(p.answer for p in chunk)}]})
    return out


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
    ten = led.query("SELECT path FROM checkpoints WHERE run_id = 'straight' AND step = 10")[0]["path"]
    job = job_for(realm_home, "resumed", examples, **settings)
    job.resume_from = ten
    resumed = engine.run_job(job)
    assert resumed.success, resumed.error_message
    a, b = losses(led, "straight"), losses(led, "resumed")
    assert sorted(b) == list(range(11, 21)), "the resumed run continues at step 11"
    for step in range(11, 21):
        assert b[step] == pytest.approx(a[step], abs=1e-5), f"step {step}"


def test_muon_trains_and_packing_counts_real_tokens(realm_home):
    led = Ledger(realm_home, "test")
    engine = TrainerEngine(realm_home, led)
    examples = mixed_bin_examples(200, seed=1)
    res = engine.run_job(job_for(realm_home, "muon", examples, optimizer="muon", epochs=1.0,
                                 eval_fraction=0.0, batch_size=8))
    assert res.success, res.error_message
    curve = losses(led, "muon")
    first, last = curve[min(curve)], curve[max(curve)]
    assert last < first / 2, f"Muon learns: {first:.3f} -> {last:.3f}"
    assert res.packing_efficiency > 0.8 and res.attn_implementation == "sdpa"
    # Tokens seen are the real tokens of one epoch, not the sum of a 4-D mask.
    from transformers import AutoTokenizer

    from realm_kernel.engine.data import build_datasets
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
    # flash_attention_2 is not installed here: a clear error, not a crash
    res = engine.run_job(job_for(realm_home, "fa2", examples, attn_implementation="flash_attention_2",
                                 max_steps=3))
    assert not res.success and "flash" in res.error_message.lower()
