"""The Task Master: runs the home's pipeline notebooks (pipelines/*.ipynb) with papermill
whenever they have work, one at a time, highest priority first.

A task is a registry entry: id, notebook, priority (higher first), resource ("none";
"inference": runs on CPU where there is no GPU, else only while the GPUs are under the
utilisation threshold; "gpu": needs a GPU under the threshold), cooldown, enabled and
notebook parameters, plus a has-work check (eval only when a checkpoint awaits its eval,
generate only when the queue runs low). Each run's output notebook is kept under
tasks/<task_id>/<timestamp>.ipynb and every status change (queued, running, done, failed, cancelled)
is a row of the ledger's `tasks` table; the current state is the `task_status` view.
A failing notebook is recorded with its output notebook and never stops the loop.

Run-now requests (Realm.tasks.run) are files in tasks/requests/, written atomically and
taken first. Settings changed at run time (Realm.tasks.set) live in tasks/settings.json.
One Task Master per home home (flock on tasks/taskmaster.lock).

    python -m realm_kernel.services.taskmaster --home HOME     # the loop (the Weaver runs this)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..evals.curriculum import plan_of
from ..evals.evalqueue import pending
from ..evals.skillbook import eval_report
from ..quests.queue import list_queue, waiting
from ..store.checkpoints import last_checkpoint_time
from ..store.config import ConfigError, RealmConfig
from ..store.home import Home
from ..store.paths import PRIORITIES, atomic_write_json, read_json, resource_dir
from ..store.process import service_main, take_instance_lock
from ..store.queries import latest_eval_accuracy, task_history
from ..store.status import write_status
from ..train.threads import TASKMASTER_STATUS as STATUS  # the trainer reads it (ThreadShare)
from ..train.threads import cpu_share
from . import gpu_yield

log = logging.getLogger("home.taskmaster")
PIPELINES = resource_dir("pipelines")
RESOURCES = ("none", "gpu", "inference")
FAILURE_BACKOFF_S = 30.0  # a failed task waits at least this long before its next try


STARVING_PICK = "generate_curriculum"  # taken first whenever the daemon has nothing to train


class TaskMasterAlreadyRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class TaskDef:
    task_id: str
    name: str
    notebook: str
    priority: int
    resource: str
    cooldown_s: float
    enabled: bool = True
    parameters: dict = field(default_factory=dict)
    work: str = "always"  # which has-work check applies (WORK below)
    description: str = ""
    yields_gpu: bool = False  # may ask the daemon to lend it the GPU (services/gpu_yield.py)


# Priorities follow the seed's Task Master (eval queue 10, sparring 9, large sparring 8,
# generate 6, health/validate 4, cleanup/scan 3, warmup/lineage 2).
REGISTRY: tuple[TaskDef, ...] = (
    TaskDef("process_eval_queue", "Eval queue", "eval.ipynb", 10, "inference", 0,
            parameters={"max_checkpoints": 6, "eval_size": 0}, work="eval", yields_gpu=True,
            description="Evaluate each saved checkpoint once on its skill's current level"),
    TaskDef("sparring_bin", "Sparring (BIN)", "sparring.ipynb", 9, "inference", 600,
            parameters={"skill": "bin", "count": 40}, work="sparring",
            description="Fresh problems -> wrong answers -> 3 examples each -> queue/high"),
    TaskDef("sparring_sy", "Sparring (SY)", "sparring.ipynb", 9, "inference", 600,
            parameters={"skill": "sy", "count": 40}, work="sparring",
            description="Fresh SY problems -> wrong answers -> 3 examples each -> queue/high"),
    TaskDef("sparring_bin_large", "Large sparring (BIN)", "sparring.ipynb", 8, "inference", 3600,
            parameters={"skill": "bin", "count": 200}, work="sparring",
            description="A long sparring session"),
    TaskDef("targeted_sparring", "Targeted sparring", "targeted_sparring.ipynb", 7, "none", 600,
            parameters={"threshold": 0.8, "count": 200}, work="weak",
            description="Practice weighted to primitives under the threshold"),
    TaskDef("generate_curriculum", "Generate quests", "generate.ipynb", 6, "none", 0,
            work="generate", description="Curriculum picks skill + level -> quest into the inbox"),
    TaskDef("health_check", "Health check", "health_check.ipynb", 4, "none", 600,
            description="Daemon, the Weaver's services, ledger, disk and GPU at a glance"),
    TaskDef("validate_queue", "Validate queue", "validate_queue.ipynb", 4, "none", 900, work="queue",
            description="Re-validate every queued quest"),
    TaskDef("checkpoint_cleanup", "Checkpoint cleanup", "checkpoint_cleanup.ipynb", 3, "none", 300,
            work="checkpoints",
            description="Retention through the vault (evaluated checkpoints only)"),
    TaskDef("vault_scan", "Vault scan", "vault_scan.ipynb", 3, "none", 1800,
            description="Register the home's assets in the vault"),
    TaskDef("model_warmup", "Model warm-up", "model_warmup.ipynb", 2, "inference", 1800,
            work="checkpoints", description="Load the champion (or newest) and answer one problem"),
    TaskDef("lineage_report", "Lineage report", "report.ipynb", 2, "none", 1800, work="checkpoints",
            description="Which data trained which checkpoint; progress plots"),
)


def registry() -> dict[str, TaskDef]:
    return {t.task_id: t for t in REGISTRY}


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


# -- GPU awareness --------------------------------------------------------------------
def gpu_status() -> dict:
    """Utilisation of every NVIDIA GPU through NVML. No pynvml, no driver or no device all
    mean "no GPU" (a CPU-only machine is a valid home), never an error."""
    try:
        import pynvml
    except ImportError:
        return {"gpus": [], "detail": "no GPU (pynvml is not installed)"}
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError and OSError alike: no driver here
        return {"gpus": [], "detail": f"no GPU ({type(e).__name__}: {e})"}
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            gpus.append({"index": i, "utilisation": float(util.gpu),
                         "memory_used": int(mem.used), "memory_total": int(mem.total)})
        return {"gpus": gpus, "detail": f"{len(gpus)} GPU(s)" if gpus else "no GPU"}
    except Exception as e:
        return {"gpus": [], "detail": f"no GPU ({type(e).__name__}: {e})"}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def resource_ok(resource: str, gpu: dict, threshold: float, lent: bool = False,
                placed: bool = False) -> tuple[bool, str]:
    """Whether a task may run now as far as this machine's GPUs go; `placed`: cluster
    mode has a live eval node, where the task's answering runs instead of on this card."""
    gpus = gpu.get("gpus") or []
    busiest = max((g["utilisation"] for g in gpus), default=None)
    if resource == "none":
        return True, "needs no GPU"
    if placed:
        return True, "answered on the cluster's eval nodes (cluster mode)"
    if lent:
        return True, "the daemon lends the GPU between quests"
    if not gpus:
        return (False, "needs a GPU; " + gpu.get("detail", "no GPU")) if resource == "gpu" else (
            True, "inference on CPU (no GPU)")
    if busiest is not None and busiest >= threshold:
        return False, f"GPU busy ({busiest:.0f}% >= {threshold:.0f}%)"
    return True, f"GPU idle enough ({busiest:.0f}% < {threshold:.0f}%)"


