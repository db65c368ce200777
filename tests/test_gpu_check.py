"""bench/gpu_check.sh cannot pass on skipped gpu tests or missing extras: its verdicts
(bench/gpu_results.py) on a real pytest junit report of tests/train/test_gpu.py run here,
where no CUDA device exists and every gpu test skips."""

from __future__ import annotations

import subprocess
import sys

from realm_kernel.store.paths import REPO_ROOT

GPU_RESULTS = str(REPO_ROOT / "bench" / "gpu_results.py")


def verdict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, GPU_RESULTS, *args], capture_output=True, text=True, timeout=60)


def test_skipped_gpu_tests_fail_the_check(tmp_path):
    report = tmp_path / "gpu.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                          f"--junitxml={report}", "tests/train/test_gpu.py"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "skipped" in run.stdout, run.stdout[-1000:]  # pytest alone passes
    out = verdict("junit", str(report))
    assert out.returncode == 1, out.stdout + out.stderr
    flash = "test_flash_attention_varlen_packing_equals_each_example_alone"
    assert f"skipped: tests.train.test_gpu::{flash}" in out.stderr
    assert "0 gpu test(s) passed" in out.stdout


def test_a_clean_report_passes_and_an_empty_or_failing_one_does_not(tmp_path):
    def report(cases: str):
        path = tmp_path / "r.xml"
        path.write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
        return verdict("junit", str(path))

    ok = report('<testcase classname="t" name="a"/><testcase classname="t" name="b"/>')
    assert ok.returncode == 0 and "2 gpu test(s) passed, 0 problem(s)" in ok.stdout
    failed = report('<testcase classname="t" name="a"><failure message="boom"/></testcase>')
    assert failed.returncode == 1 and "failure: t::a: boom" in failed.stderr
    empty = report("")
    assert empty.returncode == 1 and "no gpu test ran" in empty.stderr


def test_a_missing_extra_fails_the_check():
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        from gpu_results import missing_extras
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
    assert missing_extras(("json", "no_such_extra_module")) == ["no_such_extra_module"]
    # This machine lacks flash-attn (it builds against CUDA): the check names it and fails.
    out = verdict("extras")
    assert out.returncode == 1 and "flash_attn" in out.stderr
