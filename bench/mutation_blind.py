"""Mutation step for what mutmut never mutates: functions under a decorator other than
staticmethod/classmethod (properties, @authenticated routes, cached functions), code at
module and class level (constants, the ledger's SQL views and schemas), and the numbers
in skills/defs/*.yaml (level-up rules, eval sizes, level parameters).

Each mutant is one small change to one file of a scratch copy of the checkout: a flipped
comparison or boolean operator, a swapped arithmetic operator, a number moved by one (a
YAML number by one, or by 0.1 below 1), True/False swapped, a `not` dropped, a returned
value replaced by None, an SQL comparison/ordering/aggregate/conjunction flipped in a
module-level SQL string. The target's tests that name the file run against it in a
child forked from a process that has the heavy libraries imported (torch, transformers,
duckdb) but none of ours, so each child imports the mutated module fresh. A mutant is
killed when the tests fail, survives when they pass, is untested when no test names the
file, a timeout when they run past the limit. Kill rate = killed / all judged, the same
formula as bench/mutation.py, per kind, with its 95% Wilson interval.

    python bench/mutation_blind.py --sample 60        # 60 seeded mutants of each kind
    python bench/mutation_blind.py --list             # count the candidates, run nothing

Writes the "blind" section of bench/results/mutation.json and a dated line in RESULTS.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import ROOT as REPO  # noqa: I001  (bench/ is the script's folder)
from common import load_average, machine, record
from mutation import RESULTS, installed_path, load, scratch_copy
from mutation_targets import TARGETS, hashes, homes, selection, target_files, target_tests, wilson

KINDS = ("decorated", "module_level", "yaml_numbers")
PLAIN_DECORATORS = {"staticmethod", "classmethod"}  # mutmut mutates these itself
SQL_SWAPS = [(r"(?<![<>!])>=", "<"), (r"(?<![<>!])<=", ">"), (r" > ", " >= "), (r" < ", " <= "),
             (r"\bDESC\b", "ASC"), (r"\bASC\b", "DESC"), (r"\bMAX\(", "MIN("), (r"\bMIN\(", "MAX("),
             (r"\bAND\b", "OR"), (r" = ", " <> "), (r"\bIS NULL\b", "IS NOT NULL")]
COMPARE_SWAP = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "==",
                ast.In: "not in", ast.NotIn: "in", ast.Is: "is not", ast.IsNot: "is"}
BINOP_SWAP = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "*", ast.Mod: "*"}


# -- finding mutants ---------------------------------------------------------------------------

def _offsets(src: str) -> list[int]:
    starts, pos = [], 0
    for line in src.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _span(node: ast.AST, starts: list[int]) -> tuple[int, int]:
    return (starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset)


def _operator_span(src: str, left_end: int, right_start: int, text: str) -> tuple[int, int] | None:
    """Where the operator `text` sits between two operands (comments cannot sit there)."""
    i = src.find(text, left_end, right_start)
    return (i, i + len(text)) if i >= 0 else None


def node_mutants(src: str, nodes: list[ast.AST]) -> list[tuple[int, int, str, str]]:
    """(start, end, replacement, description) for each mutable spot under `nodes`."""
    starts = _offsets(src)
    out = []
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Compare):
                left = n.left
                for op, right in zip(n.ops, n.comparators, strict=True):
                    new = COMPARE_SWAP.get(type(op))
                    old = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
                           ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
                           ast.IsNot: "is not"}.get(type(op))
                    sp = new and _operator_span(src, _span(left, starts)[1], _span(right, starts)[0], old)
                    if sp:
                        out.append((*sp, new, f"{old} -> {new}"))
                    left = right
            elif isinstance(n, ast.BinOp) and type(n.op) in BINOP_SWAP:
                old = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                       ast.Mod: "%"}[type(n.op)]
                sp = _operator_span(src, _span(n.left, starts)[1], _span(n.right, starts)[0], old)
                if sp:
                    out.append((*sp, BINOP_SWAP[type(n.op)], f"{old} -> {BINOP_SWAP[type(n.op)]}"))
            elif isinstance(n, ast.BoolOp):
                old, new = ("and", "or") if isinstance(n.op, ast.And) else ("or", "and")
                sp = _operator_span(src, _span(n.values[0], starts)[1], _span(n.values[1], starts)[0], old)
                if sp:
                    out.append((*sp, new, f"{old} -> {new}"))
            elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
                s, e = _span(n, starts)
                o_s, o_e = _span(n.operand, starts)
                out.append((s, o_s, "", "not dropped"))
            elif isinstance(n, ast.Constant) and type(n.value) in (int, float):
                s, e = _span(n, starts)
                if src[s:e].lstrip("-").replace(".", "").replace("_", "").isdigit():
                    out.append((s, e, repr(n.value + 1), f"{src[s:e]} -> {n.value + 1}"))
            elif isinstance(n, ast.Constant) and isinstance(n.value, bool):
                s, e = _span(n, starts)
                out.append((s, e, str(not n.value), f"{n.value} -> {not n.value}"))
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and re.search(
                    r"\b(SELECT|CREATE)\b", n.value):
                s, e = _span(n, starts)
                seg = src[s:e]
                for pat, rep in SQL_SWAPS:
                    for m in re.finditer(pat, seg):
                        what = f"SQL {m.group(0).strip()} -> {rep.strip()}"
                        out.append((s + m.start(), s + m.end(), rep, what))
            elif isinstance(n, ast.Return) and n.value is not None and not (
                    isinstance(n.value, ast.Constant) and n.value.value is None):
                s, e = _span(n.value, starts)
                out.append((s, e, "None", "return None"))
    return out


def _decorated(tree: ast.Module) -> list[ast.AST]:
    found = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.decorator_list:
            names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in n.decorator_list}
            if not names <= PLAIN_DECORATORS:
                found.extend(n.body)
    return found


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """Statements at module level and in class bodies that are not functions or classes
    (those mutmut reaches); the docstrings left out."""
    out = []

    def walk(body):
        for st in body:
            if isinstance(st, ast.ClassDef):
                walk(st.body)
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom)):
                continue
            elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
                continue
            else:
                out.append(st)
    walk(tree.body)
    return out


def yaml_mutants(text: str) -> list[tuple[int, int, str, str]]:
    """Each number in a YAML value (not in a comment, not a level's key): an int by one
    (down, or up from 0 and 1), a float below 1 by 0.1 (down, or up below 0.1)."""
    out = []
    for line_start, line in zip(_offsets(text), text.splitlines(keepends=True), strict=True):
        code = line.split("#", 1)[0]
        for m in re.finditer(r"(?<=[:\[,{]) *(-?\d+(?:\.\d+)?)(?=\s*[,\]}\n]|\s*$)", code):
            num = m.group(1)
            if re.match(r"^\s*\d+:", code) and m.start(1) < code.index(":"):
                continue
            if "." in num:
                v = float(num)
                new = f"{v - 0.1:.4g}" if v >= 0.1 else f"{v + 0.1:.4g}"
            else:
                v = int(num)
                new = str(v - 1 if v > 1 else v + 1)
            s = line_start + m.start(1)
            out.append((s, s + len(num), new, f"{num} -> {new}"))
    return out


def candidates(root: Path = REPO) -> dict[str, list[dict]]:
    """Every mutant of each kind: {kind: [{file, target, start, end, new, what, line}]}."""
    out: dict[str, list[dict]] = {k: [] for k in KINDS}
    for target in TARGETS:
        for rel in target_files(target, root):
            src = (root / rel).read_text(encoding="utf-8")
            tree = ast.parse(src)
            for kind, nodes in (("decorated", _decorated(tree)), ("module_level", _module_level(tree))):
                for s, e, new, what in node_mutants(src, nodes):
                    out[kind].append({"file": rel, "target": target, "start": s, "end": e, "new": new,
                                      "what": what, "line": src.count("\n", 0, s) + 1})
    for path in sorted((root / "skills" / "defs").glob("*.yaml")):
        if path.name.startswith("_template"):
            continue
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for s, e, new, what in yaml_mutants(text):
            out["yaml_numbers"].append({"file": rel, "target": "skills", "start": s, "end": e, "new": new,
                                        "what": what, "line": text.count("\n", 0, s) + 1})
    for kind in out:  # one mutant per spot and replacement
        seen, unique = set(), []
        for m in out[kind]:
            key = (m["file"], m["start"], m["end"], m["new"])
            if key not in seen:
                seen.add(key)
                unique.append(m)
        out[kind] = unique
    return out


# -- running them --------------------------------------------------------------------------------

def tests_naming(rel: str, target: str, root: Path = REPO) -> list[str]:
    """The target's test files that name the mutated file's module (or, for a YAML def,
    the skill's file name): its own tests, in the sense of tests/homes.toml."""
    stem = Path(rel).stem
    if rel.endswith(".yaml"):
        pattern = re.compile(rf"\b{re.escape(stem)}\b", re.I)
    else:
        module = installed_path(rel)[:-3].replace("/", ".")
        pkg, _, leaf = module.rpartition(".")
        pattern = re.compile(rf"{re.escape(module)}\b|from {re.escape(pkg)} import [^\n]*\b{leaf}\b"
                             if leaf != "__init__" else rf"{re.escape(pkg)}\b")
    own = set(homes([rel], root))
    return [t for t in target_tests(target, root) if Path(t).name.startswith("test_")
            and (t in own or pattern.search((root / t).read_text(encoding="utf-8")))]


def preimport() -> None:
    """The heavy third-party libraries, once, so each forked child starts warm."""
    for mod in ("pytest", "torch", "transformers", "duckdb", "pyarrow", "pandas", "yaml", "httpx", "tornado"):
        try:
            __import__(mod)
        except ImportError:
            pass


def run_child(scratch: Path, tests: list[str], marks: list[str], timeout: float) -> int | None:
    """Exit status of pytest over `tests` in a forked child; None past the timeout."""
    pid = os.fork()
    if pid == 0:  # the child: import our packages from the scratch copy, run, exit
        try:
            os.setsid()
            os.chdir(scratch)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest
            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "tmp_path_retention_count=100000",
                                *tests, *marks])
        except BaseException:  # noqa: BLE001  (the child must exit, never return into the loop)
            code = 3
        os._exit(int(code))
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.2)  # polling a child's exit, not synchronising a test


