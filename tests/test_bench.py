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
                          "--repeats", "1", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads((out / "train_cpu.json").read_text())
    assert figures["tokens_per_s_ratio"] > 0 and figures["tokens_per_s"] > 0
    assert figures["machine"] and figures["date"]
    assert "train_cpu" in (tmp_path / "RESULTS.md").read_text()
