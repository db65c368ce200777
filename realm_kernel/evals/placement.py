"""Who does a pipeline's work: this machine, or in cluster mode a node Ray picks.

Without `[cluster] engine = "ray"` everything runs here, as it always did, and nothing
imports Ray. In cluster mode three kinds of work go to the nodes offering the eval role
(oracle/cluster.py): a checkpoint's answers (evals, sparring, probes; fetched there from
the checkpoint's sources in the vault, its shared zones first, then its folder here), a
curriculum quest's rows (`placed`: CPU only) and the vault scan of the shared zones
(`scan_vault`: CPU only). Only results come back: picking problems, grading, publishing
quests and writing the catalogue stay with the caller, the Task Master, which remains the
one ledger writer. When no node can take the work, or the nodes die with it, this machine
does it instead, with a `cluster_fallback` event: training and evals go on without the
cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..oracle import answering
from ..store.home import Home
from ..store.vault import LOCAL, VaultError, VaultKeeper, discover_zones
from . import grading


def checkpoint_sources(home: Home, step: int, path: str | Path) -> list[str]:
    """The checkpoint's folder in every zone the vault knows it in, shared zones first
    (a node elsewhere reaches those), its folder in the realm home last."""
    urls: list[str] = []
    try:
        found = VaultKeeper(home.paths, home.ledger, home.safe_config()).locate(f"checkpoint_{step}")
        urls = [loc.url for loc in sorted(found.locations, key=lambda loc: loc.local)]
    except (VaultError, ValueError):
        pass  # not catalogued: the folder the engine saved it to
    local = str(Path(path))
    return urls if local in urls else [*urls, local]


def backoff_events(home: Home, checkpoint: str) -> answering.OnBackoff:
    """An `eval_backoff` event for each answer batch of this checkpoint's eval or probe that
    ran out of memory and was asked again smaller (oracle/answering.py)."""
    def record(b: dict) -> None:
        to = b["to"]
        home.ledger.event("eval_backoff", f"Answering for {checkpoint} ran out of memory: again "
                          f"at batch {to['batch']}, {to['max_new_tokens']} new tokens",
                          json.dumps({"checkpoint": checkpoint, "where": "answers", **b}))
    return record


def answers_for(home: Home, name: str, step: int | None, path: str | Path,
                threads: int = 0) -> tuple[grading.Ask, dict]:
    """An `Ask` over checkpoint `name` and the dict collecting its seconds (and, in cluster
    mode, the node that answered)."""
    cluster_cfg = home.safe_config().cluster
    if not cluster_cfg.on or step is None:
        return grading.checkpoint_answers(path, threads, backoff_events(home, name))
    from ..oracle import cluster  # cluster mode only: Ray is imported there, on first use

    remote, timing = cluster.remote_answers(cluster_cfg, int(step), checkpoint_sources(home, step, path),
                                            name, threads)
    local: list[tuple[grading.Ask, dict]] = []  # this machine's answers, once it took over

    def ask(questions: Sequence[str], golden: Sequence[str]) -> list[str]:
        if not local:
            try:
                return remote(questions, golden)
            except cluster.ClusterUnavailable as e:
                fallback(home, f"{name}: answered on this machine ({e})",
                         {"checkpoint": name, "step": step, "reason": str(e)})
                local.append(grading.checkpoint_answers(path, threads, backoff_events(home, name)))
                timing.update(node_id=None, host="local")
        here, here_timing = local[0]
        before = here_timing["seconds"]
        answers = here(questions, golden)
        timing["seconds"] += here_timing["seconds"] - before
        return answers

    return ask, timing


def fallback(home: Home, message: str, data: dict) -> None:
    """The `cluster_fallback` event: work meant for the cluster was done on this machine."""
    home.ledger.event("cluster_fallback", message, json.dumps(data))


def placed(home: Home, name: str, what: dict, fn: Callable[..., Any], *args: Any) -> tuple[Any, dict | None]:
    """`fn(*args)`, pure computation, and where it ran: on one machine here (where: None);
    in cluster mode on a node offering the eval role, with no GPU ({"node_id", "host"}),
    else here after a `cluster_fallback` event ({"node_id": None, "host": "local"})."""
    cluster_cfg = home.safe_config().cluster
    if not cluster_cfg.on:
        return fn(*args), None
    from ..oracle import cluster  # cluster mode only: Ray is imported there, on first use

    try:
        out = cluster.remote_call(cluster_cfg, name, what, fn, args, share=cluster.CPU_SHARE)
        return out["result"], {"node_id": out["node_id"], "host": out["host"]}
    except cluster.ClusterUnavailable as e:
        fallback(home, f"{name}: {what['task']} on this machine ({e})", {**what, "reason": str(e)})
        return fn(*args), {"node_id": None, "host": "local"}


def scan_vault(home: Home) -> dict:
    """The Task Master's vault scan: the realm home here, as on one machine; in cluster
    mode also every shared zone, read from a node offering the eval role (the zones as
    the hosts that fetch from them see them), the catalogue written here. A zone the
    node cannot read is reported under "shared" with its error and left as catalogued."""
    keeper = VaultKeeper(home.paths, home.ledger, home.safe_config())
    result = keeper.scan(LOCAL)
    urls = keeper.shared_zone_urls() if home.safe_config().cluster.on else {}
    if not urls:
        return result
    seen, where = placed(home, "vault-scan", {"task": "vault_scan", "zones": sorted(urls)},
                         discover_zones, urls)
    shared = {zone: (keeper.record_scan(zone, got["found"]) if "found" in got else got)
              for zone, got in seen.items()}
    return {**result, "shared": shared, **(where or {})}
