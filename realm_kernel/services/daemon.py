"""The Arena: the training daemon.

One instance per realm home (flock on daemon.lock; a second start names the holder). It
admits quests from inbox/ and its subfolders (validate -> queue/<priority>/ or failed/
with a reason; see quests.py for priorities), takes the next quest by priority, trains
the hero on it with TrainerEngine, and obeys control files at step boundaries: pause,
stop (save, put the quest back), skip (save, set the quest aside in failed/). Bad input
never kills it. A quest left in processing/ by a crash goes back to the head of the queue
on start-up and resumes from its run's last checkpoint (optimizer, scheduler and data
position included), as does a stopped quest when nothing else trained in between.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..hero_model import hub
from ..quests.admission import check_quest
from ..quests.formats import Depth, QuestReport, limits_of, priority_of, validate_quest
from ..quests.publish import quest_row, record
from ..quests.queue import fail, move, next_quest
from ..quests.recovery import repair_quests
from ..store.checkpoint_repair import repair_checkpoints
from ..store.checkpoints import latest_checkpoint, resume_point
from ..store.config import ConfigError, RealmConfig, load_config
from ..store.ledger import Ledger, remove_dead_temp_segments
from ..store.paths import RealmPaths
from ..store.process import service_main, take_instance_lock
from ..store.queries import hero_step, quest_status
from ..store.runs import record_run
from ..store.shipping import Shipper
from ..store.status import DAEMON, TRAINING, read_status, write_status
from . import gpu_yield
from .battle_group import PublishedWatch, battle_hooks, fight_in_ranks

if TYPE_CHECKING:  # the engine itself is imported when a quest is fought (seconds of imports)
    from ..train.trainer import Job, TrainingResult

log = logging.getLogger("realm.daemon")
SETUP_RETRY_S = 15.0  # first wait after a setup fault; doubles up to SETUP_RETRY_MAX_S
SETUP_RETRY_MAX_S = 300.0
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp")

__all__ = ["Daemon", "DaemonAlreadyRunning", "main"]


class DaemonAlreadyRunning(RuntimeError):
    pass


class Daemon:
    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.paths = RealmPaths.at(home).ensure()
        self.ledger = Ledger(self.paths, "daemon")
        self.shutdown = threading.Event()
        self.config: RealmConfig = RealmConfig()
        self._lock_fd: int | None = None
        self.started = time.time()
        self.wake = threading.Event()  # set when a quest was queued or a control changed
        self._admitting = threading.Lock()
        self._config_error: str | None = None  # the one said last (said once, not per tick)
        self.setup_fault: str | None = None  # why quests wait (said once per cause)
        self._lent_for: float | None = None  # the GPU loan (its asked time) last recorded
        self._setup_retry_at = 0.0
        self._setup_backoff = SETUP_RETRY_S
        self._setup_tries = 0  # in the heartbeat: proof that a waiting daemon retries
        self.shipper: Shipper | None = None  # [vault] ship_to's background copier

    # -- single instance ------------------------------------------------------------
    def acquire_lock(self) -> None:
        self._lock_fd = take_instance_lock(self.paths.lock_file, lambda holder: DaemonAlreadyRunning(
            f"a daemon already runs for {self.paths.home} (pid {holder}, lock {self.paths.lock_file})"))

    # -- small duties -----------------------------------------------------------------
    def reload_config(self) -> None:
        try:
            self.config = load_config(self.paths.home)
            self._config_error = None
        except ConfigError as e:  # keep the last good config, say why loudly, once
            if str(e) != self._config_error:
                self._config_error = str(e)
                log.error("%s (keeping the last good config)", e)
                self.ledger.event("config_error", str(e))

    def checkpoint_published(self, step: int, path: Path) -> None:
        """After each published checkpoint (on the training thread): queue it for the
        shared zone (a row; the copy is the shipper thread's), then the achievements."""
        self.ship(step, path)
        self.award_achievements()

    def ship(self, step: int | None = None, path: Path | None = None) -> None:
        """The shipper for `[vault] ship_to` as the config says now (restarted when the
        zone changed); with a step, that checkpoint is queued for it. A shipper started
        here also picks up what an earlier run left pending."""
        zone = self.config.vault.ship_to
        if self.shipper is None or self.shipper.zone != zone:
            if self.shipper is not None:
                self.shipper.stop()
            self.shipper = Shipper.start(self.paths, self.ledger, self.config)
        if self.shipper is not None and step is not None and path is not None:
            self.shipper.submit(step, path)

    def heartbeat(self, state: str, **extra: object) -> None:
        write_status(self.paths, DAEMON, pid=os.getpid(), state=state, started=self.started,
                     home=str(self.paths.home), setup_tries=self._setup_tries, **extra)

    def idle_status(self, state: str) -> None:
        write_status(self.paths, TRAINING, state=state, quest=None, step=self.hero_step())

    def hero_step(self) -> int:
        return hero_step(self.ledger)

    def quest_row(self, name: str) -> dict | None:
        return quest_status(self.ledger, name)

    def recover(self) -> None:
        """Quests a crash left in processing/ go to the head of the queue, keeping their
        run id so that fight() resumes them from the run's last checkpoint."""
        for f in sorted(self.paths.queue("processing").iterdir()):
            if not f.is_file():
                continue
            row = self.quest_row(f.name) or {}
            dest = move(f, self.paths.queue("high"))
            record(self.ledger, [quest_row(dest, "queued", "high", run_id=row.get("run_id"),
                                           examples=row.get("examples"),
                                           detail="recovered after an interrupted run")])
            self.ledger.event("quest_recovered", f"Quest {dest.name} was interrupted; "
                                                 "it resumes from its last checkpoint")

    def repair(self) -> None:
        """Finish or undo whatever a crash cut in half (store/checkpoint_repair.py, dead
        temp segments, quests/recovery.py), then put quests left in processing/ back at
        the head of the queue."""
        done: dict = {"checkpoints": repair_checkpoints(self.paths, self.ledger),
                      "temp_segments": remove_dead_temp_segments(self.paths)}
        self.recover()
        done["quests"] = repair_quests(self.paths, self.ledger)
        ck = done["checkpoints"]
        if any(ck.values()) or done["quests"] or done["temp_segments"]:
            log.warning("start-up repairs: %s", done)
            self.ledger.event("recovery", "Start-up repairs after an interrupted run",
                              json.dumps(done))

    # -- inbox ------------------------------------------------------------------------
    def inbox_files(self) -> list[tuple[Path, Path]]:
        """(path, path relative to inbox) of every candidate quest, subfolders included;
        hidden entries are skipped and symlinked folders never entered (the link itself is
        a candidate, so it is refused and moved out with a reason)."""
        found = []
        for root, dirs, files in os.walk(self.paths.inbox, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            links = [d for d in dirs if (Path(root) / d).is_symlink()]
            dirs[:] = [d for d in dirs if d not in links]
            for name in sorted(files + links):
                if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
                    continue
                path = Path(root) / name
                found.append((path, path.relative_to(self.paths.inbox)))
        return found

    def admit_inbox(self) -> float | None:
        """Admit what has settled in the inbox. Returns the seconds until the next file
        still being written settles, or None when none is waiting."""
        pending: float | None = None
        with self._admitting:
            now = time.time()
            for path, rel in self.inbox_files():
                try:
                    young = self.config.daemon.settle_seconds - (now - path.lstat().st_mtime)
                    if young > 0:  # may still be being written: look again when it settles
                        pending = young if pending is None else min(pending, young)
                        continue
                    self.admit(path, priority_of(rel))
                except FileNotFoundError:
                    continue
                except Exception as e:  # never die of one bad file, nor retry it forever
                    log.exception("could not admit %r", str(rel))
                    self.reject_unreadable(path, e)
        return pending

    def keep_inbox(self) -> None:
        """The inbox keeper thread: admits quests as they land, during battles too, so
        the queue and the ledger show them at once; wakes the main loop."""
        from watchfiles import watch

        for _ in watch(self.paths.inbox, self.paths.control, stop_event=self.shutdown,
                       yield_on_timeout=True, debounce=100, step=50,
                       rust_timeout=int(self.config.daemon.poll_seconds * 1000)):
            try:
                while (wait := self.admit_inbox()) is not None and not self.shutdown.is_set():
                    self.wake.set()
                    self.shutdown.wait(wait + 0.01)
            except Exception:  # keep watching whatever happened
                log.exception("inbox keeper")
            self.wake.set()

    def reject_unreadable(self, path: Path, error: Exception) -> None:
        """A file validation itself choked on goes to failed/ with the error as its
        reason (left in the inbox it would be tried again on every tick)."""
        report = QuestReport(file=path.name)
        report.add(None, f"could not be read as a quest: {type(error).__name__}: {error}"[:2000])
        try:
            dest = fail(self.paths, path, report)
        except OSError as e:
            self.ledger.event("quest_error", f"could not admit {path.name!r}: {error}; "
                                             f"nor move it to failed/: {e}")
            return
        record(self.ledger, [quest_row(dest, "failed", detail=report.summary())])
        self.ledger.event("quest_rejected", report.summary())

    def admit(self, path: Path, priority: str = "normal") -> None:
        _, report = check_quest(path, self.config, self.paths, self.ledger)
        if report.ok:
            dest = move(path, self.paths.queue(priority))
            record(self.ledger, [quest_row(dest, "queued", priority, examples=report.examples,
                                           sha256=report.sha256,
                                           detail="; ".join(map(str, report.warnings))[:4000] or None)])
            self.ledger.event("quest_queued", f"Quest {dest.name} accepted "
                                              f"({report.examples} examples, {priority} priority)")
            log.info("queued %s (%d examples, %s)", dest.name, report.examples, priority)
        else:
            dest = fail(self.paths, path, report)
            record(self.ledger, [quest_row(dest, "failed", detail=report.summary(),
                                           sha256=report.sha256)])
            self.ledger.event("quest_rejected", report.summary())
            log.warning("rejected %s", report.summary())

    # -- battle -----------------------------------------------------------------------
    # -- setup faults: the hero's model or a package, never the quest's fault ------------
    def ensure_demo_hero(self) -> None:
        """The default hero (dio-mini) is built by whichever entry point needs it first."""
        if self.config.hero.base_model or (self.paths.dio_mini / "config.json").exists():
            return
        from ..train.dio_mini import build_dio_mini
        log.info("building the demo hero at %s", self.paths.dio_mini)
        build_dio_mini(self.paths.dio_mini)

    def setup_problem(self) -> str | None:
        """Why no quest can train now (the base model is missing), else None."""
        try:
            self.ensure_demo_hero()
        except Exception as e:
            return f"could not build the demo hero at {self.paths.dio_mini}: {type(e).__name__}: {e}"
        if latest_checkpoint(self.ledger):
            return None
        base_model = self.config.hero.base_model
        if base_model and hub.is_hub_id(base_model, self.paths.home):
            try:
                hub.fetch(base_model)  # cached, or downloaded once (progress in the daemon log)
            except hub.HubModelMissing as e:
                return str(e)
        base = self.config.base_model_path(self.paths)
        if not (base / "config.json").exists():
            return (f"no HF model directory at {base} (config.json missing): set [hero] "
                    f"base_model in {self.paths.config_file} to a local model folder or a "
                    "Hugging Face id (e.g. Qwen/Qwen3-0.6B)")
        return None

    def waiting_for_setup(self) -> bool:
        return self.setup_fault is not None and time.monotonic() < self._setup_retry_at

    def report_setup_fault(self, cause: str) -> None:
        """Quests stay queued; the cause is recorded once; the daemon retries with backoff."""
        self._setup_retry_at = time.monotonic() + self._setup_backoff
        self._setup_tries += 1
        self._setup_backoff = min(self._setup_backoff * 2, SETUP_RETRY_MAX_S)
        if cause != self.setup_fault:
            self.setup_fault = cause
            log.error("setup fault: %s (quests wait in their queues)", cause)
            self.ledger.event("setup_fault", f"Training waits: {cause.splitlines()[0][:300]}",
                              cause[:4000], key="setup_fault")

    def setup_fixed(self) -> None:
        if self.setup_fault is not None:
            self.ledger.event("setup_fixed", "The setup fault is gone; training goes on",
                              self.setup_fault[:4000], key="setup_fault")
        self.setup_fault, self._setup_backoff = None, SETUP_RETRY_S

    def fight(self, path: Path, priority: str) -> None:
        from ..train import TrainerEngine

        problem = self.setup_problem()
        if problem:  # the quest stays where it is
            self.report_setup_fault(problem)
            return
        before = self.quest_row(path.name) or {}
        quest = move(path, self.paths.queue("processing"))
        examples, report = validate_quest(quest, Depth.STANDARD, limits_of(self.config))
        if not report.ok:
            self._finish(quest, "failed", before.get("run_id") or "", report.summary(),
                         fail_report=report)
            return
        job = self.job_for(quest, examples, before.get("run_id"))
        self.announce(quest, job, priority)
        ranks = self.ranks()
        if ranks > 1:  # over the local GPUs (or gloo processes) under accelerate
            # Rank 0 publishes in its own process, where no shipper runs: the daemon
            # queues each of its checkpoints here as it sees its row (a queue row each;
            # never blocks a step), and the last ones once the ranks end.
            published = PublishedWatch(self.ledger, job.run_id, self.ship)
            result = fight_in_ranks(self.paths, job, ranks, self.config.training.parallel,
                                    self.should_abort, on_poll=published)
            published()
        else:
            engine = TrainerEngine(self.paths, self.ledger, should_abort=self.should_abort)
            result = engine.run_job(job)
        log.info("result %s", result.as_dict())
        status, detail = self.outcome(quest.name, result)
        if result.success:
            self.setup_fixed()
        record_run(self.ledger, job.run_id, quest.name,
                   "stopped" if status == "queued" else status, model_path=job.model_path,
                   step_start=job.step_offset, step_end=result.global_step,
                   loss=result.final_loss, detail=detail)
        self._finish(quest, status, job.run_id, detail, priority=priority)

    def job_for(self, quest: Path, examples: list[dict], run_id: str | None) -> Job:
        """The quest's training job: it resumes its own run from that run's last
        checkpoint where it can, else a new run starts from the hero's latest weights."""
        from ..train import Job

        resume = resume_point(self.ledger, quest.name, run_id)
        if resume:
            model_path, offset = resume
        else:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            latest = latest_checkpoint(self.ledger)
            offset, model_path = latest if latest else (0, self.config.base_model_path(self.paths))
        meta = examples[0].get("meta", {})
        return Job(quest_id=quest.name, examples=examples, model_path=model_path, run_id=run_id,
                   step_offset=offset, training=self.config.training,
                   skill=meta.get("skill"), skill_level=meta.get("level"),
                   resume_from=model_path if resume else None,
                   # One process: each checkpoint goes to the shipper as it is published.
                   **{**battle_hooks(self.ledger, self.config.hero.name),
                      "on_checkpoint": self.checkpoint_published},
                   retention=self.config.retention,
                   base_model=self.config.hero.base_model or "dio-mini")

    def ranks(self) -> int:
        """The processes a battle trains over: `[training] nproc` (0 = the visible GPUs)."""
        from ..train.ranks import local_nproc
        return local_nproc(self.config.training)

    def announce(self, quest: Path, job: Job, priority: str) -> None:
        """The battle starts: the quest's and the run's rows, the event, the heartbeat."""
        resume = job.resume_from is not None
        record(self.ledger, [quest_row(quest, "processing", priority, examples=len(job.examples),
                                       run_id=job.run_id)])
        record_run(self.ledger, job.run_id, job.quest_id, "resumed" if resume else "started",
                   model_path=job.model_path, resume_from=job.resume_from,
                   step_start=job.step_offset)
        verb = "resumes" if resume else "takes on"
        self.ledger.event("battle_started", f"{self.config.hero.name} {verb} {job.quest_id}",
                          json.dumps({"model": str(job.model_path), "step": job.step_offset,
                                      "resume": resume, "ranks": self.ranks(),
                                      "profile": self.config.resolved_profile.as_dict()},
                                     default=str))
        self.heartbeat("training", quest=job.quest_id)
        log.info("training %s from %s (step %d%s)", job.quest_id, job.model_path,
                 job.step_offset, ", resuming" if resume else "")

    def outcome(self, quest: str, result: TrainingResult) -> tuple[str, str]:
        """(the quest's status, why) after its run; a full disk pauses the realm and a
        setup fault is reported, both sending the quest back to its queue."""
        skipped = self.paths.control_file("skip").exists() and result.stopped
        if not result.success and result.disk_full:
            return "queued", self.disk_full(quest, result)
        if not result.success and result.setup_fault:
            detail = (result.error_message or "setup fault").strip().splitlines()[0]
            if result.out_of_memory:  # every quest would fail the same way: pause, say why
                self.paths.control_file("pause").write_text(str(time.time()))
            self.report_setup_fault(detail)
            return "queued", f"waits for the setup: {detail}"
        if not result.success:
            return "failed", result.error_message or "training failed"
        if skipped:
            self.paths.control_file("skip").unlink(missing_ok=True)
            return "skipped", f"skipped by request at step {result.global_step}"
        if result.stopped:
            return "queued", f"stopped at step {result.global_step}; checkpoint saved"
        return "completed", f"completed at step {result.global_step}, loss {result.final_loss}"

    def disk_full(self, quest: str, result: TrainingResult) -> str:
        """A full disk is not the quest's fault: it goes back to its queue (it resumes
        from its last complete checkpoint) and the realm pauses until a user frees space
        and resumes, instead of failing quest after quest."""
        error = (result.error_message or "").strip().splitlines()
        step = read_status(self.paths, TRAINING).get("step", result.global_step)
        detail = (f"disk full while saving a checkpoint at step {step}: "
                  f"{error[0] if error else 'no space left on device'}; {quest} is back in its "
                  f"queue and training is paused: free space under {self.paths.checkpoints}, "
                  "then resume")
        self.paths.control_file("pause").write_text(str(time.time()))
        log.error("%s", detail)
        self.ledger.event("disk_full", f"Disk full: {quest} goes back to its queue", detail)
        return detail

    def should_abort(self) -> bool:
        return self.shutdown.is_set() or self.paths.control_file("skip").exists()

    def _finish(self, quest: Path, status: str, run_id: str, detail: str, *,
                priority: str = "normal", fail_report=None) -> None:
        if status == "completed":
            dest = move(quest, self.paths.queue("recently_completed"))
            self._prune_completed()
            self.ledger.event("quest_completed", f"Quest complete! {quest.name}", detail)
        elif status == "queued":
            dest = move(quest, self.paths.queue(priority))
            self.ledger.event("battle_stopped", f"Battle stopped: {quest.name}", detail)
        else:
            report = fail_report or QuestReport(file=quest.name)
            if fail_report is None:
                report.add(None, detail)
            dest = fail(self.paths, quest, report)
            kind = "quest_skipped" if status == "skipped" else "quest_failed"
            self.ledger.event(kind, f"Quest {status}: {quest.name}", detail)
        record(self.ledger, [quest_row(dest, status, priority, detail=detail[:4000], run_id=run_id)])
        self.award_achievements()

    def award_achievements(self) -> None:
        from ..evals.achievements import award
        try:
            award(self.ledger)
        except Exception as e:  # a milestone is never worth a battle
            log.warning("achievements: %s", e)

    def _prune_completed(self) -> None:
        done = sorted(self.paths.queue("recently_completed").iterdir(),
                      key=lambda p: p.stat().st_mtime)
        days = self.config.daemon.completed_retention_days
        cutoff = time.time() - days * 86400 if days else None
        for i, old in enumerate(done):
            if i < len(done) - self.config.daemon.keep_completed or (
                    cutoff is not None and old.stat().st_mtime < cutoff):
                old.unlink(missing_ok=True)

    # -- main loop --------------------------------------------------------------------
    def tick(self) -> bool:
        """One round of duties. True when a quest was fought (look again at once)."""
        self.reload_config()
        self.admit_inbox()
        # skip applies to the quest in training; with none, it is spent.
        self.paths.control_file("skip").unlink(missing_ok=True)
        if self.paths.control_file("stop").exists():
            self.idle_status("stopped")  # before the heartbeat: alive implies a battle status
            self.heartbeat("stopped")
            return False
        if self.paths.control_file("pause").exists():
            self.idle_status("paused")  # before the heartbeat: alive implies a battle status
            self.heartbeat("paused")
            return False
        if (loan := gpu_yield.current(self.paths)) is not None:
            # A waiting eval asked for the GPU: no quest starts until it is done (or the
            # request's deadline passes); see services/gpu_yield.py.
            if self._lent_for != loan.get("asked"):
                self._lent_for = loan.get("asked")
                self.ledger.event("gpu_lent", f"{self.config.hero.name} lends the GPU to "
                                  f"{loan.get('task')} between quests", json.dumps(loan))
            self.idle_status(gpu_yield.YIELDING)
            self.heartbeat(gpu_yield.YIELDING, lent_to=loan.get("task"))
            return False
        if self.waiting_for_setup():
            self.idle_status("waiting")
            self.heartbeat("waiting", setup_fault=self.setup_fault)
            return False
        found = next_quest(self.paths)
        if found is None:
            self.idle_status("idle")  # before the heartbeat: alive implies a battle status
            self.heartbeat("idle")
            return False
        self.fight(*found)
        return True

    def run(self) -> None:
        self.acquire_lock()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.shutdown.set())
        self.reload_config()
        self.ledger.ensure_views()
        self.repair()
        try:
            self.ensure_demo_hero()  # `realm daemon` on a fresh home needs no `realm play`
        except Exception as e:  # reported as a setup fault when a quest needs it
            log.error("could not build the demo hero: %s", e)
        self.ledger.event("daemon_started", f"The Arena opens (pid {os.getpid()})")
        self.ship()  # checkpoints an earlier run left pending for the shared zone
        log.info("daemon %d watching %s", os.getpid(), self.paths.inbox)
        keeper = threading.Thread(target=self.keep_inbox, name="inbox-keeper", daemon=True)
        keeper.start()
        try:
            while not self.shutdown.is_set():
                try:
                    busy = self.tick()
                except Exception as e:  # the Arena never falls to one bad round
                    log.exception("tick failed")
                    try:  # the ledger's own disk may be the problem (full, gone)
                        self.ledger.event("daemon_error", f"{type(e).__name__}: {e}")
                    except Exception:
                        log.exception("could not record the error in the ledger")
                    busy = False
                    time.sleep(1)
                if not busy and not self.shutdown.is_set():
                    self.wake.wait(self.config.daemon.poll_seconds)
                    self.wake.clear()
        finally:
            self.shutdown.set()
            keeper.join(timeout=5)
            self.heartbeat("offline")
            self.idle_status("offline")
            self.ledger.event("daemon_stopped", f"The Arena closes (pid {os.getpid()})")


def main(argv: list[str] | None = None) -> int:
    return service_main(argv, "Realm of Training daemon (the Arena)", "daemon",
                        lambda home: Daemon(home).run(), DaemonAlreadyRunning)


if __name__ == "__main__":
    sys.exit(main())
