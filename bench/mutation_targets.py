"""What the mutation checks mutate and against which tests, and the bookkeeping both steps
share (bench/mutation.py with mutmut, bench/mutation_blind.py for what mutmut skips):
product lines under a target, the file hashes a figure is tied to, the Wilson interval,
and which recorded figures are stale.

Lines are counted as non-blank lines that are not comments (docstrings count), over
every tracked .py file under realm_kernel/, widgets/ and skills/: see docs/testing.md."""

from __future__ import annotations

import hashlib
import math
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRODUCT = ("realm_kernel/*.py", "widgets/*.py", "skills/*.py")  # git pathspecs: * spans folders
FAST = ["-m", "not slow and not gpu"]

# target -> (globs of the files to mutate, the pytest selection of its own fast tests; the
# test files tests/homes.toml names for its modules are added by selection()).
# Ordered by risk: the issue-29 audit named train/, evals/, services/, server/, oracle/,
# store/vault, the skills generators and the widgets as reached by no mutation target.
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "train": (["realm_kernel/train/*.py"], ["tests/train", *FAST]),
    "evals": (["realm_kernel/evals/*.py"], ["tests/evals", *FAST]),
    "services": (["realm_kernel/services/*.py"], ["tests/services", *FAST]),
    "store": (["realm_kernel/store/*.py"],
              ["tests/store", "tests/reliability/test_repairs.py", *FAST,
               "-k", "not readers_never and not user_read_only"]),
    "server_oracle": (["realm_kernel/server/*.py", "realm_kernel/oracle/*.py"],
                      ["tests/server", "tests/oracle", *FAST]),
    "skills": (["skills/*.py", "skills/generators/*.py", "skills/passives/*.py"], ["tests/skills", *FAST]),
    "widgets": (["widgets/*.py"], ["tests/widgets", "tests/api", *FAST]),
    "quests": (["realm_kernel/quests/*.py"], ["tests/quests", "tests/reliability/test_repairs.py", *FAST]),
    "hero_model": (["realm_kernel/hero_model/*.py"], ["tests/hero_model", *FAST]),
}


def target_files(name: str, root: Path = ROOT) -> list[str]:
    """The target's files, repository-relative and sorted; `__init__.py` files with no
    code are left out (nothing to mutate)."""
    globs, _ = TARGETS[name]
    files = {p.relative_to(root).as_posix() for g in globs for p in root.glob(g) if p.is_file()}
    return sorted(f for f in files if code_lines(root / f) > 0)


def homes(files: list[str], root: Path = ROOT) -> list[str]:
    """The test files tests/homes.toml names for these modules, as paths under tests/."""
    table = tomllib.loads((root / "tests" / "homes.toml").read_text(encoding="utf-8"))["homes"]
    names: set[str] = set()
    for f in files:
        entry = table.get(f, [])
        names |= set(entry["files"] if isinstance(entry, dict) else entry)
    found = set()
    for n in names:
        hits = [root / "tests" / n] if (root / "tests" / n).is_file() else sorted((root / "tests").rglob(n))
        found |= {h.relative_to(root).as_posix() for h in hits}
    return sorted(found)


def selection(name: str, root: Path = ROOT) -> list[str]:
    """The target's pytest arguments: its folders and files, the homes of its modules
    not already under them, then its marks and -k."""
    _, base = TARGETS[name]
    paths = [a for a in base if a.startswith("tests")]
    rest = [a for a in base if not a.startswith("tests")]
    extra = [h for h in homes(target_files(name, root), root)
             if not any(h == p or h.startswith(p.rstrip("/") + "/") for p in paths)]
    return paths + extra + rest


def target_tests(name: str, root: Path = ROOT) -> list[str]:
    """Every file the target's tests run from: the test files of its selection, the
    conftest.py files above them and the shared helpers they import."""
    out: set[str] = set()
    for arg in selection(name, root):
        if not arg.startswith("tests"):
            continue
        p = root / arg
        found = [p] if p.is_file() else sorted(p.rglob("*.py"))
        for f in found:
            out.add(f.relative_to(root).as_posix())
            d = f.parent
            while d != root:  # the conftest.py files pytest loads for it
                if (d / "conftest.py").exists():
                    out.add((d / "conftest.py").relative_to(root).as_posix())
                d = d.parent
    out |= {f.relative_to(root).as_posix() for f in (root / "tests").glob("*helpers.py")}
    return sorted(out)


def code_lines(path: Path) -> int:
    """Non-blank lines that are not comments."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.strip().startswith("#"))


def product_files(root: Path = ROOT) -> list[str]:
    files = subprocess.run(["git", "ls-files", *PRODUCT], cwd=root, check=True, capture_output=True,
                           text=True).stdout.split()
    return sorted(f for f in files if (root / f).is_file())


def coverage(root: Path = ROOT) -> dict:
    """Product lines, the lines under some target, and each target's share."""
    product = {f: code_lines(root / f) for f in product_files(root)}
    covered: set[str] = set()
    per_target = {}
    for name in TARGETS:
        files = [f for f in target_files(name, root) if f in product]
        covered |= set(files)
        per_target[name] = sum(product[f] for f in files)
    total = sum(product.values())
    under = sum(product[f] for f in covered)
    return {"product_lines": total, "lines_under_a_target": under,
            "share": round(under / total, 4) if total else None, "lines_by_target": per_target,
            "not_under_a_target": sorted(f for f in product if f not in covered)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(files: list[str], root: Path = ROOT) -> dict[str, str]:
    return {f: sha256(root / f) for f in files if (root / f).exists()}


def wilson(killed: int, judged: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of killed / judged."""
    if not judged:
        return None
    p = killed / judged
    centre = (p + z * z / (2 * judged)) / (1 + z * z / judged)
    half = z * math.sqrt(p * (1 - p) / judged + z * z / (4 * judged * judged)) / (1 + z * z / judged)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def verdict(killed: int, judged: int, sampled: bool) -> bool:
    """Pass: kill rate >= 80%, and for a sample the interval's lower bound >= 75%."""
    if not judged:
        return False
    if killed / judged < 0.8:
        return False
    return not sampled or wilson(killed, judged)[0] >= 0.75


def stale(recorded: dict, files: list[str], tests: list[str], root: Path = ROOT) -> list[str]:
    """Why a recorded figure no longer describes this checkout: files added to or gone
    from the target or its tests, or changed since the run (by sha256). Empty: current."""
    why = []
    then = {**recorded.get("file_hashes", {}), **recorded.get("test_hashes", {})}
    now = hashes(files + tests, root)
    for f in sorted(set(now) | set(then)):
        if f not in then:
            why.append(f"{f}: new since the run")
        elif f not in now:
            why.append(f"{f}: gone since the run")
        elif now[f] != then[f]:
            why.append(f"{f}: changed since the run")
    return why


def check_stale(detail: dict, targets: dict, files_of, tests_of, root: Path = ROOT) -> dict[str, list[str]]:
    """{target: reasons} for every target whose figure is missing or stale."""
    out = {}
    for name in targets:
        rec = detail.get(name)
        if rec is None:
            out[name] = ["not run"]
            continue
        why = stale(rec, files_of(name, root), tests_of(name, root), root)
        if why:
            out[name] = why
    return out
