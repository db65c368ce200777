"""The benchmark scripts run and write their figures (no assertion on wall time)."""

import json
import subprocess
import sys

import pytest

from realm_kernel.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def run_bench(tmp_path, script: str, name: str, *args: str) -> dict:
    """Run bench/SCRIPT with its results in tmp_path; the figures it recorded as NAME."""
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *args,
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / f"{name}.json").read_text())


def test_train_cpu_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "train_cpu.py", "train_cpu", "--steps", "3", "--repeats", "1",
                        "--models", "dio-mini")
    assert figures["tokens_per_s_ratio"] > 0 and figures["dio_mini_tokens_per_s"] > 0
    assert 0 < figures["dio_mini_packing_efficiency"] <= 1
    assert figures["machine"] and figures["date"]
    assert "train_cpu" in (tmp_path / "RESULTS.md").read_text()


def test_gpu_train_script_runs_tiny_on_cpu(tmp_path):
    """The device script is ready: its --tiny mode runs both parts here."""
    figures = run_bench(tmp_path, "gpu_train.py", "gpu_train_tiny", "--tiny", "--steps", "2")
    assert figures["tokens_per_s"] > 0 and figures["baseline_tokens_per_s"] > 0
    assert 0 < figures["packing_efficiency"] <= 1 and figures["vram_estimate_bytes"] > 0


def test_skills_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "skills_bench.py", "skills", "--n", "30", "--repeats", "1")
    for key in ("bin_L1_per_s", "bin_L30_per_s", "sy_L50_per_s", "rg_word_ladder_per_s",
                "rg_bitwise_arithmetic_per_s", "sy_L25_vs_letter_jumble_ratio"):
        assert figures[key] > 0
    assert figures["baseline"].startswith("reasoning-gym ")
    assert "`skills`" in (tmp_path / "RESULTS.md").read_text()
