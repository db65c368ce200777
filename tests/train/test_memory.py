"""A battle's measured peak memory beside the VRAM calculator's estimate (train/memory.py,
store/batch_fit.py) and `realm vram` showing both. The figures here are given, not
measured: the CUDA path (torch.cuda.max_memory_allocated, NVML) runs on a GPU only."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from realm_kernel.cli import app
from realm_kernel.hero_model.vram import estimate
from realm_kernel.store import batch_fit
from realm_kernel.store.config import TrainingConfig
from realm_kernel.train.memory import peak_record
from realm_kernel.train.presets import PRESETS


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
    batch_fit.record_peak(realm_home, batch_fit.fit_key("NVIDIA H100", "Qwen/Qwen3-0.6B", 2048),
                          max_memory_allocated=9_870_000_000, max_memory_reserved=10 ** 10,
                          nvml_used=None, estimate=9_000_000_000, micro_batch=4,
                          gradient_checkpointing=False, error=-0.0881)
    text = runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-0.6b"])
    assert text.exit_code == 0, text.output
    assert "measured on NVIDIA H100" in text.output and "peak allocated 9.87 GB" in text.output
    assert "the calculator said 9.00 GB for max_length 2048, micro-batch 4" in text.output
    data = json.loads(runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-0.6b",
                                          "--json"]).output)
    assert data["measured"][0]["card"] == "NVIDIA H100" and data["measured"][0]["max_length"] == 2048
    other = runner.invoke(app, ["--home", str(realm_home.home), "vram", "qwen3-4b", "--json"])
    assert "measured" not in json.loads(other.output)
