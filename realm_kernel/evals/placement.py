"""Who answers for a checkpoint: this machine, or in cluster mode a node Ray picks.

Without `[cluster] engine = "ray"` this is `grading.checkpoint_answers` and nothing else
(no Ray import). In cluster mode the answering runs on a cluster node (oracle/cluster.py)
from the checkpoint's sources in the vault (its shared zones first, then its folder here),
and everything else (picking problems, grading, recording) stays with the caller, the
Task Master: it remains the one ledger writer. When no node can take the work, or the
nodes die with it, the answers come from this machine instead, with a `cluster_fallback`
event: training and evals go on without the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..oracle import answering
from ..store.home import Home
from ..store.vault import VaultError, VaultKeeper
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
                home.ledger.event("cluster_fallback", f"{name}: answered on this machine ({e})",
                                  json.dumps({"checkpoint": name, "step": step, "reason": str(e)}))
                local.append(grading.checkpoint_answers(path, threads, backoff_events(home, name)))
                timing.update(node_id=None, host="local")
        here, here_timing = local[0]
        before = here_timing["seconds"]
        answers = here(questions, golden)
        timing["seconds"] += here_timing["seconds"] - before
        return answers

    return ask, timing
