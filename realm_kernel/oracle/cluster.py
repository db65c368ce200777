"""Cluster mode on Ray: answers for a checkpoint placed on the node Ray picks, and the
cluster's nodes as `realm cluster status` and the Scheduler page show them.

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


def placeable(config: ClusterConfig, live: Sequence[dict] | None = None) -> bool:
    """Whether some live node offers an inference task's resources. Asked every second by
    each waiting answer and at every Task Master pick: without `live` it reads Ray's node
    list alone, not the whole `nodes()` view."""
    if live is None:
        live = [{"alive": n.get("Alive"), "resources": n.get("Resources") or {}}
                for n in connect(config).nodes()]
    return any(n["alive"] and n["resources"].get(config.inference_resource, 0) >= 1
               and n["resources"].get("GPU", 0) >= config.gpus_per_task for n in live)


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
def answer_on_node(key: str, what: dict, step: int, sources: list[str], questions: list[str],
                   golden: list[str], cache_dir: str, threads: int) -> dict:
    """The Ray task: pipelines/answer.ipynb under papermill on this node; its answers."""
    import papermill as pm
    import ray
    from ray.experimental import internal_kv

    node = ray.get_runtime_context().get_node_id()
    internal_kv._internal_kv_put(key, json.dumps({
        **what, "node_id": node, "host": socket.gethostname(), "pid": os.getpid(),
        "started": time.time()}), overwrite=True)
    try:
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
        return {**result, "node_id": node}
    finally:
        internal_kv._internal_kv_del(key)


# -- the caller's side ------------------------------------------------------------------
@functools.cache
def _answer_task() -> Any:
    """The remote function, made once per process (Ray exports it to the cluster once)."""
    import ray
    return ray.remote(answer_on_node)


def remote_answers(config: ClusterConfig, step: int, sources: Sequence[str], name: str,
                   threads: int = 0) -> tuple[Callable[[Sequence[str], Sequence[str]], list[str]], dict]:
    """An `Ask` (questions, golden -> answers) whose answering runs on a cluster node;
    `timing` collects the seconds answering took there and the node of the last answer.
    Raises ClusterUnavailable when no live node can take it (the caller answers here)."""
    timing: dict[str, Any] = {"seconds": 0.0, "node_id": None, "host": None}

    def ask(questions: Sequence[str], golden: Sequence[str]) -> list[str]:
        ray = connect(config)
        if not placeable(config):
            raise ClusterUnavailable(f"no live node offers {config.inference_resource}")
        key = f"{RUNNING_PREFIX}{name}/{uuid.uuid4().hex[:8]}"
        task = _answer_task().options(
            name=f"realm-answer-{name}", resources={config.inference_resource: 1},
            num_gpus=config.gpus_per_task, max_retries=config.max_retries,
            retry_exceptions=False)
        what = {"task": "answer", "checkpoint": name, "step": step, "questions": len(questions)}
        ref = task.remote(key, what, step, list(sources), list(questions), list(golden),
                          config.cache_dir, threads)
        while not ray.wait([ref], timeout=WAIT_SLICE_S)[0]:
            if not placeable(config):  # every node that could run it is gone
                ray.cancel(ref, force=True)
                raise ClusterUnavailable(f"the nodes offering {config.inference_resource} are gone")
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as e:  # retries spent: a worker or node died each time
            raise ClusterUnavailable(f"{name} on the cluster failed: {type(e).__name__}: {e}") from e
        timing["seconds"] += float(out.get("seconds") or 0.0)
        timing.update(node_id=out["node_id"], host=out.get("host"))
        return list(out["answers"])

    return ask, timing
