"""Cluster mode on Ray: a pipeline's work (a checkpoint's answers, a quest's rows, the
vault scan of the shared zones) placed on the node Ray picks, and the cluster's nodes as
`realm cluster status` and the Scheduler page show them.

Only `[cluster] engine = "ray"` brings any of this in: `ray` is imported inside these
functions, never at module level, so a realm without a [cluster] section imports and
starts nothing new (tests/services/test_cluster.py checks sys.modules).

An inference task asks Ray for one unit of `[cluster] inference_resource` (eval hosts
offer it: `ray start --resources '{"realm_inference": 1}'`; the trainer does not) and
`gpus_per_task` GPUs, so an eval never lands on the training card while an eval node is
up. On the node it runs pipelines/answer.ipynb under papermill: the checkpoint is fetched
there by step (store/fetch.py) and only the answers come back; the caller grades and
records them, so the Task Master stays the one ledger writer. A task whose worker or
node dies is retried by Ray (`max_retries`) on a node that still offers the resource;
when none is left, `ClusterUnavailable` tells the caller to answer on its own machine.
The CPU tasks (`remote_call` with no GPU) ask `CPU_SHARE` of the same eval role, so they
run where evals may run, never on the trainer while it offers no eval role.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..store.config import ClusterConfig
from ..store.paths import read_json, resource_dir

# What each node runs now: one key per task in flight in Ray's own key-value store (the
# GCS), written by the task on its node, so any process can list it (no dashboard needed).
RUNNING_PREFIX = "realm/running/"
ROLE_PREFIX = "realm_"  # custom resources named for the host roles: realm_inference, ...
# The CPU tasks (a quest's rows, the vault scan) ask this sliver of the eval role: they go
# only where evals may, and never wait for the unit an eval holds.
CPU_SHARE = 0.01
WAIT_SLICE_S = 1.0  # how often a waiting caller checks that some node can still run the task
_joining = threading.Lock()  # the eval queue's threads join the cluster once, not each


class ClusterUnavailable(RuntimeError):
    """No Ray cluster to join, or no live node offering what the task needs."""


def address_of(config: ClusterConfig) -> str:
    return config.address or os.environ.get("RAY_ADDRESS") or "auto"


def connect(config: ClusterConfig) -> Any:
    """The `ray` module, joined to the configured cluster (once per process). Usage
    statistics stay off unless the environment says otherwise."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise ClusterUnavailable("[cluster] engine = 'ray' needs ray: "
                                 "pip install 'realm-of-training[cluster]'") from e
    with _joining:
        if not ray.is_initialized():
            address = address_of(config)
            try:
                ray.init(address=address, namespace="realm", logging_level=logging.WARNING,
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ClusterUnavailable(f"no Ray cluster at {address!r}: {e}") from e
    return ray


def _available_per_node() -> dict[str, dict[str, float]]:
    try:  # the GCS's view, the same `ray status` prints; internal, so never fatal
        from ray._private.state import available_resources_per_node
        return available_resources_per_node()
    except Exception:
        return {}


def running() -> list[dict]:
    """The realm's tasks in flight, each with the node it runs on."""
    from ray.experimental import internal_kv
    out = []
    for key in internal_kv._internal_kv_list(RUNNING_PREFIX) or []:
        raw = internal_kv._internal_kv_get(key)
        if raw:
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


def nodes(config: ClusterConfig) -> list[dict]:
    """Every node Ray knows: address, alive, resources, what is in use and which realm
    tasks it runs."""
    ray = connect(config)
    free = _available_per_node()
    tasks = running()
    out = []
    for n in ray.nodes():
        nid = n["NodeID"]
        total = {k: v for k, v in (n.get("Resources") or {}).items() if not k.startswith("node:")}
        avail = free.get(nid, total)
        alive = bool(n.get("Alive"))
        out.append({
            "node_id": nid, "address": n.get("NodeManagerAddress"),
            "hostname": n.get("NodeManagerHostname"), "alive": alive,
            "roles": sorted(k[len(ROLE_PREFIX):] for k in total if k.startswith(ROLE_PREFIX)),
            "resources": total,
            "in_use": {k: round(v - avail.get(k, 0.0), 3) for k, v in total.items()
                       if alive and v - avail.get(k, 0.0) > 1e-9 and "memory" not in k},
            "running": [t for t in tasks if t.get("node_id") == nid],
        })
    return out


def placeable(config: ClusterConfig, live: Sequence[dict] | None = None,
              gpus: float | None = None) -> bool:
    """Whether some live node offers the eval role and `gpus` GPUs (default: an inference
    task's `gpus_per_task`; 0 for the CPU tasks). Asked every second by each waiting task
    and at every Task Master pick: without `live` it reads Ray's node list alone, not the
    whole `nodes()` view."""
    gpus = config.gpus_per_task if gpus is None else gpus
    if live is None:
        live = [{"alive": n.get("Alive"), "resources": n.get("Resources") or {}}
                for n in connect(config).nodes()]
    return any(n["alive"] and n["resources"].get(config.inference_resource, 0) >= 1
               and n["resources"].get("GPU", 0) >= gpus for n in live)


def status(config: ClusterConfig) -> dict:
    """What `realm cluster status` prints: the mode, and in cluster mode the nodes."""
    out: dict[str, Any] = {"engine": config.engine}
    if not config.on:
        out["detail"] = "one machine: no [cluster] engine = 'ray' in realm.toml"
        return out
    out["address"] = address_of(config)
    out["inference_resource"] = config.inference_resource
    try:
        live = nodes(config)
    except ClusterUnavailable as e:
        return {**out, "connected": False, "detail": str(e), "nodes": []}
    ok = placeable(config, live)
    return {**out, "connected": True, "nodes": live, "placeable": ok,
            "detail": (f"inference tasks go to nodes offering {config.inference_resource}" if ok
                       else "no live node offers the inference resource: tasks run here")}


# -- on the node ------------------------------------------------------------------------
def call_on_node(key: str, what: dict, fn: Callable[..., Any], args: Sequence[Any]) -> dict:
    """The Ray task: `fn(*args)` on this node, under a running key naming the task (so the
    status shows it); its result and the node's id and host name. `fn` is a module-level
    function of the realm, which Ray pickles by name: the node imports its own copy."""
    import ray
    from ray.experimental import internal_kv

    node = ray.get_runtime_context().get_node_id()
    internal_kv._internal_kv_put(key, json.dumps({
        **what, "node_id": node, "host": socket.gethostname(), "pid": os.getpid(),
        "started": time.time()}), overwrite=True)
    try:
        return {"result": fn(*args), "node_id": node, "host": socket.gethostname()}
    finally:
        internal_kv._internal_kv_del(key)


def answer_on_node(step: int, sources: list[str], questions: list[str], golden: list[str],
                   cache_dir: str, threads: int) -> dict:
    """pipelines/answer.ipynb under papermill on this node; its answers."""
    import papermill as pm

    with tempfile.TemporaryDirectory(prefix="realm-answer-") as tmp:
        result_path = Path(tmp) / "result.json"
        pm.execute_notebook(
            str(resource_dir("pipelines") / "answer.ipynb"), str(Path(tmp) / "answer.ipynb"),
            parameters={"step": step, "sources": sources, "questions": questions,
                        "golden": golden, "cache_dir": cache_dir, "threads": threads,
                        "result_path": str(result_path)},
            kernel_name="python3", progress_bar=False, log_output=False, cwd=tmp)
        result = read_json(result_path, None)
    if not isinstance(result, dict) or len(result.get("answers") or []) != len(questions):
        raise RuntimeError(f"answer.ipynb on {socket.gethostname()} wrote no answers")
    return result


# -- the caller's side ------------------------------------------------------------------
@functools.cache
def _node_task() -> Any:
    """The remote function, made once per process (Ray exports it to the cluster once)."""
    import ray
    return ray.remote(call_on_node)


def remote_call(config: ClusterConfig, name: str, what: dict, fn: Callable[..., Any],
                args: Sequence[Any], gpus: float = 0.0, share: float = 1.0) -> dict:
    """`fn(*args)` on a live node offering the eval role (`share` of one unit of
    `inference_resource`, `gpus` GPUs, one CPU), waited for: {"result", "node_id",
    "host"}. A task whose worker or node dies is retried by Ray (`max_retries`);
    ClusterUnavailable when no such node is left or the retries are spent (the caller
    then does the work on its own machine)."""
    ray = connect(config)
    if not placeable(config, gpus=gpus):
        raise ClusterUnavailable(f"no live node offers {config.inference_resource}")
    key = f"{RUNNING_PREFIX}{name}/{uuid.uuid4().hex[:8]}"
    ref = _node_task().options(
        name=f"realm-{what['task']}-{name}", resources={config.inference_resource: share},
        num_gpus=gpus, max_retries=config.max_retries, retry_exceptions=False,
    ).remote(key, what, fn, list(args))
    while not ray.wait([ref], timeout=WAIT_SLICE_S)[0]:
        if not placeable(config, gpus=gpus):  # every node that could run it is gone
            ray.cancel(ref, force=True)
            raise ClusterUnavailable(f"the nodes offering {config.inference_resource} are gone")
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # retries spent: a worker or node died each time
        raise ClusterUnavailable(f"{name} on the cluster failed: {type(e).__name__}: {e}") from e


def remote_answers(config: ClusterConfig, step: int, sources: Sequence[str], name: str,
                   threads: int = 0) -> tuple[Callable[[Sequence[str], Sequence[str]], list[str]], dict]:
    """An `Ask` (questions, golden -> answers) whose answering runs on a cluster node;
    `timing` collects the seconds answering took there and the node of the last answer.
    Raises ClusterUnavailable when no live node can take it (the caller answers here)."""
    timing: dict[str, Any] = {"seconds": 0.0, "node_id": None, "host": None}

    def ask(questions: Sequence[str], golden: Sequence[str]) -> list[str]:
        what = {"task": "answer", "checkpoint": name, "step": step, "questions": len(questions)}
        out = remote_call(config, name, what, answer_on_node,
                          (step, list(sources), list(questions), list(golden), config.cache_dir,
                           threads), gpus=config.gpus_per_task)
        timing["seconds"] += float(out["result"].get("seconds") or 0.0)
        timing.update(node_id=out["node_id"], host=out["host"])
        return list(out["result"]["answers"])

    return ask, timing
