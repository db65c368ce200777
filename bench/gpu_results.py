"""bench/gpu_check.sh's verdicts: `extras` fails unless every GPU extra imports;
`junit FILE` fails unless the gpu tests in pytest's junit report all ran and passed
(a skipped gpu test is a failure here: it checked nothing)."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET

# The import names of the extras the gpu tests need (pyproject's `gpu` extra).
EXTRAS = ("flash_attn", "liger_kernel", "bitsandbytes", "peft", "pynvml")


def missing_extras(names: tuple[str, ...] = EXTRAS) -> list[str]:
    return [n for n in names if importlib.util.find_spec(n) is None]


def junit_verdict(path: str) -> tuple[int, list[str]]:
    """(tests run, problems): each skipped, failed or errored test by name, or none run."""
    cases = ET.parse(path).getroot().iter("testcase")
    ran, problems = 0, []
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        for tag in ("skipped", "failure", "error"):
            found = case.find(tag)
            if found is not None:
                problems.append(f"{tag}: {name}: {(found.get('message') or '').strip()[:200]}")
                break
        else:
            ran += 1
    if ran == 0 and not problems:
        problems.append("no gpu test ran")
    return ran, problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["extras"]:
        gone = missing_extras()
        if gone:
            print(f"gpu_check: missing extras: {', '.join(gone)} "
                  "(pip install '.[gpu]' or bench/gpu_wheels.sh)", file=sys.stderr)
            return 1
        print(f"gpu_check: extras present: {', '.join(EXTRAS)}")
        return 0
    if argv[:1] == ["junit"] and len(argv) == 2:
        ran, problems = junit_verdict(argv[1])
        for p in problems:
            print(f"gpu_check: {p}", file=sys.stderr)
        print(f"gpu_check: {ran} gpu test(s) passed, {len(problems)} problem(s)")
        return 1 if problems else 0
    print("usage: gpu_results.py extras | junit FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
