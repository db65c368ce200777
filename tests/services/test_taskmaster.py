"""The Task Master: every pipeline notebook under papermill on a temp realm with dio-mini,
evals exactly once, cooldowns and priorities, failures recorded without stopping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.evals import curriculum, evalqueue, grading
from realm_kernel.quests.formats import load_quest
from realm_kernel.services import taskmaster
from realm_kernel.services.taskmaster import TaskMaster, describe, gpu_status, resource_ok
from realm_kernel.store.config import ConfigError, load_config
from realm_kernel.train import Job, TrainerEngine

from ..helpers import REPO, TEST_TOML


@pytest.fixture
def home(realm_home):
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true"))
    return realm_home


def train_quest(realm: Realm, quest, steps: int = 20) -> None:
    """Real training of dio-mini on a quest (checkpoints every save_steps=10)."""
    examples, report = load_quest(quest)
    assert report.ok
    meta = examples[0]["meta"]
    cfg = realm.config.training.model_copy(update={"max_steps": steps, "eval_fraction": 0.0})
    res = TrainerEngine(realm.paths, realm.ledger).run_job(Job(
        quest_id=quest.name, examples=examples, model_path=realm.paths.dio_mini, run_id="t1",
        training=cfg, skill=meta["skill"], skill_level=meta["level"]))
    assert res.success, res.error_message


def task_rows(realm: Realm, task_id: str) -> list[dict]:
    return realm.sql(f"SELECT status, output, detail FROM tasks WHERE task_id = '{task_id}' ORDER BY ts")


@pytest.mark.slow
def test_every_pipeline_runs_under_papermill_and_writes_its_rows(home):
    realm = Realm(home.home)
    tm = TaskMaster(home.home)
    tm.reload_config()

    # generate: the curriculum's quest lands in the inbox (BIN L1, no review yet).
    res = tm.run("generate_curriculum")
    assert res["status"] == "done", res
    quest = next(home.inbox.glob("curriculum-bin-L1-*.jsonl"))
    rows = task_rows(realm, "generate_curriculum")
    assert [r["status"] for r in rows] == ["running", "done"]
    assert rows[-1]["output"] == res["output"] and os.path.exists(res["output"])
    assert realm.sql("SELECT count(*) AS n FROM events WHERE kind = 'quest_generated'")[0]["n"] == 1

    # Real training saves two checkpoints; each asks for its eval.
    train_quest(realm, quest)
    assert len(realm.checkpoints.eval_queue()) == 2

    res = tm.run("process_eval_queue")
    assert res["status"] == "done", res
    evals = realm.sql("SELECT checkpoint, skill, level, n FROM evals ORDER BY step")
    assert [(e["skill"], e["level"], e["n"]) for e in evals] == [("bin", 1, 50)] * 2
    assert realm.sql("SELECT count(*) AS n FROM primitive_accuracy")[0]["n"] == 2
    out = nbformat.read(res["output"], as_version=4)
    assert any(o.get("output_type") == "stream" and "BIN  " in o.get("text", "")
               for c in out.cells for o in c.get("outputs", [])), "accuracy by step, as text"
    assert realm.checkpoints.eval_queue() == []
    # Never twice: a second run finds nothing to do and writes no eval.
    assert tm.run("process_eval_queue")["result"]["evaluated"] == 0
    assert realm.sql("SELECT count(*) AS n FROM evals")[0]["n"] == 2

    # sparring: an untrained hero answers wrong -> 3 examples per wrong answer in queue/high.
    res = tm.run("sparring_bin")
    assert res["status"] == "done", res
    session = res["result"]
    assert session["wrong"] > 0 and session["examples"] == 3 * session["wrong"]
    assert (home.queue("high") / session["quest"]).is_file()

    # The other seven: each ran, left its notebook and a running/done pair, and did its job.
    (home.queue("low") / "broken.jsonl").write_text("{oops\n")
    results = {}
    for task_id in ("targeted_sparring", "health_check", "validate_queue", "checkpoint_cleanup",
                    "vault_scan", "model_warmup", "lineage_report"):
        res = tm.run(task_id)
        assert res["status"] == "done", (task_id, res["detail"])
        assert [r["status"] for r in task_rows(realm, task_id)][-2:] == ["running", "done"]
        assert os.path.exists(res["output"])
        results[task_id] = res["result"]
    # targeted sparring: a quest for every skill with weak primitives, on disk, naming them.
    for q in results["targeted_sparring"]["quests"]:
        assert q["weak"] and any(p.name == q["quest"] for p in home.home.rglob("*.jsonl")), q
    report = realm.skills.eval_report("bin", 0.8)
    expect_bin = bool(report["weak_primitives"]) and len(report["primitive_accuracy"]) > 1
    assert ("bin" in [q["skill"] for q in results["targeted_sparring"]["quests"]]) == expect_bin
    # health: no daemon runs here -> not ok, said so, and recorded as a warning event.
    health = results["health_check"]
    assert not health["ok"] and health["problems"] == ["the daemon is not running"]
    assert health["ledger"]["checkpoints"] == 2 and health["ledger"]["evals"] == 2
    assert realm.sql("SELECT message FROM events WHERE kind = 'health_warning'") == [
        {"message": "the daemon is not running"}]
    # validate: every queued quest checked, the broken one named and left where it was.
    queued_now = sum(len(realm.quests.queue()[p]) for p in ("high", "normal", "low"))
    assert results["validate_queue"] == {"checked": queued_now, "bad": ["broken.jsonl"]}
    assert (home.queue("low") / "broken.jsonl").is_file()
    # cleanup: every checkpoint either kept by policy or deleted from disk.
    cleanup = results["checkpoint_cleanup"]
    kept = {k["step"] for k in cleanup["keep"]} | set(cleanup["kept_waiting_or_protected"])
    assert kept | set(cleanup["deleted"]) == {10, 20} and not cleanup["dry_run"]
    for step in cleanup["deleted"]:
        assert not any(home.checkpoints.glob(f"checkpoint-{step}-*"))
    for step in kept:
        assert any(home.checkpoints.glob(f"checkpoint-{step}-*"))
    # vault scan: the checkpoints on disk are assets now.
    assert results["vault_scan"]["found"]["checkpoint"] == len(kept)
    assert all(realm.vault.locate(f"checkpoint_{step}").found for step in kept)
    # warm-up: the newest checkpoint loaded and probed, named by its own name.
    warm = results["model_warmup"]
    assert warm["step"] == 20 and warm["model"] == realm.checkpoints.get(20).name
    assert warm["level"] == 1 and warm["expected"] and isinstance(warm["correct"], bool)
    # lineage: two checkpoints of one quest, both evaluated.
    assert results["lineage_report"] == {"checkpoints": 2, "quests": 1, "evaluated": 2}
    assert realm.tasks.list()[0]["task_id"] == "process_eval_queue"
    lineage = next(t for t in realm.tasks.list() if t["task_id"] == "lineage_report")
    assert lineage["last_status"] == "done" and lineage["output"].startswith(str(home.tasks))
    report = nbformat.read(lineage["output"], as_version=4)
    plots = [o for c in report.cells for o in c.get("outputs", [])
             if any("holoviews" in k for k in o.get("data", {}))]
    assert plots, "the lineage report's HoloViews (Bokeh) plots, the Tavern's own"


def test_failing_notebook_is_recorded_and_the_loop_goes_on(home, tmp_path):
    pipelines = tmp_path / "pipelines"
    shutil.copytree(taskmaster.PIPELINES, pipelines)
    nb = nbformat.read(pipelines / "health_check.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('the well is dry')"))
    nbformat.write(nb, pipelines / "health_check.ipynb")
    realm = Realm(home.home)
    for t in taskmaster.registry():
        if t not in ("health_check", "vault_scan"):
            realm.tasks.set(t, enabled=False)
    tm = TaskMaster(home.home, pipelines=pipelines)
    first = tm.once()
    assert first["task_id"] == "health_check" and first["status"] == "failed"
    assert "the well is dry" in first["detail"]
    row = task_rows(realm, "health_check")[-1]
    assert row["status"] == "failed" and row["output"] == first["output"]
    assert "the well is dry" in open(first["output"]).read()  # the output notebook shows where
    assert realm.sql("SELECT count(*) AS n FROM events WHERE kind = 'task_failed'")[0]["n"] == 1
    # The loop goes on: the next round runs the next task; the failed one backs off.
    second = tm.once()
    assert second["task_id"] == "vault_scan" and second["status"] == "done"
    assert isinstance(second["result"], dict), "the notebook's result file, read back"
    assert second["detail"] is None and tm.last == {k: second[k] for k in ("task_id", "status", "seconds",
                                                                           "output")}
    ran = realm.sql("SELECT name, priority, notebook, status FROM tasks WHERE task_id = 'vault_scan' "
                    "ORDER BY ts")
    assert ran == [{"name": "Vault scan", "priority": 3, "notebook": "vault_scan.ipynb", "status": s}
                   for s in ("running", "done")]
    done = realm.sql("SELECT data FROM events WHERE kind = 'task_done'")
    assert [json.loads(d["data"]) for d in done] == [
        {"task_id": "vault_scan", "seconds": second["seconds"], "output": second["output"]}]
    health = next(t for t in describe(realm.home, gpu_status(), check_work=True)
                  if t["task_id"] == "health_check")
    assert not health["available"] and "cooling down" in health["why_not"]


def _done(realm: Realm, task_id: str) -> None:
    realm.ledger.append("tasks", [{"task_id": task_id, "status": "done", "priority": 1}])


def test_priorities_cooldowns_settings_and_run_now(home):
    realm = Realm(home.home)
    tm = TaskMaster(home.home)
    avail = {t["task_id"]: t for t in describe(realm.home, gpu_status(), check_work=True)}
    # An empty realm: generate (queue low) and the cooldown-only tasks may run; the eval
    # queue, sparring, cleanup have no work; SY sparring (on by default, as SY is) waits
    # for SY's first eval.
    assert avail["generate_curriculum"]["available"]
    assert not avail["process_eval_queue"]["available"]
    assert "0 checkpoint" in avail["process_eval_queue"]["why_not"]
    assert avail["sparring_sy"]["enabled"] and "sy L1 not yet at 50%" in avail["sparring_sy"]["why_not"]
    # Nothing to train: generate jumps the queue; with one quest waiting it is just
    # priority 6 among the others.
    assert tm.pick() == ("generate_curriculum", "the daemon has nothing to train")
    # Starving again at the next pick (a short quest trained meanwhile): other work waiting
    # gets its turn first, then generate again, so the eval queue can never starve.
    yielded = tm.pick()
    assert yielded[0] != "generate_curriculum" and avail[yielded[0]]["available"], yielded
    assert tm.pick() == ("generate_curriculum", "the daemon has nothing to train")
    (home.queue("normal") / "waiting.jsonl").write_text(
        json.dumps(skills.generate("bin", 1, 1, 0)[0].as_example()) + "\n")
    assert tm.pick() == ("generate_curriculum", "queue low (1 < 2)")
    # Cooldown: health_check just ran -> not eligible; next_eligible = last + 600 s.
    _done(realm, "health_check")
    h = next(t for t in describe(realm.home, gpu_status(), check_work=True) if t["task_id"] == "health_check")
    assert not h["available"] and "cooling down" in h["why_not"] and h["next_eligible"] > h["last_run"]
    # Settings: raise vault_scan above generate -> it is picked first; a cooldown of 0
    # makes health_check eligible again at once.
    realm.tasks.set("vault_scan", priority=7)
    assert tm.pick()[0] == "vault_scan"
    realm.tasks.set("health_check", cooldown_s=0, priority=8)
    assert tm.pick()[0] == "health_check"
    realm.tasks.set("health_check", enabled=False)
    assert tm.pick()[0] == "vault_scan"
    # A run-now request beats everything, whatever its priority, and is taken once.
    assert realm.tasks.run("lineage_report") == {"task_id": "lineage_report", "requested": True}
    assert tm.pick() == ("lineage_report", "run-now request")
    assert tm.pick()[0] == "vault_scan"
    with pytest.raises(KeyError, match="unknown task"):
        realm.tasks.run("nope")
    with pytest.raises(ValueError, match="priority"):
        realm.tasks.set("vault_scan", priority=1000)
    with pytest.raises(ValueError, match="cooldown_s"):
        realm.tasks.set("vault_scan", cooldown_s=-1)


def fake_nvml(devices: list[tuple[int, int, int]], init_error: Exception | None = None,
              fail_at: str | None = None):
    """A pynvml module answering for `devices` (utilisation %, used, total bytes): the
    NVML calls gpu_status makes, so its parsing is checked on any machine."""
    import types
    from collections import namedtuple
    util, mem = namedtuple("Util", "gpu memory"), namedtuple("Mem", "used total free")
    calls = []

    def call(name, fn):
        def wrapped(*a):
            calls.append(name)
            if name == fail_at:
                raise RuntimeError(f"NVML error in {name}")
            return fn(*a)
        return wrapped
    m = types.ModuleType("pynvml")
    m.nvmlInit = call("init", lambda: (_ for _ in ()).throw(init_error) if init_error else None)
    m.nvmlShutdown = call("shutdown", lambda: None)
    m.nvmlDeviceGetCount = call("count", lambda: len(devices))
    m.nvmlDeviceGetHandleByIndex = call("handle", lambda i: i)
    m.nvmlDeviceGetUtilizationRates = call("util", lambda h: util(devices[h][0], 0))
    m.nvmlDeviceGetMemoryInfo = call("mem", lambda h: mem(devices[h][1], devices[h][2], 0))
    m.calls = calls
    return m


def test_nvml_readings_are_parsed_per_device(monkeypatch):
    import sys
    nvml = fake_nvml([(75, 3 * 2**30, 80 * 2**30), (5, 2**20, 80 * 2**30)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    gpu = gpu_status()
    assert gpu == {"gpus": [{"index": 0, "utilisation": 75.0, "memory_used": 3 * 2**30,
                             "memory_total": 80 * 2**30},
                            {"index": 1, "utilisation": 5.0, "memory_used": 2**20,
                             "memory_total": 80 * 2**30}], "detail": "2 GPU(s)"}
    assert nvml.calls[-1] == "shutdown", "NVML is shut down after every reading"
    assert resource_ok("gpu", gpu, 40) == (False, "GPU busy (75% >= 40%)"), "the busiest GPU counts"
    # No driver, or a device that fails mid-reading: "no GPU" with the reason, shut down.
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error=OSError("libnvidia-ml.so")))
    assert gpu_status() == {"gpus": [], "detail": "no GPU (OSError: libnvidia-ml.so)"}
    broken = fake_nvml([(10, 1, 2)], fail_at="mem")
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert gpu_status() == {"gpus": [], "detail": "no GPU (RuntimeError: NVML error in mem)"}
    assert broken.calls[-1] == "shutdown"
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    assert gpu_status() == {"gpus": [], "detail": "no GPU"}
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert gpu_status() == {"gpus": [], "detail": "no GPU (pynvml is not installed)"}


def test_gpu_awareness_follows_the_machine():
    import torch
    gpu = gpu_status()
    if torch.cuda.is_available():  # an NVIDIA machine: NVML lists its devices
        assert len(gpu["gpus"]) >= 1 and gpu["detail"] == f"{len(gpu['gpus'])} GPU(s)"
    else:  # no driver or no device: "no GPU", never an exception
        assert gpu["gpus"] == [] and gpu["detail"].startswith("no GPU")
    assert resource_ok("inference", gpu, 40) == (True, "inference on CPU (no GPU)")
    assert resource_ok("gpu", gpu, 40)[0] is False
    busy = {"gpus": [{"index": 0, "utilisation": 75.0}]}
    idle = {"gpus": [{"index": 0, "utilisation": 10.0}]}
    assert resource_ok("inference", busy, 40)[0] is False and resource_ok("gpu", idle, 40)[0]
    assert resource_ok("none", busy, 40)[0]


def test_eval_claim_and_level_up_once(home):
    realm = Realm(home.home)
    req = {"checkpoint": "checkpoint-10-x", "step": 10, "path": str(home.dio_mini), "skill": "bin"}
    # A live process holds the claim: this run leaves the checkpoint alone.
    claims = home.tasks / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    (claims / "eval-checkpoint-10-x").write_text(str(os.getppid()))
    assert evalqueue.evaluate(realm.home, req)["status"] == "claimed elsewhere"
    # A claim whose process died is taken over, and the eval runs once.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (claims / "eval-checkpoint-10-x").write_text(str(dead.pid))
    done = evalqueue.evaluate(realm.home, req, size=8)
    assert done["status"] == "done" and done["n"] == 8
    assert evalqueue.evaluate(realm.home, req, size=8)["status"] == "already evaluated"
    assert realm.sql("SELECT count(*) AS n FROM evals")[0]["n"] == 1
    # A gone checkpoint is answered (skipped), so the queue never waits on it.
    gone = {**req, "checkpoint": "checkpoint-20-y", "path": str(home.home / "nowhere")}
    assert evalqueue.evaluate(realm.home, gone)["status"] == "skipped"
    # Level-up events: exactly one per (skill, level).
    for _ in range(2):
        grading.level_up(realm.home, "bin", 1, 2, None, "checkpoint-10-x")
    ups = realm.sql("SELECT message, data FROM events WHERE kind = 'skill_level_up'")
    assert len(ups) == 1 and ups[0]["message"] == "Skill level up! BIN 2"
    assert json.loads(ups[0]["data"])["from_level"] == 1


def test_curriculum_mix_and_config(home):
    probs = curriculum.problems("bin", 6, 100, 0.25, 4, seed=3)
    levels = [p.level for p in probs]
    assert levels[0] == 6 and levels.count(6) == 75
    assert sorted(set(levels) - {6}) == [2, 3, 4, 5]
    assert curriculum.parse_name(curriculum.quest_name("bin", 6, 3)) == ("bin", 6)
    plans = Realm(home.home).skills.curriculum()
    bin_plan = next(p for p in plans if p["skill"] == "bin")
    assert bin_plan["enabled"] and bin_plan["level"] == 1 and bin_plan["review_levels"] == []
    assert curriculum.pick(plans, {})["skill"] == "bin"
    home.config_file.write_text(TEST_TOML + "\n[curriculum.skills.xyz]\npriority = 1\n")
    with pytest.raises(ConfigError, match="unknown skill"):
        load_config(home.home)
    home.config_file.write_text(TEST_TOML + "\n[curriculum]\nreview_fraction = 1.5\n")
    with pytest.raises(ConfigError, match="review_fraction"):
        load_config(home.home)


def test_generate_withdraws_quests_of_a_level_left_behind(home):
    realm = Realm(home.home)
    stale = home.queue("normal") / curriculum.quest_name("bin", 3, 1)
    stale.write_text(json.dumps(skills.generate("bin", 3, 1, 0)[0].as_example()) + "\n")
    out = realm.skills.curriculum_quest(seed=5)
    assert out["withdrawn"] == [stale.name] and not stale.exists()
    assert out["level"] == 1 and (home.inbox / out["quest"]).is_file()
    assert realm.quests.waiting() == 1


@pytest.mark.slow
def test_idle_loop_bench_smoke(tmp_path):
    """bench/idle_loop.py end to end: `realm play --headless` on an empty realm, sampled
    until the curriculum has written a quest (5 minutes at most: a limit, not a target),
    and recorded (no assertion on how far DIO got)."""
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, "bench/idle_loop.py", "--minutes", "5", "--sample-s", "3",
                          "--until-quests", "1",
                          "--out", str(out), "--home", str(tmp_path / "realm")],
                         cwd=REPO, capture_output=True, text=True, timeout=480,
                         env={k: v for k, v in os.environ.items() if not k.startswith("REALM_")})
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads((out / "idle_loop.json").read_text())
    assert {"level_up_minutes", "eval_curve", "primitive_curve", "quests_generated", "checkpoints",
            "sparring_examples", "machine", "date"} <= set(figures)
    assert figures["quests_generated"] >= 1  # the curriculum wrote quests unattended
    assert "idle_loop" in (tmp_path / "RESULTS.md").read_text()


@pytest.mark.slow
def test_rest_routes(realm_home, procs, tmp_path):
    from ..helpers import api, start_lab
    _, base = start_lab(procs, realm_home, tmp_path, REALM_WEAVER="0")
    tasks = api(base, "GET", "tasks").json()
    assert tasks[0]["task_id"] == "process_eval_queue"
    assert {"last_run", "next_eligible", "output"} <= set(tasks[0])
    checked = api(base, "GET", "tasks?check=1").json()
    assert next(t for t in checked if t["task_id"] == "generate_curriculum")["available"]
    assert api(base, "POST", "tasks/vault_scan/run").json() == {"task_id": "vault_scan", "requested": True}
    assert (realm_home.tasks / "requests" / "vault_scan.json").is_file()
    assert api(base, "POST", "tasks/nope/run").status_code == 404
    changed = api(base, "POST", "tasks/vault_scan", json={"priority": 9, "cooldown_s": 5, "enabled": False})
    assert changed.status_code == 200 and changed.json()["priority"] == 9 and not changed.json()["enabled"]
    assert api(base, "POST", "tasks/vault_scan", json={"priority": "high"}).status_code == 400
    assert api(base, "POST", "tasks/vault_scan", json={"colour": 1}).status_code == 400
    curriculum_ = api(base, "GET", "curriculum").json()
    assert curriculum_[0]["skill"] == "bin" and curriculum_[0]["level"] == 1
    from ..evals.test_skill_tooling import check_skill_routes
    check_skill_routes(base)


def test_old_outputs_are_pruned_newest_kept(tmp_path):
    realm = Realm(tmp_path / "realm")
    folder = realm.paths.tasks / "vault_scan"
    folder.mkdir(parents=True)
    names = [f"2026010{d}-120000-000000" for d in range(1, 6)]
    for n in names:
        (folder / f"{n}.ipynb").write_text("{}")
        (folder / f"{n}.json").write_text("{}")
    (realm.paths.tasks / "health_check").mkdir()
    (realm.paths.tasks / "health_check" / f"{names[0]}.ipynb").write_text("{}")
    taskmaster.prune_outputs(realm.home, "vault_scan", 2)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{n}{ext}" for n in names[-2:] for ext in (".ipynb", ".json"))
    assert (realm.paths.tasks / "health_check" / f"{names[0]}.ipynb").exists(), "other tasks untouched"
