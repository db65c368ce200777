"""The Task Master's settings and bookkeeping, fast (services/taskmaster.py): parameters
checked against each task's own types, settings layered registry -> realm.toml ->
tasks/settings.json with every problem named, each task's row (cooldown, failure
back-off, why it may not run), run-now requests and refusals recorded in the ledger."""

from __future__ import annotations

import json
import os
import sys

import pytest

from realm_kernel.services import taskmaster
from realm_kernel.services.taskmaster import (
    FAILURE_BACKOFF_S,
    TaskMaster,
    check_parameter,
    describe,
    effective,
    registry,
    request_run,
    set_task,
)
from realm_kernel.store.home import Home
from realm_kernel.train.threads import TASKMASTER_STATUS

from ..helpers import TEST_TOML
from .test_taskmaster import fake_nvml


@pytest.fixture
def home(realm_home) -> Home:
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true"))
    return Home(realm_home.home, writer="taskmaster")


def test_a_parameter_keeps_its_tasks_type():
    tasks = registry()
    spar, evq, tgt = tasks["sparring_bin"], tasks["process_eval_queue"], tasks["targeted_sparring"]
    assert check_parameter(spar, "count", 80) == 80 and check_parameter(spar, "skill", "sy") == "sy"
    got = check_parameter(tgt, "threshold", 1)
    assert got == 1.0 and isinstance(got, float), "an int given for a float is that float"
    assert check_parameter(tgt, "threshold", 0.5) == 0.5 and check_parameter(evq, "eval_size", 0) == 0
    with pytest.raises(ValueError) as e:
        check_parameter(spar, "size", 1)
    assert str(e.value) == "task 'sparring_bin' has no parameter 'size'; parameters: ['count', 'skill']"
    with pytest.raises(ValueError, match="parameters: none"):
        check_parameter(tasks["health_check"], "x", 1)
    for key, bad, want in (("count", 1.5, "int"), ("count", True, "int"), ("count", "8", "int"),
                           ("skill", 3, "str")):
        with pytest.raises(ValueError) as e:
            check_parameter(spar, key, bad)
        assert str(e.value) == f"task 'sparring_bin': parameter {key!r} must be {want}, got {bad!r}"
    for bad in (True, "0.5", None):
        with pytest.raises(ValueError, match="'threshold' must be float"):
            check_parameter(tgt, "threshold", bad)
    with pytest.raises(ValueError) as e:
        check_parameter(spar, "count", -1)
    assert str(e.value) == "task 'sparring_bin': parameter 'count' must be >= 0, got -1"
    with pytest.raises(ValueError, match="must be >= 0, got -0.5"):
        check_parameter(tgt, "threshold", -0.5)


def test_settings_layer_over_the_registry_and_name_their_problems(home):
    home.paths.config_file.write_text(TEST_TOML + """
[taskmaster.tasks.sparring_bin]
priority = 3
parameters = {count = 80, colour = "red"}
[taskmaster.tasks.vault_scan]
enabled = false
cooldown_s = 60
[taskmaster.tasks.nope]
priority = 1
""")
    problems: dict[str, list[str]] = {}
    tasks = effective(home, problems)
    assert list(tasks) == list(registry())
    spar = tasks["sparring_bin"]
    assert (spar.priority, spar.parameters, spar.enabled) == (3, {"skill": "bin", "count": 80}, True)
    assert (tasks["vault_scan"].enabled, tasks["vault_scan"].cooldown_s) == (False, 60)
    assert tasks["health_check"] == registry()["health_check"]
    assert problems["_"] == ["realm.toml: taskmaster.tasks.nope: unknown task"]
    assert problems["sparring_bin"] == ["realm.toml: taskmaster.tasks.sparring_bin: task 'sparring_bin' "
                                        "has no parameter 'colour'; parameters: ['count', 'skill']"]
    # Run-time settings go over realm.toml's.
    row = set_task(home, "sparring_bin", priority=5, parameters={"count": 90})
    assert row["priority"] == 5 and row["parameters"] == {"skill": "bin", "count": 90}
    assert "realm.toml: taskmaster.tasks.nope: unknown task" in row["problems"]
    assert json.loads(taskmaster.settings_file(home).read_text()) == {
        "sparring_bin": {"priority": 5, "parameters": {"count": 90}}}
    set_task(home, "sparring_bin", enabled=False, cooldown_s=10, parameters={"skill": "sy"})
    assert json.loads(taskmaster.settings_file(home).read_text())["sparring_bin"] == {
        "priority": 5, "enabled": False, "cooldown_s": 10, "parameters": {"count": 90, "skill": "sy"}}
    spar = effective(home)["sparring_bin"]
    assert (spar.priority, spar.enabled, spar.cooldown_s, spar.parameters) == (
        5, False, 10, {"skill": "sy", "count": 90})
    said = home.ledger.query("SELECT message, data FROM events WHERE kind = 'task_settings' ORDER BY ts")
    assert len(said) == 2 and said[0]["message"].startswith("Task sparring_bin: ")
    assert json.loads(said[-1]["data"])["cooldown_s"] == 10
    # A hand-edited settings file with a wrong value: named, the default kept.
    taskmaster.settings_file(home).write_text(json.dumps({"targeted_sparring": {"parameters": {
        "threshold": "high"}}}))
    problems = {}
    assert effective(home, problems)["targeted_sparring"].parameters["threshold"] == 0.8
    assert problems["targeted_sparring"] == ["tasks/settings.json: task 'targeted_sparring': parameter "
                                             "'threshold' must be float, got 'high'"]
    taskmaster.settings_file(home).write_text("[1, 2]")
    assert taskmaster.load_settings(home) == {}