def marks_of(target: str) -> list[str]:
    return [a for a in selection(target) if not a.startswith("tests")]


def judge(scratch: Path, m: dict, timeout: float) -> str:
    tests = tests_naming(m["file"], m["target"], scratch)  # the copy's tests, not the live tree's
    if not tests:
        return "no_tests"
    path = scratch / installed_path(m["file"])
    original = path.read_text(encoding="utf-8")
    path.write_text(original[:m["start"]] + m["new"] + original[m["end"]:], encoding="utf-8")
    try:
        code = run_child(scratch, tests, marks_of(m["target"]), timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    if code is None:
        return "timeout"
    if code == 0:
        return "survived"
    if code == 5:
        return "no_tests"
    if code == 4:  # pytest's usage error (a test path missing): our fault, not the mutant's
        return "error"
    return "killed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="*", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--sample", type=int, default=60, help="mutants per kind (0: all)")
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--list", action="store_true", help="count the candidates, run nothing")
    a = ap.parse_args()
    cands = candidates()
    if a.list:
        for kind in a.kinds:
            print(kind, len(cands[kind]))
        return
    sys.dont_write_bytecode = True  # a restored file must never be served from a mutant's .pyc
    workdir = Path(tempfile.mkdtemp(prefix="realm-mutation-blind-"))
    scratch = workdir / "checkout"
    try:
        scratch_copy(scratch)
        sys.path.insert(0, str(scratch))
        (workdir / "pytest-tmp").mkdir()  # as bench/mutation.py: not rotated by others' runs
        os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                          RAY_USAGE_STATS_ENABLED="0", PYTEST_DEBUG_TEMPROOT=str(workdir / "pytest-tmp"))
        for k in [k for k in os.environ if k.startswith("REALM_")]:
            del os.environ[k]
        preimport()
        for kind in a.kinds:
            pool = cands[kind]
            sampled = bool(a.sample) and a.sample < len(pool)
            chosen = random.Random(a.seed).sample(pool, a.sample) if sampled else pool
            files = sorted({m["file"] for m in pool})
            tests = sorted({t for m in pool for t in target_tests(m["target"], scratch)})
            started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            head = {"commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                             text=True).stdout.strip(),
                    "date": started, "machine": machine(), "load_before": load_average(),
                    "file_hashes": hashes(files, scratch), "test_hashes": hashes(tests, scratch)}
            t0 = time.monotonic()
            verdicts = []
            for m in chosen:
                verdicts.append({**m, "status": judge(scratch, m, a.timeout)})
                print(f"{kind} {len(verdicts)}/{len(chosen)} {m['file']}:{m['line']} {m['what']}: "
                      f"{verdicts[-1]['status']}", flush=True)
            counts = {k: sum(1 for v in verdicts if v["status"] == k)
                      for k in ("killed", "survived", "no_tests", "timeout")}
            judged = sum(counts.values())
            errors = sum(1 for v in verdicts if v["status"] == "error")
            rate = round(counts["killed"] / judged, 4) if judged else None
            res = {**head, "candidates": len(pool), "sampled": len(chosen) if sampled else None,
                   "seed": a.seed, **counts, "judged": judged, "errors": errors, "kill_rate": rate,
                   "interval95": wilson(counts["killed"], judged),
                   "minutes": round((time.monotonic() - t0) / 60, 2), "load_after": load_average(),
                   "not_killed": [{k: v[k] for k in ("file", "line", "what", "status")}
                                  for v in verdicts if v["status"] != "killed"]}
            data = load(a.results)
            data.setdefault("blind", {})[kind] = res
            a.results.write_text(json.dumps(data, indent=1) + "\n")
            line = (f"blind-spot {kind}: {counts['killed']} killed, {counts['survived']} survived, "
                    f"{counts['no_tests']} untested, {counts['timeout']} timeouts of {judged} "
                    f"(seeded sample of {len(chosen)} of {len(pool)}) -> kill rate {rate}, 95% "
                    f"{res['interval95']}; {res['minutes']} min, load {res['load_before']} -> "
                    f"{res['load_after']}")
            print(line, flush=True)
            keep = ("killed", "survived", "no_tests", "timeout", "judged", "kill_rate", "candidates",
                    "minutes", "commit")
            record(f"mutation_blind_{kind}", {k: res[k] for k in keep}, line, a.results.parent)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
