"""A person sees what the CLI is doing: `realm train` names its quest, model and run and
draws a bar of steps; the dio-mini build and quest generation say what they do and how
long it took; and the browser tests never skip in silence."""

import json
import os
import subprocess
import sys

import pytest

from ..helpers import REPO, child_env

REALM = [sys.executable, "-m", "realm_kernel.cli"]


@pytest.mark.slow
def test_cli_shows_progress(realm_home, tmp_path):
    env = child_env(realm_home.home)
    gen = subprocess.run([*REALM, "quest", "generate", "bin", "--count", "48", "--seed", "1"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    assert "Generating 48 BIN level 1 problems..." in gen.stderr and "done in" in gen.stderr
    quest = gen.stdout.strip()
    assert quest.endswith(".jsonl")

    run = subprocess.run([*REALM, "train", quest, "--max-steps", "6"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"Reading quest {quest}" in run.stderr and "48 examples; training" in run.stderr
    assert "training: 100%" in run.stderr and "6/6" in run.stderr and "loss=" in run.stderr
    assert json.loads(run.stdout)["success"] is True  # stdout stays the result alone

    build = subprocess.run([*REALM, "build-dio-mini", "--force"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "Building dio-mini into" in build.stderr and "done in" in build.stderr


def test_browser_tests_never_skip_in_silence(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("from tests.helpers import require_chromium\n\n"
                     "def test_needs_a_browser():\n    require_chromium()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "REALM_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("BROWSER_TESTS", None)

    def pytest_run(**extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q",
                               str(probe)], env={**env, **extra}, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    failed = pytest_run()
    assert failed.returncode == 1 and "sudo apt-get install chromium" in failed.stdout
    assert "BROWSER_TESTS=skip" in failed.stdout
    skipped = pytest_run(BROWSER_TESTS="skip")
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert "BROWSER_TESTS=skip" in skipped.stdout
    make = subprocess.run(["make", "-s", "chromium-check", "BROWSER_TESTS=skip"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert make.returncode == 0 and "the browser tests will be skipped" in make.stdout
