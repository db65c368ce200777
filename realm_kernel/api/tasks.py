"""`realm.tasks`: the Task Master's tasks (papermill pipelines), their settings and runs."""

from __future__ import annotations

from ..services import taskmaster
from ..store.home import Home
from .training import service_status


class Tasks:
    def __init__(self, home: Home) -> None:
        self.home = home

    def list(self, check_work: bool = False) -> list[dict]:
        """Every registered task with its settings and last run (task_id, name, priority,
        resource, cooldown_s, enabled, notebook, last_run, last_status, next_eligible,
        output, detail); with check_work, also whether it may run now and why not."""
        return taskmaster.describe(self.home, taskmaster.gpu_status() if check_work else None,
                                   check_work=check_work)

    def run(self, task_id: str) -> dict:
        """Ask the Task Master process to run a task now (a request file it takes first)."""
        return taskmaster.request_run(self.home, task_id)

    def set(self, task_id: str, *, enabled: bool | None = None, priority: int | None = None,
            cooldown_s: float | None = None, parameters: dict | None = None) -> dict:
        """Run-time task settings (over realm.toml's [taskmaster.tasks.<id>]); `parameters`
        are the notebook's (counts, eval sizes, thresholds), checked by name and type."""
        return taskmaster.set_task(self.home, task_id, enabled, priority, cooldown_s, parameters)

    def cluster(self, strict: bool = False) -> dict:
        """Where the tasks run: one machine, or in cluster mode ([cluster] engine = "ray")
        the Ray cluster's nodes, their resources and the realm tasks each runs now.
        `strict`: a broken realm.toml raises ConfigError instead of showing the defaults."""
        from ..oracle import cluster  # Ray is imported there, and only in cluster mode
        config = self.home.config if strict else self.home.safe_config()
        return cluster.status(config.cluster)

    def status(self) -> dict:
        return {**service_status(self.home.paths, taskmaster.STATUS), "gpu": taskmaster.gpu_status()}
