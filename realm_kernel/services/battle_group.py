"""One battle over several local processes (`[training] nproc` > 1): the daemon's side
(`fight_in_ranks`: the job to a file, `accelerate launch`, rank 0's result back) and each
rank's (`main`: the job from that file through TrainerEngine, as in one process).

The daemon stays the one process that moves quests and records runs; the ranks train. Rank
0 writes the battle's rows and events (metrics, checkpoints, level-ups, achievements) under
the daemon's name, as a battle in the daemon's own process does; the other ranks read the
realm and write nothing (train/ranks.py). The daemon's shutdown and a `skip` reach the
ranks as their `should_abort`, decided by rank 0 at a step boundary for all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.paths import RealmPaths, atomic_write_json, read_json
from ..store.process import pid_alive

if TYPE_CHECKING:
    from ..train.trainer import Job, TrainingResult

JOB, RESULT, ABORT, LOG = "job.json", "result.json", "abort", "ranks.log"
PARENT_ENV = "REALM_RANKS_PARENT"  # the daemon's pid: ranks outliving it stop at a step
# A Job's fields that travel to the ranks; its hooks are rebuilt there (battle_hooks).
_HOOKS = ("on_progress", "on_checkpoint", "callbacks")


def group_dir(paths: RealmPaths, run_id: str) -> Path:
    return paths.logs / f"ranks-{run_id}"


def write_job(job: Job, dest: Path) -> None:
    data = {f.name: getattr(job, f.name) for f in fields(job) if f.name not in _HOOKS}
    data["training"] = job.training.model_dump(mode="json")
    data["retention"] = job.retention.model_dump(mode="json") if job.retention else None
    data["skip_steps"] = sorted(job.skip_steps)
    atomic_write_json(dest, json.loads(json.dumps(data, default=str)))


def read_job(src: Path) -> Job:
    from ..store.config import RetentionConfig, TrainingConfig
    from ..train.trainer import Job
    data = json.loads(src.read_text())
    data.update(
        model_path=Path(data["model_path"]),
        resume_from=Path(data["resume_from"]) if data["resume_from"] else None,
        training=TrainingConfig.model_validate(data["training"]),
        retention=RetentionConfig.model_validate(data["retention"]) if data["retention"] else None,
        skip_steps=frozenset(data["skip_steps"]))
    return Job(**data)


class PublishedWatch:
    """Calls `on_checkpoint(step, path)` once for each checkpoint of run `run_id` that
    rank 0 has published (its ledger row), each time it is called: the daemon calls it
    at every poll of the ranks, so a checkpoint is queued for the shared zone while the
    battle goes on, not at its end. The checkpoint list is the ledger's kept query: it
    runs again only when the checkpoints table changed (one folder listing otherwise)."""

    def __init__(self, ledger, run_id: str, on_checkpoint: Callable[[int, Path], None]) -> None:
        self.ledger, self.run_id, self.on_checkpoint = ledger, run_id, on_checkpoint
        self._seen: set[int] = set()

    def __call__(self) -> None:
        from ..store.checkpoints import CheckpointLedger
        for rec in sorted(CheckpointLedger(self.ledger).list(), key=lambda r: r.step):
            if rec.run_id == self.run_id and rec.step not in self._seen:
                self._seen.add(rec.step)
                self.on_checkpoint(rec.step, Path(rec.path))


def fight_in_ranks(paths: RealmPaths, job: Job, nproc: int, parallel: str,
                   should_abort: Callable[[], bool], poll_s: float = 0.5,
                   on_poll: Callable[[], None] | None = None) -> TrainingResult:
    """Trains `job` over nproc ranks and waits for them; the result rank 0 wrote, or a
    failed one naming the ranks' exit and the end of their log. `on_poll` runs at each
    poll while they train (a PublishedWatch). Never raises for the ranks' sake: a bad
    battle must not take the daemon down."""
    import torch

    from ..train.ranks import free_port, launch_command, parallel_problem
    from ..train.trainer import TrainingResult

    cuda = torch.cuda.is_available()
    problem = parallel_problem(parallel, cuda)
    if problem:  # the setup's fault, not the quest's: it waits in its queue
        return TrainingResult(success=False, global_step=job.step_offset, world_size=nproc,
                              setup_fault=True, error_message=problem)
    where = group_dir(paths, job.run_id)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    write_job(job, where / JOB)
    cmd = launch_command(nproc, parallel, __name__, [str(where)], port=free_port(), cuda=cuda)
    env = {**os.environ, "REALM_HOME": str(paths.home), PARENT_ENV: str(os.getpid())}
    with open(where / LOG, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        while True:
            try:
                proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                if on_poll is not None:
                    on_poll()
                if should_abort():  # the ranks stop together at their next step, saved
                    (where / ABORT).touch()
    done = read_json(where / RESULT)
    (where / JOB).unlink(missing_ok=True)
    if isinstance(done, dict):
        return TrainingResult(**done)
    tail = (where / LOG).read_text(errors="replace")[-3000:]
    return TrainingResult(success=False, global_step=job.step_offset, world_size=nproc,
                          error_message=f"the {nproc} training processes exited with {proc.returncode} "
                                        f"and no result (log: {where / LOG}):\n{tail}")


def battle_hooks(ledger, hero: str) -> dict:
    """The game hooks a daemon battle runs with (hero level-ups after each logged step,
    achievements after each checkpoint), for any process that writes the battle."""
    from ..evals.achievements import award, hero_progress
    return {"on_progress": hero_progress(ledger, hero),
            "on_checkpoint": lambda step, path: award(ledger)}


def _parent_gone() -> bool:
    pid = os.environ.get(PARENT_ENV)
    return bool(pid) and not pid_alive(pid)


def main(argv: list[str] | None = None) -> int:
    """One rank: the job from the daemon's folder, trained as in one process."""
    from dataclasses import replace

    from ..store.config import load_config
    from ..store.ledger import Ledger
    from ..train.ranks import RankLedger, rank
    from ..train.trainer import TrainerEngine

    where = Path((argv or sys.argv[1:])[0])
    paths = RealmPaths.at(os.environ.get("REALM_HOME"))
    zero = rank() == 0
    ledger = Ledger(paths, "daemon") if zero else RankLedger(paths, f"daemon-rank{rank()}")
    job = read_job(where / JOB)
    if zero:
        job = replace(job, **battle_hooks(ledger, load_config(paths.home).hero.name))
    skip = paths.control_file("skip")
    engine = TrainerEngine(paths, ledger, should_abort=lambda: (
        (where / ABORT).exists() or skip.exists() or _parent_gone()))
    result = engine.run_job(job)
    if zero:
        atomic_write_json(where / RESULT, asdict(result))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
