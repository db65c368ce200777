"""The benchmark scripts run and write their figures (no assertion on wall time)."""

import json
import subprocess
import sys

import pytest

from realm_kernel.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def test_train_cpu_bench_writes_its_figures(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "train_cpu.py"), "--steps", "3",
                          "--repeats", "1", "--models", "dio-mini", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads((out / "train_cpu.json").read_text())
    assert figures["tokens_per_s_ratio"] > 0 and figures["dio_mini_tokens_per_s"] > 0
    assert 0 < figures["dio_mini_packing_efficiency"] <= 1
    assert figures["machine"] and figures["date"]
    assert "train_cpu" in (tmp_path / "RESULTS.md").read_text()


def test_gpu_train_script_runs_tiny_on_cpu(tmp_path):
    """The device script is ready: its --tiny mode runs both parts here."""
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "gpu_train.py"), "--tiny",
                          "--steps", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads((out / "gpu_train_tiny.json").read_text())
    assert figures["tokens_per_s"] > 0 and figures["baseline_tokens_per_s"] > 0
    assert 0 < figures["packing_efficiency"] <= 1 and figures["vram_estimate_bytes"] > 0