@pytest.mark.parametrize("kw, message", [
    ({"enabled": "yes"}, "enabled must be true or false, got 'yes'"),
    ({"priority": True}, "priority must be an integer 0-100, got True"),
    ({"priority": 101}, "priority must be an integer 0-100, got 101"),
    ({"priority": -1}, "priority must be an integer 0-100, got -1"),
    ({"priority": 2.0}, "priority must be an integer 0-100, got 2.0"),
    ({"cooldown_s": False}, "cooldown_s must be 0-604800 seconds, got False"),
    ({"cooldown_s": 604801}, "cooldown_s must be 0-604800 seconds, got 604801"),
    ({"cooldown_s": "5"}, "cooldown_s must be 0-604800 seconds, got '5'"),
    ({"parameters": [1]}, "parameters must be an object of name -> value, got [1]"),
    ({"parameters": {"count": "x"}}, "parameter 'count' must be int, got 'x'"),
])
def test_a_bad_setting_is_refused_naming_it_and_nothing_is_written(home, kw, message):
    with pytest.raises(ValueError) as e:
        set_task(home, "sparring_bin", **kw)
    assert message in str(e.value)
    assert not taskmaster.settings_file(home).exists()


def test_the_edges_of_each_setting_are_accepted(home):
    set_task(home, "sparring_bin", priority=0, cooldown_s=0)
    set_task(home, "vault_scan", priority=100, cooldown_s=604800, enabled=True)
    saved = json.loads(taskmaster.settings_file(home).read_text())
    assert saved == {"sparring_bin": {"priority": 0, "cooldown_s": 0},
                     "vault_scan": {"priority": 100, "cooldown_s": 604800, "enabled": True}}
    with pytest.raises(KeyError, match="unknown task 'nope'; known: \\["):
        set_task(home, "nope", priority=1)


def test_each_tasks_row_says_when_it_may_run_next_and_why_not(home):
    rows = describe(home)
    assert [r["priority"] for r in rows] == sorted((r["priority"] for r in rows), reverse=True)
    assert rows[0]["task_id"] == "process_eval_queue" and "available" not in rows[0]
    tie = [r["task_id"] for r in rows if r["priority"] == 9]
    assert tie == ["sparring_bin", "sparring_sy"], "equal priorities in id order"
    health = next(r for r in rows if r["task_id"] == "health_check")
    assert health | {"description": ""} == {
        "task_id": "health_check", "name": "Health check", "priority": 4, "resource": "none",
        "cooldown_s": 600, "enabled": True, "notebook": "health_check.ipynb", "parameters": {},
        "description": "", "problems": [], "last_run": None, "last_status": None,
        "next_eligible": None, "output": None, "detail": None}
    home.ledger.append("tasks", [{"task_id": "health_check", "status": "done", "priority": 4,
                                  "output": "/o.ipynb", "detail": "fine"}])
    home.ledger.append("tasks", [{"task_id": "generate_curriculum", "status": "failed", "priority": 6,
                                  "detail": "boom"}])
    rows = {r["task_id"]: r for r in describe(home, check_work=True)}
    h = rows["health_check"]
    assert (h["last_status"], h["output"], h["detail"]) == ("done", "/o.ipynb", "fine")
    last = taskmaster.datetime.fromisoformat(h["last_run"]).timestamp()
    nxt = taskmaster.datetime.fromisoformat(h["next_eligible"]).timestamp()
    assert nxt == pytest.approx(last + 600, abs=1)
    assert not h["available"] and h["why_not"].startswith("cooling down (")
    assert h["why_not"].endswith(" s left)")
    g = rows["generate_curriculum"]  # cooldown 0, but a failure backs off
    nxt = taskmaster.datetime.fromisoformat(g["next_eligible"]).timestamp()
    assert nxt == pytest.approx(taskmaster.datetime.fromisoformat(g["last_run"]).timestamp()
                                + FAILURE_BACKOFF_S, abs=1)
    assert not g["available"] and "cooling down" in g["why_not"]
    v = rows["vault_scan"]
    assert v["available"] and v["why_not"] == "" and v["work"] == "runs on its cooldown"
    set_task(home, "vault_scan", enabled=False)
    v = next(r for r in describe(home, check_work=True) if r["task_id"] == "vault_scan")
    assert not v["available"] and v["why_not"] == "disabled" and "work" not in v
    assert not any(r["available"] for r in describe(home, check_work=True, first_available=True))
    set_task(home, "vault_scan", enabled=True)
    first = describe(home, check_work=True, first_available=True)  # the loop's pick: stops there
    assert first[-1]["task_id"] == "vault_scan" and first[-1]["available"]
    assert len(first) < len(registry()) and not any(r["available"] for r in first[:-1])


