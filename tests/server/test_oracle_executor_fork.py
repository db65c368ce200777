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
