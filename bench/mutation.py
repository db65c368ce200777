"""Mutation check with mutmut: how many deliberate bugs (a flipped comparison, a changed
constant, a dropped call) the fast tests of each part of the product catch.

Each target (bench/mutation_targets.py: a package, against its own fast tests) runs in a
scratch copy of the checkout (mutmut writes mutants/ there and imports the mutated
package ahead of the editable install), one mutant at a time (a shared 2-core machine).
With --sample N a seeded random sample of N of the target's mutants is run, and the
figure carries its 95% Wilson interval. The kill rate is killed / (killed + survived +
untested + timeouts): mutants no test reaches count against it, those mutmut skips are
left out. Pass: kill rate >= 80% and, for a sample, the interval's lower bound >= 75%.

    python bench/mutation.py --targets train --sample 200   # one target, 200 mutants
    python bench/mutation.py --check-stale                  # figures whose files changed
    python bench/mutation.py --coverage                     # product lines under a target

Every figure comes from one run: bench/results/mutation.json holds, per target, the
latest run alone (commit, date, sha256 of the target's files and tests, counts,
survivors), replaced whole by the next run; a dated line goes to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import ROOT as REPO  # noqa: I001  (bench/ is the script's folder)
from common import load_average, machine, record
from mutation_targets import (
    TARGETS,
    check_stale,
    coverage,
    hashes,
    selection,
    stale,
    target_files,
    target_tests,
    verdict,
    wilson,
)

RESULTS = REPO / "bench" / "results" / "mutation.json"
# the installed names of the folders whose package name differs: mutmut names a mutant by
# its path, and the tests import the package name
RENAMED = {"skills": "realm_skills", "widgets": "realm_widgets"}

# mutmut's generation step alone (copy, mutate, no tests), so the mutants can be sampled
GENERATE = ("import os\n"
            "from mutmut.__main__ import (copy_src_dir, copy_also_copy_files, setup_source_paths,\n"
            "                             create_mutants)\n"
            "from mutmut.mutation.trampoline import set_mutant_under_test\n"
            "set_mutant_under_test('mutant_generation')\n"
            "os.makedirs('mutants', exist_ok=True)\n"
            "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(1)\n")


def installed_path(rel: str) -> str:
    top, _, rest = rel.partition("/")
    return f"{RENAMED.get(top, top)}/{rest}"


def scratch_copy(dest: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored), with skills/ and
    widgets/ under their installed names so mutmut's module names match the imports
    (the old names link to them)."""
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for rel in files:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    for old, new in RENAMED.items():  # the old name stays as a link: tests read files by path
        (dest / old).rename(dest / new)
        (dest / old).symlink_to(new, target_is_directory=True)


def mutmut_config(files: list[str], selection: list[str]) -> str:
    files = [installed_path(f) for f in files]
    roots = sorted({f.split("/")[0] + "/" for f in files})
    # README.md: tests/widgets/test_glossary.py reads its glossary from the checkout's root
    also = [p for p in ("realm_kernel/", "realm_skills/", "realm_widgets/", "skills/", "widgets/",
                        "pipelines/", "notebooks/", "jupyter-config/", "README.md") if p not in roots]
    return ("\n[tool.mutmut]\n"
            f"source_paths = {json.dumps(roots)}\n"
            f"only_mutate = {json.dumps(files)}\n"
            f"also_copy = {json.dumps(also)}\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(selection)}\n"
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-o",\n'
            '                       "tmp_path_retention_count=100000"]\n')


def mutant_statuses(scratch: Path, files: list[str]) -> dict[str, int | None]:
    """{mutant name: mutmut's exit code} from the .meta files mutmut keeps per file."""
    out: dict[str, int | None] = {}
    for rel in files:
        meta = scratch / "mutants" / (installed_path(rel) + ".meta")
        if meta.exists():
            out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def classify(code: int | None) -> str:
    """mutmut's exit codes (mutmut/stats.py) as the four judged kinds, or skipped."""
    if code in (1, 3):
        return "killed"
    if code == 0:
        return "survived"
    if code in (5, 33):
        return "no_tests"
    if code in (24, -24, 36, 152, 255):
        return "timeout"
    if code in (-9, -11):  # killed by a signal (memory, a crash): the tests did not pass
        return "killed"
    return "skipped"  # not checked, type-checked away, skipped, suspicious


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


HEAD_FILE = "realm-mutation-run.json"  # in the scratch copy: what a later --collect needs