def test_run_now_requests_are_recorded_and_taken_oldest_first(home):
    assert request_run(home, "vault_scan") == {"task_id": "vault_scan", "requested": True}
    request_run(home, "health_check")
    old = taskmaster.requests_dir(home) / "vault_scan.json"
    os.utime(old, (1, 1))
    (taskmaster.requests_dir(home) / "not_a_task.json").write_text("{}")
    assert taskmaster.pending_requests(home) == ["vault_scan", "health_check"]
    queued = home.ledger.query("SELECT task_id, status, priority, notebook, detail FROM tasks ORDER BY ts")
    assert queued[0] == {"task_id": "vault_scan", "status": "queued", "priority": 3,
                         "notebook": "vault_scan.ipynb", "detail": "run-now requested"}
    assert json.loads(old.read_text())["task_id"] == "vault_scan"
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        request_run(home, "nope")


def test_a_task_that_cannot_run_here_is_recorded_as_refused(home, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(95, 20 * 2**30, 24 * 2**30)]))
    tm = TaskMaster(home.paths.home)
    tm.reload_config()
    out = tm.run("model_warmup")
    assert out == {"task_id": "model_warmup", "status": "failed", "detail": "GPU busy (95% >= 40%)"}
    row = home.ledger.query("SELECT * FROM tasks WHERE task_id = 'model_warmup'")[-1]
    assert (row["status"], row["detail"], row["priority"], row["notebook"], row["name"]) == (
        "failed", "cannot run: GPU busy (95% >= 40%)", 2, "model_warmup.ipynb", "Model warm-up")
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        tm.run("nope")
    assert tm.placed() is False, "one machine: nothing is placed elsewhere"


def test_the_task_master_says_its_state_and_gives_its_kernels_their_share(home, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "99")
    monkeypatch.setenv("MKL_NUM_THREADS", "99")
    home.paths.config_file.write_text(TEST_TOML.replace("enabled = false",
                                                        "enabled = true\nkernel_threads = 3"))
    tm = TaskMaster(home.paths.home)
    tm.reload_config()
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
    tm.last = {"task_id": "x"}
    tm.heartbeat("running", task="vault_scan")
    status = json.loads((home.paths.status / TASKMASTER_STATUS).read_text())
    assert (status["pid"], status["state"], status["last"], status["task"]) == (
        os.getpid(), "running", {"task_id": "x"}, "vault_scan")
    home.paths.config_file.write_text("[taskmaster]\nkernel_threads = -1\n")
    tm.reload_config()  # a broken realm.toml: the last good config stays
    assert tm.config.taskmaster.kernel_threads == 3


def test_a_busy_gpu_holds_back_inference_unless_the_daemon_lends_it_or_a_node_answers(home):
    busy = {"gpus": [{"index": 0, "utilisation": 90.0}], "detail": "1 GPU(s)"}

    def why_not(**kw) -> str:
        rows = describe(home, busy, check_work=True, **kw)
        return next(r for r in rows if r["task_id"] == "process_eval_queue")["why_not"]

    assert why_not() == "GPU busy (90% >= 40%)", "by default nothing is lent or placed"
    assert why_not(lent=True) == "0 checkpoint(s) await their eval"
    assert why_not(placed=True) == "0 checkpoint(s) await their eval"
    cleanup = next(r for r in describe(home, busy, check_work=True) if r["task_id"] == "checkpoint_cleanup")
    assert cleanup["why_not"] == "no checkpoint yet"


def test_the_loop_wakes_says_its_state_and_rests_on_sigterm(home):
    """loop() in this thread (disabled: it runs no notebook); SIGTERM,
    as the Weaver sends it, ends it in order."""
    import signal
    import threading

    from ..helpers import wait_for
    home.paths.config_file.write_text(TEST_TOML)  # [taskmaster] enabled = false
    tm = TaskMaster(home.paths.home)
    status = home.paths.status / TASKMASTER_STATUS
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def stop_when_idle():
        try:
            wait_for(lambda: status.exists() and json.loads(status.read_text())["state"] == "disabled", 60,
                     "the Task Master's first round")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=stop_when_idle)
    t.start()
    try:
        tm.loop()
    finally:
        t.join()
        for s, h in before.items():
            signal.signal(s, h)
        os.close(tm._lock_fd)
    assert json.loads(status.read_text())["state"] == "offline"
    said = home.ledger.query("SELECT kind, message FROM events WHERE kind LIKE 'taskmaster_%' ORDER BY ts")
    assert said == [{"kind": "taskmaster_started", "message": f"The Task Master wakes (pid {os.getpid()})"},
                    {"kind": "taskmaster_stopped", "message": f"The Task Master rests (pid {os.getpid()})"}]
