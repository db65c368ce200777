"""The Oracle handlers' thread pool in a forked child: a child has none of its parent's
threads, so a pool carried over from a parent that had used it would queue the child's
work and never run it (every Oracle request of a server in the child would hang; mutmut
runs each mutant's tests in such a child). The child waits a bounded time and says."""

from __future__ import annotations

import asyncio
import importlib
import os

from realm_kernel.server.oracle_handlers import in_thread

# the module itself (the package's `oracle_handlers` is the function mounting its routes)
oracle_handlers = importlib.import_module("realm_kernel.server.oracle_handlers")

CHILD_WAIT_S = 20  # a bound for a hung pool, far over the milliseconds the work takes


def test_a_forked_child_runs_oracle_work_on_its_own_pool():
    # The parent's pool has run work: its threads exist here, and would not in a child.
    assert asyncio.run(in_thread(os.getpid)) == os.getpid()
    parent_pool = oracle_handlers.EXECUTOR
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when its work ran in it, on a pool of its own
        code = 1
        try:
            ran_in = asyncio.run(asyncio.wait_for(in_thread(os.getpid), CHILD_WAIT_S))
            code = 0 if ran_in == os.getpid() and oracle_handlers.EXECUTOR is not parent_pool else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child's Oracle work did not run"
    assert oracle_handlers.EXECUTOR is parent_pool  # the parent keeps its own pool


def test_a_forked_child_serves_the_realm_api_after_this_process_did(tmp_path, monkeypatch):
    """A server in this process, then one in a forked child (what mutmut does between its
    runs): the child's handlers run their work (`asyncio.to_thread`, the Oracle's pool),
    on an event loop and pool of its own."""
    import requests

    from realm_kernel.store.paths import RealmPaths

    from ..helpers import auth
    from .in_process import serving

    def served(home: str) -> bool:
        paths = RealmPaths.at(tmp_path / home).ensure()
        with serving(paths, tmp_path / home, monkeypatch) as (_, api, _log):
            ledger = requests.get(f"{api}/ledger?limit=1", headers=auth(), timeout=CHILD_WAIT_S)
            oracle = requests.get(f"{api}/oracle/status", headers=auth(), timeout=CHILD_WAIT_S)
            return ledger.json() == {"checkpoints": []} and list(oracle.json()["hosts"]) == ["local"]

    assert served("parent")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if served("child") else 2
        except BaseException as e:
            (tmp_path / "child-error").write_text(repr(e))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    error = tmp_path / "child-error"
    assert os.waitstatus_to_exitcode(status) == 0, (
        f"the forked child's server did not answer: {error.read_text() if error.exists() else ''}")