# -- has work -------------------------------------------------------------------------
def _ts(row: dict | None) -> float | None:
    return row["ts"].timestamp() if row and row.get("ts") is not None else None


def _latest_checkpoint_ts(home: Home) -> float | None:
    ts = last_checkpoint_time(home.ledger)
    return ts.timestamp() if ts is not None else None


def _work_eval(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    n = len(pending(home))
    return n > 0, f"{n} checkpoint(s) await their eval"


# Sparring learns from a checkpoint's mistakes; while it gets most answers wrong the
# curriculum's own problems teach more (and sparring's judge-the-answer examples would
# crowd them out of the high queue).
SPARRING_MIN_ACCURACY = 0.5


def _work_sparring(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    skill = task.parameters.get("skill")
    plan = next((p for p in plan_of(home) if p["skill"] == skill and p["enabled"]), None)
    if plan is None:
        return False, f"{skill} is not on the curriculum"
    latest = latest_eval_accuracy(home.ledger, skill, plan["level"])
    if latest is None or latest < SPARRING_MIN_ACCURACY:
        return False, (f"{skill} L{plan['level']} not yet at {SPARRING_MIN_ACCURACY:.0%} "
                       "in its latest eval (the curriculum teaches first)")
    ck = _latest_checkpoint_ts(home)
    if ck is None:
        return False, "no checkpoint yet"
    if last_done is not None and ck <= last_done:
        return False, "no new checkpoint since the last session"
    return True, "a new checkpoint to spar with"


def _work_weak(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    threshold = float(task.parameters.get("threshold", 0.8))
    for p in plan_of(home):
        if not p["enabled"]:
            continue
        rep = eval_report(home.ledger, p["skill"], threshold)
        newest = rep["evals"][0]["ts"].timestamp() if rep["evals"] else None
        # Only primitives the level mixes (single-primitive levels are what the
        # curriculum already practises).
        if rep["weak_primitives"] and len(rep["primitive_accuracy"]) > 1 and (
                last_done is None or (newest or 0) > last_done):
            return True, f"{p['skill']}: {len(rep['weak_primitives'])} weak primitive(s)"
    return False, "no weak primitive in a mixed level"


def _work_generate(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    cfg = home.safe_config().curriculum
    waiting_now = waiting(home.paths)
    if waiting_now >= cfg.queue_low:
        return False, f"{waiting_now} quest(s) waiting (>= {cfg.queue_low})"
    if not any(p["enabled"] for p in plan_of(home)):
        return False, "no skill is enabled on the curriculum"
    return True, f"queue low ({waiting_now} < {cfg.queue_low})"


def _work_queue(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    queue = list_queue(home.paths)  # one listing of the queue folders
    n = sum(len(queue[p]) for p in PRIORITIES)
    return n > 0, f"{n} queued quest(s)"


def _work_checkpoints(home: Home, task: TaskDef, last_done: float | None) -> tuple[bool, str]:
    ck = _latest_checkpoint_ts(home)
    return ck is not None, "checkpoints exist" if ck else "no checkpoint yet"


WORK: dict[str, Callable[[Home, TaskDef, float | None], tuple[bool, str]]] = {
    "always": lambda home, task, last: (True, "runs on its cooldown"),
    "eval": _work_eval, "sparring": _work_sparring, "weak": _work_weak,
    "generate": _work_generate, "queue": _work_queue, "checkpoints": _work_checkpoints,
}


# -- settings and requests (files other processes write) ------------------------------
def settings_file(home: Home) -> Path:
    return home.paths.tasks / "settings.json"


def requests_dir(home: Home) -> Path:
    d = home.paths.tasks / "requests"
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_settings(home: Home) -> dict[str, dict]:
    data = read_json(settings_file(home), {})
    return data if isinstance(data, dict) else {}


def check_parameter(task: TaskDef, key: str, value: Any) -> Any:
    """A notebook parameter value of the task's own type, or ValueError naming both."""
    if key not in task.parameters:
        raise ValueError(f"task {task.task_id!r} has no parameter {key!r}; "
                         f"parameters: {sorted(task.parameters) or 'none'}")
    want = type(task.parameters[key])
    ok = (isinstance(value, bool) if want is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if want is float else
          isinstance(value, int) and not isinstance(value, bool) if want is int else
          isinstance(value, str))
    if not ok:
        raise ValueError(f"task {task.task_id!r}: parameter {key!r} must be {want.__name__}, got {value!r}")
    if want in (int, float) and value < 0:
        raise ValueError(f"task {task.task_id!r}: parameter {key!r} must be >= 0, got {value!r}")
    return float(value) if want is float else value


def _layer(t: TaskDef, s: dict, where: str, problems: list[str]) -> TaskDef:
    """One layer of settings over a task: enabled / priority / cooldown_s / parameters."""
    t = replace(t, **{k: s[k] for k in ("enabled", "priority", "cooldown_s") if s.get(k) is not None})
    params = dict(t.parameters)
    for key, value in (s.get("parameters") or {}).items():
        try:
            params[key] = check_parameter(t, key, value)
        except ValueError as e:
            problems.append(f"{where}: {e}")
    return replace(t, parameters=params)


def effective(home: Home, problems: dict[str, list[str]] | None = None) -> dict[str, TaskDef]:
    """The registry, then realm.toml's [taskmaster.tasks.<id>], then run-time settings
    (tasks/settings.json: the Scheduler page and the API). Problems (an unknown task or
    parameter, a wrong type) go into `problems` per task; the default stays."""
    out = {}
    problems = {} if problems is None else problems
    settings = load_settings(home)
    toml = home.safe_config().taskmaster.tasks
    for tid in sorted(set(toml) - set(registry())):
        problems.setdefault("_", []).append(f"realm.toml: taskmaster.tasks.{tid}: unknown task")
    for tid, t in registry().items():
        mine = problems.setdefault(tid, [])
        if tid in toml:
            t = _layer(t, toml[tid].model_dump(), f"realm.toml: taskmaster.tasks.{tid}", mine)
        t = _layer(t, settings.get(tid) or {}, "tasks/settings.json", mine)
        out[tid] = t
    return out


def set_task(home: Home, task_id: str, enabled: bool | None = None, priority: int | None = None,
             cooldown_s: float | None = None, parameters: dict | None = None) -> dict:
    if task_id not in registry():
        raise KeyError(f"unknown task {task_id!r}; known: {sorted(registry())}")
    if parameters is not None and not isinstance(parameters, dict):
        raise ValueError(f"parameters must be an object of name -> value, got {parameters!r}")
    checked = {k: check_parameter(registry()[task_id], k, v) for k, v in (parameters or {}).items()}
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"enabled must be true or false, got {enabled!r}")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= 100):
        raise ValueError(f"priority must be an integer 0-100, got {priority!r}")
    if cooldown_s is not None and (isinstance(cooldown_s, bool) or not isinstance(cooldown_s, int | float)
                                   or not 0 <= cooldown_s <= 7 * 86400):
        raise ValueError(f"cooldown_s must be 0-604800 seconds, got {cooldown_s!r}")
    settings = load_settings(home)
    mine = dict(settings.get(task_id) or {})
    for k, v in (("enabled", enabled), ("priority", priority), ("cooldown_s", cooldown_s)):
        if v is not None:
            mine[k] = v
    if checked:
        mine["parameters"] = {**(mine.get("parameters") or {}), **checked}
    settings[task_id] = mine
    atomic_write_json(settings_file(home), settings)
    home.ledger.event("task_settings", f"Task {task_id}: {mine}", json.dumps(mine))
    return next(t for t in describe(home) if t["task_id"] == task_id)


def request_run(home: Home, task_id: str) -> dict:
    if task_id not in registry():
        raise KeyError(f"unknown task {task_id!r}; known: {sorted(registry())}")
    atomic_write_json(requests_dir(home) / f"{task_id}.json", {"task_id": task_id, "at": time.time()})
    t = registry()[task_id]
    home.ledger.append("tasks", [{"task_id": task_id, "name": t.name, "status": "queued",
                                   "priority": t.priority, "notebook": t.notebook,
                                   "detail": "run-now requested"}])
    return {"task_id": task_id, "requested": True}


def pending_requests(home: Home) -> list[str]:
    reqs = sorted(requests_dir(home).glob("*.json"), key=lambda p: p.stat().st_mtime)
    return [p.stem for p in reqs if p.stem in registry()]


# -- state from the ledger --------------------------------------------------------------
def history(home: Home) -> dict[str, dict]:
    """Per task: the latest row, the last finished run (done or failed)."""
    return {r["task_id"]: r for r in task_history(home.ledger)}


def describe(home: Home, gpu: dict | None = None, check_work: bool = False,
             first_available: bool = False, lent: bool = False, placed: bool = False) -> list[dict]:
    """Every task as Realm.tasks.list() returns it (highest priority first). With
    first_available, stops at the first task that may run now (the loop's pick); `lent`:
    the daemon lends the GPU, so the tasks that may ask for it need not wait for it;
    `placed`: cluster mode has a live eval node, so inference tasks need no local GPU."""
    hist = history(home)
    cfg = home.safe_config().taskmaster
    gpu = gpu if gpu is not None else {"gpus": [], "detail": "not checked"}
    now = time.time()
    out = []
    problems: dict[str, list[str]] = {}
    for t in sorted(effective(home, problems).values(), key=lambda t: (-t.priority, t.task_id)):
        h = hist.get(t.task_id)
        last = _ts(h)
        wait = max(t.cooldown_s, FAILURE_BACKOFF_S) if h and h["status"] == "failed" else t.cooldown_s
        nxt = last + wait if last else None
        row = {"task_id": t.task_id, "name": t.name, "priority": t.priority, "resource": t.resource,
               "cooldown_s": t.cooldown_s, "enabled": t.enabled, "notebook": t.notebook,
               "parameters": t.parameters, "description": t.description,
               "problems": problems.get(t.task_id, []) + problems.get("_", []),
               "last_run": iso(last), "last_status": h["status"] if h else None,
               "next_eligible": iso(nxt), "output": h["output"] if h else None,
               "detail": h["detail"] if h else None}
        if check_work:
            ok, why = resource_ok(t.resource, gpu, cfg.gpu_threshold, lent and t.yields_gpu, placed)
            reasons = []
            if not t.enabled:
                reasons.append("disabled")
            if nxt and nxt > now:
                reasons.append(f"cooling down ({nxt - now:.0f} s left)")
            if not ok:
                reasons.append(why)
            if not reasons:
                try:
                    has, w = WORK[t.work](home, t, last if h and h["status"] == "done" else None)
                except Exception as e:  # a broken check is a reason, never a crash
                    has, w = False, f"work check failed: {type(e).__name__}: {e}"
                if not has:
                    reasons.append(w)
                row["work"] = w
            row["available"] = not reasons
            row["why_not"] = "; ".join(reasons)
        out.append(row)
        if first_available and row.get("available"):
            break
    return out


# -- running one notebook -------------------------------------------------------------
def output_path(home: Home, task_id: str) -> Path:
    d = home.paths.tasks / task_id
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{datetime.now():%Y%m%d-%H%M%S-%f}.ipynb"


def prune_outputs(home: Home, task_id: str, keep: int) -> None:
    runs = sorted((home.paths.tasks / task_id).glob("*.ipynb"))
    for old in runs[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


class TaskCancelled(BaseException):
    """Raised in the main thread by a stop signal while a notebook runs (papermill then
    shuts its kernel down); the run is recorded as cancelled and runs again later."""


_in_notebook = threading.Event()  # a signal cancels only the notebook, never a ledger write


def run_task(home: Home, task: TaskDef, reason: str = "", timeout_s: float = 900.0,
             keep_outputs: int = 30, pipelines: Path = PIPELINES) -> dict:
    """Run one task's notebook with papermill (a kernel subprocess); record running and
    done/failed with the output notebook. Never raises for a failing notebook."""
    import papermill as pm

    out = output_path(home, task.task_id)
    result_file = out.with_suffix(".json")
    base = {"task_id": task.task_id, "name": task.name, "priority": task.priority,
            "notebook": task.notebook, "output": str(out)}
    home.ledger.append("tasks", [{**base, "status": "running", "detail": reason[:4000] or None}])
    params = {**task.parameters, "realm_home": str(home.paths.home), "result_path": str(result_file)}
    t0 = time.monotonic()
    status, detail, result = "done", "", None
    try:
        try:
            _in_notebook.set()
            pm.execute_notebook(str(pipelines / task.notebook), str(out), parameters=params,
                                kernel_name="python3", progress_bar=False, log_output=False,
                                execution_timeout=int(timeout_s), cwd=str(home.paths.home),
                                request_save_on_cell_execute=False)
        finally:
            _in_notebook.clear()
        result = read_json(result_file, None)
    except TaskCancelled as e:
        status, detail = "cancelled", str(e)
        detail = json.dumps(result, default=str) if result is not None else "no result written"
    except Exception as e:  # the notebook failed (its output notebook shows where)
        status = "failed"
        detail = f"{type(e).__name__}: {str(e).strip()[-3000:]}"
    seconds = round(time.monotonic() - t0, 2)
    home.ledger.append("tasks", [{**base, "status": status, "detail": detail[:4000]}])
    data = json.dumps({"task_id": task.task_id, "seconds": seconds, "output": str(out)})
    if status == "cancelled":
        home.ledger.event("task_cancelled", f"Task {task.name} cancelled: {detail}", data)
    elif status == "done":
        home.ledger.event("task_done", f"Task {task.name} done in {seconds:.0f} s", data)
    else:
        home.ledger.event("task_failed", f"Task {task.name} failed: {detail[:200]}", data)
    prune_outputs(home, task.task_id, keep_outputs)
    return {"task_id": task.task_id, "status": status, "seconds": seconds, "output": str(out),
            "result": result, "detail": detail if status == "failed" else None}


# -- the loop -------------------------------------------------------------------------
class TaskMaster:
    def __init__(self, home: str | os.PathLike | None = None, pipelines: Path = PIPELINES) -> None:
        self.home = Home(home, writer="taskmaster")
        self.paths = self.home.paths
        self.pipelines = pipelines
        self.shutdown = threading.Event()
        self.config = RealmConfig()
        self._lock_fd: int | None = None
        self.last: dict | None = None
        self._fed_last = False  # the last pick was a starving generate_curriculum

    def reload_config(self) -> None:
        try:
            self.config = self.home.config
        except ConfigError as e:  # keep the last good config, say why
            log.error("%s", e)
        # Pipeline kernels inherit this environment: their torch keeps to its share.
        n = str(self.config.taskmaster.kernel_threads or cpu_share())
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = n

    def acquire_lock(self) -> None:
        self._lock_fd = take_instance_lock(
            self.paths.tasks / "taskmaster.lock", lambda holder: TaskMasterAlreadyRunning(
                f"a Task Master already runs for {self.paths.home} (pid {holder})"))

    def heartbeat(self, state: str, **extra: Any) -> None:
        write_status(self.paths, STATUS, pid=os.getpid(), state=state, last=self.last, **extra)

    def run(self, task_id: str, reason: str = "requested") -> dict:
        tasks = effective(self.home)
        if task_id not in tasks:
            raise KeyError(f"unknown task {task_id!r}; known: {sorted(tasks)}")
        task = tasks[task_id]
        ok, why = resource_ok(task.resource, gpu_status(), self.config.taskmaster.gpu_threshold,
                              task.yields_gpu and gpu_yield.granted(self.paths), self.placed())
        if not ok:
            self.home.ledger.append("tasks", [{"task_id": task_id, "name": task.name, "status": "failed",
                                                "priority": task.priority, "notebook": task.notebook,
                                                "detail": f"cannot run: {why}"}])
            return {"task_id": task_id, "status": "failed", "detail": why}
        self.heartbeat("running", task=task_id)
        log.info("running %s (%s)", task_id, reason)
        result = run_task(self.home, task, reason, self.config.taskmaster.task_timeout_s,
                          self.config.taskmaster.keep_outputs, self.pipelines)
        self.last = {k: result[k] for k in ("task_id", "status", "seconds", "output")}
        log.info("%s %s in %.1f s", task_id, result["status"], result["seconds"])
        return result

    def placed(self) -> bool:
        """Cluster mode with a live node that takes inference tasks: they are answered
        there, never on this machine's (training) card. False on one machine, without
        importing anything."""
        if not self.config.cluster.on:
            return False
        from ..oracle import cluster  # cluster mode only
        try:
            return cluster.placeable(self.config.cluster)
        except cluster.ClusterUnavailable as e:
            log.warning("cluster: %s", e)
            return False

    def pick(self) -> tuple[str, str] | None:
        """(task id, why) of the next task: a run-now request, else the highest-priority
        available task."""
        for task_id in pending_requests(self.home):
            (requests_dir(self.home) / f"{task_id}.json").unlink(missing_ok=True)
            return task_id, "run-now request"
        gpu = gpu_status()
        # The daemon has nothing to train: a new quest beats everything else (an eval queue
        # that keeps filling would otherwise keep the Arena idle).
        # While the daemon lends the GPU it trains nothing anyway: the loan's task goes first.
        lent = gpu_yield.granted(self.paths)
        starving = waiting(self.paths) == 0 and not lent
        # Every task's work check when starving (to see the generator's row), else only
        # down to the first available task; either way each check runs once per pick.
        rows = describe(self.home, gpu, check_work=True, first_available=not starving, lent=lent,
                        placed=self.placed())
        self.ask_or_release_gpu(rows)
        fed_last, self._fed_last = self._fed_last, False
        if starving:
            gen = next(t for t in rows if t["task_id"] == STARVING_PICK)
            others = [t for t in rows if t["available"] and t["task_id"] != STARVING_PICK]
            # ... but not twice running while other work waits: quests that train faster
            # than one is generated keep the daemon starving, and the eval queue (and with
            # it every level-up) would never get its turn.
            if gen["available"] and not (fed_last and others):
                self._fed_last = True
                return STARVING_PICK, "the daemon has nothing to train"
            rows = others
        for t in rows:
            if t["available"]:
                return t["task_id"], t.get("work") or ""
        return None

    def ask_or_release_gpu(self, rows: list[dict]) -> None:
        """A task that may ask for the GPU, has work and waits only for the busy GPU asks
        the daemon to lend it (services/gpu_yield.py); the loan ends once it has no work."""
        live = gpu_yield.current(self.paths)
        yielders = registry()
        for row in rows:
            task = yielders.get(row["task_id"])
            if task is None or not task.yields_gpu or not row.get("enabled"):
                continue
            why_not = row.get("why_not") or ""
            if live is None and not row["available"] and why_not.startswith("GPU busy") \
                    and ";" not in why_not and self.config.taskmaster.gpu_yield_s > 0:
                has, work = WORK[task.work](self.home, task, None)
                if has:
                    gpu_yield.request(self.paths, task.task_id, self.config.taskmaster.gpu_yield_s)
                    self.home.ledger.event("gpu_yield_asked", f"{task.name} asks the daemon for the "
                                           f"GPU at its next quest boundary ({work})",
                                           json.dumps({"task": task.task_id}))
            elif live is not None and live["task"] == task.task_id and not row["available"] \
                    and "GPU busy" not in why_not:
                gpu_yield.release(self.paths)  # no work left (or disabled): training goes on

    def once(self) -> dict | None:
        self.reload_config()
        return self._round()

    def _round(self) -> dict | None:
        found = self.pick()
        return self.run(*found) if found else None

    def loop(self) -> None:
        self.acquire_lock()
        def on_signal(signum, _frame) -> None:
            self.shutdown.set()
            if _in_notebook.is_set():
                _in_notebook.clear()
                raise TaskCancelled(f"the Task Master was stopped ({signal.Signals(signum).name})")

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        self.home.ledger.event("taskmaster_started", f"The Task Master wakes (pid {os.getpid()})")
        try:
            while not self.shutdown.is_set():
                self.reload_config()
                busy = False
                if self.config.taskmaster.enabled:
                    try:
                        busy = self._round() is not None  # config reloaded just above
                    except Exception as e:  # never die of one bad round
                        log.exception("task master round failed")
                        self.home.ledger.event("taskmaster_error", f"{type(e).__name__}: {e}")
                self.heartbeat("idle" if self.config.taskmaster.enabled else "disabled")
                if not busy:
                    self.shutdown.wait(self.config.taskmaster.poll_seconds)
        finally:
            gpu_yield.release(self.paths)  # a loan it asked for ends with it
            self.heartbeat("offline")
            self.home.ledger.event("taskmaster_stopped", f"The Task Master rests (pid {os.getpid()})")


def main(argv: list[str] | None = None) -> int:
    return service_main(argv, "Realm of Training: the Task Master", "taskmaster",
                        lambda home: TaskMaster(home).loop(), TaskMasterAlreadyRunning)


if __name__ == "__main__":
    sys.exit(main())
