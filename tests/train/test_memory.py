"""A battle's measured peak memory beside the VRAM calculator's estimate (train/memory.py,
store/batch_fit.py) and `realm vram` showing both. The figures here are given, not
measured: the CUDA path (torch.cuda.max_memory_allocated, NVML) runs on a GPU only."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from realm_kernel.cli import app
from realm_kernel.hero_model.vram import estimate
from realm_kernel.store import batch_fit
from realm_kernel.store.config import TrainingConfig, load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.train.memory import peak_record, record
from realm_kernel.train.presets import PRESETS

QWEN = PRESETS["qwen3-0.6b"]
RTX = "NVIDIA GeForce RTX 4090"


def battle_peak(realm_home, card: str, card_gib: float, max_length: int, micro: int,
                times_estimate: float) -> dict:
    """A peak recorded the way a battle records it (train/memory.py peak_record + record),
    the figures given: `times_estimate` x the calculator's estimate for its settings."""
    cfg = TrainingConfig(max_length=max_length, dtype="bfloat16")
    est = peak_record(QWEN, cfg, micro, False, 1, 1, None)["estimate"]
    peak = peak_record(QWEN, cfg, micro, False, int(est * times_estimate * 0.95),
                       int(est * times_estimate), None, card_gib)
    record(realm_home, Ledger(realm_home, "test"),
           batch_fit.fit_key(card, "Qwen/Qwen3-0.6B", max_length), peak)
    return peak


def test_a_peak_is_recorded_beside_the_estimate_for_the_same_settings():
    cfg = TrainingConfig(max_length=2048, dtype="bfloat16", gradient_checkpointing=True)
    rec = peak_record(PRESETS["qwen3-0.6b"], cfg, micro=4, liger=False, allocated=10 ** 10,
                      reserved=11 * 10 ** 9, nvml=12 * 10 ** 9)
    want = estimate(PRESETS["qwen3-0.6b"], seq_len=2048, batch_size=4, dtype="bfloat16",
                    gradient_checkpointing=True).total
    assert rec["estimate"] == want and rec["error"] == round(want / 1e10 - 1, 4)
    assert (rec["max_memory_allocated"], rec["nvml_used"], rec["micro_batch"]) == (10 ** 10, 12 * 10 ** 9, 4)
    odd = peak_record({"hidden_size": 8}, cfg, 1, False, 1, 1, None)
    assert odd["estimate"] is None and odd["error"] is None  # an architecture it cannot size


def test_realm_vram_shows_the_measured_peak_when_a_battle_recorded_one(realm_home):
    runner = CliRunner()
    plain = runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-0.6b", "--json"])
    assert plain.exit_code == 0 and "measured" not in json.loads(plain.output)
    peak = battle_peak(realm_home, "NVIDIA H100", 79.2, 2048, 4, 1.1)
    text = runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-0.6b"])
    assert text.exit_code == 0, text.output
    gb = peak["max_memory_allocated"] / 1e9
    assert "measured on NVIDIA H100" in text.output and f"peak allocated {gb:.2f} GB" in text.output
    assert (f"the calculator said {peak['estimate'] / 1e9:.2f} GB for max_length 2048, "
            "micro-batch 4") in text.output
    assert Ledger(realm_home, "test").scalar(
        "SELECT count(*) FROM events WHERE kind = 'battle_memory'") == 1
    data = json.loads(runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-0.6b",
                                          "--json"]).output)
    assert data["measured"][0]["card"] == "NVIDIA H100" and data["measured"][0]["max_length"] == 2048
    other = runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-4b", "--json"])
    assert "measured" not in json.loads(other.output)


def test_the_profiles_batch_split_prefers_the_measured_peak(realm_home):
    """A 24 GB card planned for (`vram_gb`): the calculator alone gives batch 2 x 8
    (tests/hero_model/test_profiles.py); a battle that measured twice the estimate on a
    card of that size halves it, and a peak from another card or max_length changes nothing."""
    realm_home.config_file.write_text('[hero]\nprofile = "qwen3-0.6b"\nvram_gb = 24\n')
    before = load_config(realm_home.home, environ={})
    assert (before.training.batch_size, before.training.gradient_accumulation_steps) == (2, 8)
    assert before.resolved_profile.calibration is None
    battle_peak(realm_home, "NVIDIA H100", 79.2, 2048, 8, 2.0)  # another card
    battle_peak(realm_home, RTX, 23.99, 1024, 2, 2.0)  # another max_length
    assert load_config(realm_home.home, environ={}).training.batch_size == 2

    battle_peak(realm_home, RTX, 23.99, 2048, 2, 2.0)
    cfg = load_config(realm_home.home, environ={})
    t, res = cfg.training, cfg.resolved_profile
    assert t.batch_size * t.gradient_accumulation_steps == 16 and t.batch_size == 1
    assert res.calibration["card"] == RTX and res.calibration["scale"] == 2.0
    assert f"measured on {RTX}" in res.fit and "x2" in res.fit
    assert f"measured on {RTX}" in res.sources["training.batch_size"]
    # Measured at half the estimate: the split grows instead.
    battle_peak(realm_home, RTX, 23.99, 2048, 2, 0.5)
    assert load_config(realm_home.home, environ={}).training.batch_size == 4
