"""No test waits by sleeping: a wait is `wait_for(condition, timeout, what)`, and
"nothing happened" is proved by a counter or an event that would have fired
(docs/testing.md). A sleep is allowed only where time itself is under test or sets a
pace (a slow writer, a delay fault, a reader's polling), and then its line says so with
`# sleep-ok: why`. This fails on any other sleep in tests/, naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SLEEP = re.compile(r"\b(?:time|asyncio)\.sleep\(|\bfrom (?:time|asyncio) import [^\n]*\bsleep\b")


def unmarked_sleeps(root: Path = TESTS) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SLEEP.search(text) and "# sleep-ok:" not in text:
                out.append(f"{path.relative_to(root.parent)}:{n}: {text.strip()}")
    return out


def test_no_sleep_in_tests_without_a_reason():
    assert unmarked_sleeps() == [], "use wait_for(...) or mark the line '# sleep-ok: why'"


def test_the_check_finds_a_sleep(tmp_path):
    lines = ["import time", "time." + "sleep(2)  # it retries meanwhile", "await asyncio." + "sleep(1)",
             "from time import " + "sleep", "time.sleep(1)  # sleep-ok: a slow writer"]
    (tmp_path / "test_x.py").write_text("\n".join(lines) + "\n")
    found = unmarked_sleeps(tmp_path)
    assert [f.split(":")[1] for f in found] == ["2", "3", "4"], found
