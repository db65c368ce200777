"""The Arena: the training daemon.

One instance per realm home (flock on daemon.lock). It admits quests from inbox/
(validate -> queue/<priority>/ or failed/ with a reason), takes the next quest by
priority, trains the hero on it with TrainerEngine, and obeys control files at step
boundaries. Bad input never kills it; a quest left in processing/ by a crash is put
back at the head of the queue on start-up.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from .config import ConfigError, RealmConfig, load_config
from .ledger import Ledger
from .paths import RealmPaths
from .quests import QuestReport, fail, load_quest, move, next_quest
from .status import DAEMON, TRAINING, write_status

log = logging.getLogger("realm.daemon")
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp")


class DaemonAlreadyRunning(RuntimeError):
    pass


def latest_checkpoint(ledger: Ledger) -> tuple[int, Path] | None:
    """The newest complete checkpoint (its directory and sidecar still on disk)."""
    rows = ledger.query("SELECT step, path FROM checkpoints ORDER BY step DESC, ts DESC LIMIT 20")
    for row in rows:
        p = Path(row["path"])
        if (p / ".ledger.json").exists() and (p / "config.json").exists():
            return int(row["step"]), p
    return None


class Daemon:
    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.paths = RealmPaths.at(home).ensure()
        self.ledger = Ledger(self.paths, "daemon")
        self.shutdown = threading.Event()
        self.config: RealmConfig = RealmConfig()
        self._lock_fd: int | None = None
        self.started = time.time()

    # -- single instance ------------------------------------------------------------
    def acquire_lock(self) -> None:
        fd = os.open(self.paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DaemonAlreadyRunning(
                f"a daemon already runs for {self.paths.home} (pid {holder}, "
                f"lock {self.paths.lock_file})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    # -- small duties -----------------------------------------------------------------
    def reload_config(self) -> None:
        try:
            self.config = load_config(self.paths.home)
        except ConfigError as e:  # keep the last good config, say why loudly
            log.error("%s", e)
            self.ledger.event("config_error", str(e))

    def heartbeat(self, state: str, **extra: object) -> None:
        write_status(self.paths, DAEMON, pid=os.getpid(), state=state, started=self.started,
                     home=str(self.paths.home), **extra)

    def idle_status(self, state: str) -> None:
        write_status(self.paths, TRAINING, state=state, quest=None, step=self.hero_step())

    def hero_step(self) -> int:
        return int(self.ledger.scalar("SELECT coalesce(max(step), 0) FROM metrics") or 0)

    def recover(self) -> None:
        for f in sorted(self.paths.queue("processing").iterdir()):
            if f.is_file():
                dest = move(f, self.paths.queue("high"))
                self.ledger.append("quests", [{"quest_id": dest.name, "status": "queued",
                                               "priority": "high", "path": str(dest),
                                               "detail": "recovered after an interrupted run"}])
                self.ledger.event("quest_recovered", f"Quest {dest.name} was interrupted; "
                                                     "it is back at the head of the queue")

    # -- inbox ------------------------------------------------------------------------
    def admit_inbox(self) -> None:
        now = time.time()
        for path in sorted(self.paths.inbox.iterdir()):
            if path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES) or path.is_dir():
                continue
            try:
                st = path.lstat()
                if now - st.st_mtime < self.config.daemon.settle_seconds:
                    continue  # may still be being written; look again next tick
                self.admit(path)
            except FileNotFoundError:
                continue
            except Exception as e:  # never die of one bad file
                log.exception("could not admit %r", path.name)
                self.ledger.event("quest_error", f"could not admit {path.name!r}: {e}")

    def admit(self, path: Path) -> None:
        _, report = load_quest(path, self.config.daemon.max_quest_bytes)
        if report.ok:
            dest = move(path, self.paths.queue("normal"))
            self.ledger.append("quests", [{"quest_id": dest.name, "status": "queued",
                                           "priority": "normal", "path": str(dest),
                                           "examples": report.examples}])
            self.ledger.event("quest_queued", f"Quest {dest.name} accepted "
                                              f"({report.examples} examples)")
            log.info("queued %s (%d examples)", dest.name, report.examples)
        else:
            dest = fail(self.paths, path, report)
            self.ledger.append("quests", [{"quest_id": dest.name, "status": "failed",
                                           "path": str(dest), "detail": report.summary()}])
            self.ledger.event("quest_rejected", report.summary())
            log.warning("rejected %s", report.summary())

    # -- battle -----------------------------------------------------------------------
    def fight(self, path: Path, priority: str) -> None:
        from .engine import Job, TrainerEngine

        quest = move(path, self.paths.queue("processing"))
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        examples, report = load_quest(quest, self.config.daemon.max_quest_bytes)
        if not report.ok:
            self._finish(quest, "failed", run_id, report.summary(), fail_report=report)
            return
        latest = latest_checkpoint(self.ledger)
        offset, model_path = latest if latest else (0, self.config.base_model_path(self.paths))
        meta = examples[0].get("meta", {})
        job = Job(quest_id=quest.name, examples=examples, model_path=model_path, run_id=run_id,
                  step_offset=offset, training=self.config.training,
                  skill=meta.get("skill"), skill_level=meta.get("level"))
        self.ledger.append("quests", [{"quest_id": quest.name, "status": "processing",
                                       "priority": priority, "path": str(quest),
                                       "examples": len(examples), "run_id": run_id}])
        self.ledger.event("battle_started", f"{self.config.hero.name} takes on {quest.name}",
                          json.dumps({"model": str(model_path), "step": offset}))
        self.heartbeat("training", quest=quest.name)
        log.info("training %s from %s (step %d)", quest.name, model_path, offset)
        engine = TrainerEngine(self.paths, self.ledger, should_abort=self.shutdown.is_set)
        result = engine.run_job(job)
        log.info("result %s", result.as_dict())
        if not result.success:
            self._finish(quest, "failed", run_id, result.error_message or "training failed",
                         priority=priority)
        elif result.stopped:
            self._finish(quest, "queued", run_id,
                         f"stopped at step {result.global_step}; checkpoint saved",
                         priority=priority)
        else:
            self._finish(quest, "completed", run_id,
                         f"completed at step {result.global_step}, loss {result.final_loss}")

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
            self.ledger.event("quest_failed", f"Quest failed: {quest.name}", detail)
        self.ledger.append("quests", [{"quest_id": dest.name, "status": status,
                                       "priority": priority, "path": str(dest),
                                       "detail": detail[:4000], "run_id": run_id}])

    def _prune_completed(self) -> None:
        done = sorted(self.paths.queue("recently_completed").iterdir(),
                      key=lambda p: p.stat().st_mtime)
        for old in done[:-self.config.daemon.keep_completed]:
            old.unlink(missing_ok=True)

    # -- main loop --------------------------------------------------------------------
    def tick(self) -> bool:
        """One round of duties. True when a quest was fought (look again at once)."""
        self.reload_config()
        self.admit_inbox()
        if self.paths.control_file("stop").exists():
            self.heartbeat("stopped")
            self.idle_status("stopped")
            return False
        if self.paths.control_file("pause").exists():
            self.heartbeat("paused")
            self.idle_status("paused")
            return False
        found = next_quest(self.paths)
        if found is None:
            self.heartbeat("idle")
            self.idle_status("idle")
            return False
        self.fight(*found)
        return True

    def run(self) -> None:
        from watchfiles import watch

        self.acquire_lock()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.shutdown.set())
        self.reload_config()
        self.ledger.ensure_views()
        self.recover()
        self.ledger.event("daemon_started", f"The Arena opens (pid {os.getpid()})")
        log.info("daemon %d watching %s", os.getpid(), self.paths.inbox)
        waiter = watch(self.paths.inbox, self.paths.control, stop_event=self.shutdown,
                       yield_on_timeout=True, debounce=200, step=50,
                       rust_timeout=int(self.config.daemon.poll_seconds * 1000))
        try:
            while not self.shutdown.is_set():
                try:
                    busy = self.tick()
                except Exception as e:  # the Arena never falls to one bad round
                    log.exception("tick failed")
                    self.ledger.event("daemon_error", f"{type(e).__name__}: {e}")
                    busy = False
                    time.sleep(1)
                if not busy and not self.shutdown.is_set():
                    next(waiter, None)
        finally:
            self.heartbeat("offline")
            self.idle_status("offline")
            self.ledger.event("daemon_stopped", f"The Arena closes (pid {os.getpid()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Realm of Training daemon (the Arena)")
    parser.add_argument("--home", default=None, help="realm home (default: REALM_HOME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        Daemon(args.home).run()
    except DaemonAlreadyRunning as e:
        print(f"realm daemon: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
