"""Every bench figure carries the machine, the date and the commit it measured."""

import json
import subprocess

from bench.common import record
from realm_kernel.store.paths import REPO_ROOT


def test_a_recorded_figure_names_machine_date_and_commit(tmp_path):
    out = tmp_path / "results"
    path = record("demo", {"ratio": 1.5}, "ratio 1.5", out)
    figures = json.loads(path.read_text())
    head = subprocess.run(["git", "rev-parse", "--short=9", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert figures["ratio"] == 1.5 and figures["machine"] and figures["date"].endswith("UTC")
    assert figures["commit"].removesuffix("+dirty") == head
    line = (tmp_path / "RESULTS.md").read_text()
    assert line == f"- {figures['date']} `demo` on {figures['machine']}: ratio 1.5\n"
    # A figure that says which commit it measured keeps it (mutation runs name theirs).
    assert json.loads(record("kept", {"commit": "abc"}, "x", out).read_text())["commit"] == "abc"
