"""Mutation check of the core modules with mutmut: how many deliberate bugs (a flipped
comparison, a changed constant, a dropped call) the fast unit tests of each module catch.

Each target runs in a scratch copy of the checkout (mutmut writes mutants/ there and
imports the mutated package ahead of the editable install), one mutant at a time (a
shared 2-core machine), with only that module's fast tests. The kill rate is killed /
(killed + survived + timeouts): mutants no test reaches count as survived, those mutmut
skips are left out. Surviving mutants are listed in the JSON for reading.

    python bench/mutation.py                       # every target
    python bench/mutation.py --targets quests      # one
    python bench/mutation.py --label before --rev main   # the suite before a change

Writes bench/results/mutation.json (every run, survivors included), the flat figures
of this run in bench/results/mutation_<label>.json, and a dated line in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT as REPO  # noqa: I001  (bench/ is the script's folder)
from common import report

# target -> (files to mutate, the pytest selection that should catch their bugs)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "quests": (["realm_kernel/quests/queue.py", "realm_kernel/quests/admission.py",
                "realm_kernel/quests/recovery.py"],
               ["tests/quests/test_quests.py", "tests/reliability/test_repairs.py", "-m", "not slow"]),
    "quest_formats": (["realm_kernel/quests/formats.py"],
                      ["tests/quests/test_quests.py", "tests/quests/test_quest_formats.py",
                       "tests/quests/test_formats.py", "-m", "not slow", "-k", "not datasets_folder"]),
    "ledger": (["realm_kernel/store/ledger.py", "realm_kernel/store/checkpoints.py"],
               ["tests/store/test_ledger.py", "tests/store/test_ledger_parts.py",
                "tests/store/test_checkpoints.py", "-k",
                "not readers_never and not user_read_only"]),
    "recovery": (["realm_kernel/store/checkpoint_repair.py"],
                 ["tests/reliability/test_repairs.py", "tests/store/test_ledger.py", "-m", "not slow",
                  "-k", "not readers_never and not user_read_only"]),
    "skills_scoring": (["realm_skills/evaluation.py"],
                       ["tests/skills/test_skills_scoring.py", "tests/evals/test_skills_eval.py",
                        "-m", "not slow", "-k", "scoring or run_eval or level_up or weak_primitive"]),
    "packing": (["realm_kernel/train/packing.py", "realm_kernel/train/data.py"],
                ["tests/train/test_packing.py", "tests/train/test_data.py", "-m", "not slow"]),
}


def scratch_copy(dest: Path, rev: str | None) -> None:
    """The checkout's files (tracked and untracked, not ignored), or those of commit `rev`;
    skills/ as realm_skills/ so mutmut's module names match the installed name."""
    dest.mkdir(parents=True)
    if rev:
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.splitlines()
        for rel in files:
            if (REPO / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
    (dest / "skills").rename(dest / "realm_skills")


def mutmut_config(files: list[str], selection: list[str]) -> str:
    roots = sorted({f.split("/")[0] + "/" for f in files})
    also = [p for p in ("realm_kernel/", "realm_skills/", "widgets/", "pipelines/", "notebooks/",
                        "jupyter-config/") if p not in roots]
    return ("\n[tool.mutmut]\n"
            f"source_paths = {json.dumps(roots)}\n"
            f"only_mutate = {json.dumps(files)}\n"
            f"also_copy = {json.dumps(also)}\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(selection)}\n"
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x"]\n')


def run_target(name: str, workdir: Path, timeout: float, rev: str | None) -> dict:
    files, selection = TARGETS[name]
    scratch = workdir / name
    scratch_copy(scratch, rev)
    with open(scratch / "pyproject.toml", "a") as f:
        f.write(mutmut_config(files, selection))
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALM_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([str(mutmut), "run", "--max-children", "1"], cwd=scratch, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, complete = proc.communicate(timeout=timeout)[0][-3000:], True
    except subprocess.TimeoutExpired:  # cut short: the mutants judged so far still count
        os.killpg(proc.pid, 9)
        log, complete = proc.communicate()[0][-3000:], False
    subprocess.run([str(mutmut), "export-cicd-stats"], cwd=scratch, env=env, capture_output=True)
    stats_file = scratch / "mutants" / "mutmut-cicd-stats.json"
    if not stats_file.exists():
        raise SystemExit(f"mutmut gave no stats for {name}:\n{log}")
    stats = json.loads(stats_file.read_text())
    survivors = subprocess.run([str(mutmut), "results"], cwd=scratch, env=env, capture_output=True,
                               text=True).stdout.split("\n")
    judged = stats["killed"] + stats["survived"] + stats["no_tests"] + stats["timeout"]
    return {"files": files, "tests": selection, **{k: stats[k] for k in (
        "killed", "survived", "no_tests", "timeout", "skipped", "suspicious", "total")},
        "judged": judged, "kill_rate": round(stats["killed"] / judged, 4) if judged else None,
        "complete": complete,
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "survivors": [s.strip() for s in survivors if s.strip() and ":" in s][:200]}


def summarise(name: str, detail: dict, out_dir: Path) -> None:
    """Every target and label of mutation.json as flat keys (<target>_<label>_kill_rate,
    _mutants, _complete), for a change's own results file."""
    figures: dict = {}
    for target, runs in detail.items():
        for label, r in runs.items():
            figures[f"mutation_{target}_{label}_kill_rate"] = r["kill_rate"]
            figures[f"mutation_{target}_{label}_mutants"] = r["judged"]
            figures[f"mutation_{target}_{label}_complete"] = r.get("complete", True)
    summary = "mutation kill rates: " + "; ".join(
        f"{t} " + ", ".join(f"{label} {r['kill_rate']}" + ("" if r.get("complete", True) else " (partial)")
                            for label, r in runs.items()) for t, runs in detail.items())
    report(name, figures, summary, out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--label", default="after", help="before | after: the key suffix")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per target")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--rev", default=None, help="the tests and code of this commit (e.g. the "
                    "one before a change, for --label before) instead of the working tree")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    ap.add_argument("--summarise", metavar="NAME", default=None,
                    help="run nothing: record every run in mutation.json as flat figures NAME.json")
    a = ap.parse_args()
    out_dir = a.out or REPO / "bench" / "results"
    detail_file = out_dir / "mutation.json"
    detail = json.loads(detail_file.read_text()) if detail_file.exists() else {}
    if a.summarise:
        summarise(a.summarise, detail, out_dir)
        return
    workdir = Path(tempfile.mkdtemp(prefix="realm-mutation-"))
    figures: dict = {}
    try:
        for name in a.targets:
            res = run_target(name, workdir, a.timeout, a.rev)
            detail.setdefault(name, {})[a.label] = res
            figures[f"{name}_{a.label}_kill_rate"] = res["kill_rate"]
            figures[f"{name}_{a.label}_mutants"] = res["judged"]
            print(f"{name}: {res['killed']} killed, {res['survived']} survived, {res['no_tests']} "
                  f"untested, {res['timeout']} timeouts -> kill rate {res['kill_rate']} "
                  f"({res['minutes']} min)", flush=True)
            out_dir.mkdir(parents=True, exist_ok=True)  # every target as it ends: nothing lost
            detail_file.write_text(json.dumps(detail, indent=1))
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    detail_file.write_text(json.dumps(detail, indent=1))
    killed = sum(detail[t][a.label]["killed"] for t in a.targets)
    judged = sum(figures[f"{t}_{a.label}_mutants"] for t in a.targets)
    figures[f"core_{a.label}_kill_rate"] = round(killed / judged, 4) if judged else None
    summary = (f"mutation ({a.label}, mutmut, one child): " + ", ".join(
        f"{t} {figures[f'{t}_{a.label}_kill_rate']}" for t in a.targets)
        + f"; core {figures[f'core_{a.label}_kill_rate']} of {judged} mutants")
    report(f"mutation_{a.label}", figures, summary, out_dir)


if __name__ == "__main__":
    main()