def prepare(name: str, workdir: Path, sample: int | None, seed: int) -> Path:
    """The scratch copy with its mutants generated and the run's head record written
    (commit, date, hashes of the files as copied, the seeded sample)."""
    files, tests, pytest_args = target_files(name), target_tests(name), selection(name)
    scratch = workdir / name
    scratch_copy(scratch)
    head = {"target": name, "files": files, "tests": pytest_args, "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", *files, *tests)),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "load_before": load_average(), "file_hashes": hashes(files, scratch),
            "test_hashes": hashes(tests, scratch), "started": time.time()}
    with open(scratch / "pyproject.toml", "a") as f:
        f.write(mutmut_config(files, pytest_args))
    subprocess.run([sys.executable, "-c", GENERATE], cwd=scratch, env=child_env(scratch), check=True,
                   capture_output=True)
    every = sorted(mutant_statuses(scratch, files))
    sampled = bool(sample) and sample < len(every)
    chosen = sorted(random.Random(seed).sample(every, sample)) if sampled else every
    head.update(mutants_in_target=len(every), sampled=len(chosen) if sampled else None,
                seed=seed if sampled else None, chosen=chosen)
    (scratch / HEAD_FILE).write_text(json.dumps(head))
    return scratch


def child_env(scratch: Path) -> dict[str, str]:
    """The run's environment: one thread, offline; pytest's temporary folders under the
    scratch copy and never rotated, because mutmut runs many pytest sessions in one
    process (a helper's cached trained realm must outlive its session) and other pytest
    runs on the machine rotate /tmp/pytest-of-<user>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALM_")}
    (scratch / "pytest-tmp").mkdir(exist_ok=True)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0",
               PYTEST_DEBUG_TEMPROOT=str(scratch / "pytest-tmp"))
    return env


def execute(scratch: Path, timeout: float) -> tuple[bool, str]:
    """mutmut over the chosen mutants, one child; (finished in time and exit 0, log). Its
    output goes to a file in the scratch copy, not a pipe, so mutmut outlives a stopped
    driver (then --collect records the run)."""
    head = json.loads((scratch / HEAD_FILE).read_text())
    mutmut = Path(sys.executable).with_name("mutmut")
    names = head["chosen"] if head["sampled"] else []
    log_path = scratch / "mutmut.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(mutmut), "run", "--max-children", "1", *names], cwd=scratch,
                                env=child_env(scratch), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # cut short: recorded as incomplete, never as a pass
        os.killpg(proc.pid, 9)
        proc.wait()
        return False, log_path.read_text(errors="replace")
    return proc.returncode == 0, log_path.read_text(errors="replace")


def collect(scratch: Path, finished: bool = True, log: str = "") -> dict:
    """The run's record from its scratch copy: complete only when every chosen mutant was
    judged (mutmut's own .meta files), whatever stopped the driver."""
    head = json.loads((scratch / HEAD_FILE).read_text())
    chosen = head.pop("chosen")
    status = mutant_statuses(scratch, head["files"])
    kinds = {m: classify(status.get(m)) for m in chosen}
    counts = {k: sum(1 for v in kinds.values() if v == k) for k in ("killed", "survived", "no_tests",
                                                                     "timeout", "skipped")}
    judged = counts["killed"] + counts["survived"] + counts["no_tests"] + counts["timeout"]
    complete = finished and counts["skipped"] == 0
    started = head.pop("started")
    res = {**head, **counts, "judged": judged,
           "kill_rate": round(counts["killed"] / judged, 4) if judged else None,
           "interval95": wilson(counts["killed"], judged),
           "passes": complete and verdict(counts["killed"], judged, head["sampled"] is not None),
           "complete": complete, "minutes": round((time.time() - started) / 60, 2),
           "load_after": load_average(),
           "survivors": sorted(m for m, k in kinds.items() if k == "survived"),
           "untested": sorted(m for m, k in kinds.items() if k == "no_tests"),
           "timeouts": sorted(m for m, k in kinds.items() if k == "timeout")}
    if not complete:
        res["log_tail"] = log[-3000:]
    return res


def load(path: Path = RESULTS) -> dict:
    data = json.loads(path.read_text()) if path.exists() else {}
    return data if "targets" in data else {"targets": {}}


def stale_report(data: dict) -> dict[str, list[str]]:
    """Targets with no figure or a stale one, then blind-spot kinds whose files or tests
    changed since their run (`blind:<kind>`)."""
    out = check_stale(data.get("targets", {}), TARGETS, target_files, target_tests)
    for kind, rec in data.get("blind", {}).items():
        why = stale(rec, list(rec["file_hashes"]), list(rec["test_hashes"]))
        if why:
            out[f"blind:{kind}"] = why
    return out


def _row(label: str, lines: object, r: dict, population: int, verdict_: str) -> str:
    judged = (f"{r['judged']} of a sample of {r['sampled']} of {population}" if r["sampled"]
              else f"{r['judged']} of all {population}")
    rate = f"{r['kill_rate']:.1%} ({r['interval95'][0]:.1%}-{r['interval95'][1]:.1%})" if r["judged"] else "-"
    return (f"| {label} | {lines} | {judged} | {r['killed']} | {r['survived']} | {r['no_tests']} | "
            f"{r['timeout']} | {rate} | {verdict_} | "
            f"{r['date']}, {r['commit'][:9]} |")


def table(data: dict) -> str:
    """The figures as docs/testing.md shows them: one row per target and blind-spot kind."""
    cov = coverage()
    stale = stale_report(data)
    rows = ["| target | lines | mutants judged | killed | survived | untested | timeouts | kill rate "
            "(95% interval) | verdict | run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in TARGETS:
        r = data["targets"].get(name)
        if r is None:
            rows.append(f"| {name} | {cov['lines_by_target'][name]} | not run | | | | | | | |")
            continue
        verdict_ = ("passes" if r["passes"] else "fails" if r["complete"] else "incomplete") + (
            ", **stale**" if name in stale else "")
        rows.append(_row(name, cov["lines_by_target"][name], r, r["mutants_in_target"], verdict_))
    for kind, r in data.get("blind", {}).items():
        rows.append(_row(f"blind-spot: {kind}", "", r, r["candidates"],
                         "**stale**" if f"blind:{kind}" in stale else "current"))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--sample", type=int, default=200, help="mutants per target (0: all of them)")
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per target")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--check-stale", action="store_true",
                    help="run nothing: list targets with no figure or whose files/tests changed since it")
    ap.add_argument("--coverage", action="store_true", help="run nothing: product lines under a target")
    ap.add_argument("--table", action="store_true", help="run nothing: the figures as a markdown table")
    ap.add_argument("--collect", type=Path, default=None, metavar="SCRATCH",
                    help="record the run kept in this scratch copy (its driver stopped, mutmut went on)")
    a = ap.parse_args()
    data = load(a.results)
    if a.coverage:
        print(json.dumps(coverage(), indent=1))
        return
    if a.table:
        print(table(data))
        return
    if a.check_stale:
        report = stale_report(data)
        for name, why in report.items():
            print(f"{name}: " + "; ".join(why[:10]) + (f" (+{len(why) - 10} more)" if len(why) > 10 else ""))
        print(f"{len(report)} stale or not run (targets and blind-spot kinds)" if report
              else "all figures current")
        raise SystemExit(1 if report else 0)
    if a.collect:
        log = a.collect / "mutmut.log"
        save(a.results, collect(a.collect, True, log.read_text(errors="replace") if log.exists() else ""))
        return
    workdir = Path(tempfile.mkdtemp(prefix="realm-mutation-"))
    try:
        for name in a.targets:
            scratch = prepare(name, workdir, a.sample or None, a.seed)
            save(a.results, collect(scratch, *execute(scratch, a.timeout)))
            if not a.keep:
                shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def save(results: Path, res: dict) -> None:
    """Replace the target's figure in mutation.json with this run, and log it."""
    name = res["target"]
    data = load(results)  # another step may have written meanwhile: replace only ours
    data["targets"][name] = res
    data["coverage"] = coverage()
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=1) + "\n")
    lo_hi = res["interval95"]
    line = (f"{name}: {res['killed']} killed, {res['survived']} survived, "
            f"{res['no_tests']} untested, {res['timeout']} timeouts of {res['judged']} judged"
            + (f" (seeded sample of {res['sampled']} of {res['mutants_in_target']})" if res["sampled"]
               else f" (all {res['mutants_in_target']})")
            + f" -> kill rate {res['kill_rate']}, 95% {lo_hi}, "
            + ("passes" if res["passes"] else "FAILS" if res["complete"] else "INCOMPLETE")
            + f"; {res['minutes']} min, commit {res['commit'][:9]}, load {res['load_before']} -> "
            f"{res['load_after']}")
    print(line, flush=True)
    record(f"mutation_{name}", {k: res[k] for k in (
        "killed", "survived", "no_tests", "timeout", "judged", "kill_rate", "sampled", "seed",
        "mutants_in_target", "passes", "complete", "minutes", "commit")}
        | {"interval95_low": lo_hi and lo_hi[0], "interval95_high": lo_hi and lo_hi[1]},
        "mutation (mutmut, one child) " + line, results.parent)


if __name__ == "__main__":
    main()
