"""`Realm`: the one Python API. Notebooks, the CLI, the REST handlers and the widgets
all call it; none of them reaches past it into files or DuckDB."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evals.hero import hero_stats
from .quests.admission import check_quest
from .quests.formats import (
    QuestError,
    QuestReport,
    check_name,
    delete_quest,
    file_sha256,
    list_queue,
    reorder,
    set_priority,
    write_quest,
)
from .store.config import ConfigError, RealmConfig, load_config
from .store.ledger import SCHEMA_VERSION, CheckpointLedger, Ledger, json_data
from .store.paths import PRIORITIES, RealmPaths
from .store.process import pid_alive
from .store.status import DAEMON, TRAINING, WEAVER, read_status
from .store.vault import VaultError, VaultKeeper

if TYPE_CHECKING:
    from .oracle.pool import Oracle

CONTROLS = ("pause", "resume", "stop", "skip")


class Realm:
    def __init__(self, home: str | os.PathLike | None = None, writer: str = "api") -> None:
        self.paths = RealmPaths.at(home).ensure()
        self.ledger = Ledger(self.paths, writer)

    @staticmethod
    def home_of(home: str | os.PathLike | None = None) -> Path:
        """The realm home `Realm(home)` opens (REALM_HOME or the default when None),
        without opening it."""
        return RealmPaths.at(home).home

    @property
    def config(self) -> RealmConfig:
        return load_config(self.paths.home)

    def safe_config(self) -> RealmConfig:
        """realm.toml, or the defaults while it is broken (status must still answer)."""
        try:
            return self.config
        except ConfigError:
            return RealmConfig()

    @property
    def checkpoints(self) -> CheckpointLedger:
        return CheckpointLedger(self.ledger)

    @property
    def vault(self) -> VaultKeeper:
        return VaultKeeper(self.paths, self.ledger, self.safe_config())

    # -- hero -----------------------------------------------------------------------
    def hero(self) -> dict:
        # The `hero` view's facts, read from segment statistics and the newest segments
        # only: this is the Tavern's poll, and metrics grow without bound.
        led = self.ledger
        loss = led.tail("metrics", "loss", 1, notnull="loss")
        val = led.tail("metrics", "val_loss", 1, notnull="val_loss")
        row = {"steps": led.max_value("metrics", "step") or 0,
               "loss": loss[0]["loss"] if loss else None,
               "val_loss": val[0]["val_loss"] if val else None,
               **led.query("""SELECT (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy,
                   (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed""")[0]}
        return hero_stats(name=self.safe_config().hero.name, steps=row["steps"], loss=row["loss"],
                          val_loss=row["val_loss"], accuracy=row["accuracy"],
                          quests_completed=row["completed"]).as_dict()

    # -- training -------------------------------------------------------------------
    def daemon_status(self) -> dict:
        d = read_status(self.paths, DAEMON)
        d["alive"] = bool(d.get("pid")) and pid_alive(d.get("pid")) and d.get("state") != "offline"
        return d

    def training_status(self) -> dict:
        status = read_status(self.paths, TRAINING)
        status.setdefault("state", "offline")
        status["controls"] = self.controls()
        status["daemon"] = self.daemon_status()
        if not status["daemon"]["alive"]:
            status["state"] = "offline"
        return status

    def queue(self) -> dict:
        return list_queue(self.paths)

    def controls(self) -> list[str]:
        return [a for a in ("pause", "stop", "skip") if self.paths.control_file(a).exists()]

    def control(self, action: str) -> dict:
        """pause | resume | stop | skip, obeyed by the daemon at the next step boundary.
        skip saves a checkpoint and sets the quest in training aside (failed/, reason
        "skipped"); with no quest in training it is dropped."""
        if action not in CONTROLS:
            raise ValueError(f"unknown action {action!r}; expected one of {CONTROLS}")
        if action == "resume":
            for a in ("pause", "stop"):
                self.paths.control_file(a).unlink(missing_ok=True)
        else:
            self.paths.control_file(action).write_text(str(time.time()))
        self.ledger.event("control", f"{action} requested")
        return {"ok": True, "action": action, "controls": self.controls()}

    def health(self) -> dict:
        """Every thread of the tapestry (as the Weaver last wrote it) and what it mended."""
        weaver = read_status(self.paths, WEAVER)
        weaving = pid_alive(weaver.get("pid")) if weaver else False
        threads = [{**t, "alive": bool(weaving and t.get("alive") and pid_alive(t.get("pid")))}
                   for t in weaver.get("threads", [])]
        return {"home": str(self.paths.home), "daemon": self.daemon_status(),
                "threads": threads, "mended": weaver.get("mended", []),
                "weaver": {"alive": weaving, "pid": weaver.get("pid"),
                           "updated": weaver.get("updated")},
                "ledger": {"schema_version": SCHEMA_VERSION}}

    def stats(self) -> dict:
        counts = self.ledger.query("""
            SELECT (SELECT count(*) FROM metrics) AS metrics,
                   (SELECT count(*) FROM checkpoint_ledger) AS checkpoints,
                   (SELECT count(*) FROM quest_status) AS quests,
                   (SELECT count(*) FROM run_status) AS runs,
                   (SELECT count(*) FROM evals) AS evals,
                   (SELECT count(*) FROM events) AS events""")[0]
        return {"ledger": counts, "vault": self.vault.stats(), "hero": self.hero(),
                "queue": {state: len(v) for state, v in self.queue().items()}}

    # -- quests ---------------------------------------------------------------------
    def validate_quest(self, path: str | os.PathLike, level: str | None = None) -> QuestReport:
        """The report the daemon would give this file (duplicates checked against the
        ledger too)."""
        return check_quest(Path(path), self.config, self.paths, self.ledger, level)[1]

    def add_quest(self, source: str | os.PathLike, name: str | None = None,
                  priority: str | None = None) -> dict:
        """Validate a quest file and drop it into the inbox (the daemon re-checks it)."""
        src = Path(source)
        return self._publish(name or src.name, priority, lambda dest: shutil.copyfile(src, dest))

    def upload_quest(self, name: str, data: bytes, priority: str | None = None) -> dict:
        """The same for bytes (a REST upload)."""
        return self._publish(name, priority, lambda dest: dest.write_bytes(data))

    def _publish(self, name: str, priority: str | None, write) -> dict:
        """The copy is validated under its real name (the suffix decides the format) in a
        hidden folder the daemon ignores, then published with one rename into inbox/ or
        inbox/<priority>/. The name is a bare, safe file name: nothing leaves the inbox."""
        why = check_name(name)
        if why:
            raise ValueError(why)
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; expected one of {PRIORITIES}")
        staging = self.paths.inbox / ".staging"
        staging.mkdir(exist_ok=True)
        staged = staging / f"{os.getpid()}-{time.time_ns()}" / name
        staged.parent.mkdir()
        try:
            write(staged)
            _, report = check_quest(staged, self.config, self.paths, self.ledger)
            if not report.ok:
                self.ledger.event("quest_rejected", report.summary())
                raise QuestError(report)
            folder = self.paths.inbox / priority if priority else self.paths.inbox
            folder.mkdir(exist_ok=True)
            dest = folder / name
            if dest.exists():
                raise FileExistsError(f"a quest named {name!r} is already in the inbox")
            os.replace(staged, dest)
            return {"ok": True, "name": name, "examples": report.examples,
                    "priority": priority or "normal",
                    "warnings": [str(w) for w in report.warnings]}
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)

    def _quest_row(self, path: Path, status: str, priority: str | None, detail: str) -> None:
        self.ledger.append("quests", [{"quest_id": path.name, "status": status,
                                       "priority": priority, "path": str(path), "detail": detail}])

    def set_quest_priority(self, name: str, priority: str) -> dict:
        dest = set_priority(self.paths, name, priority)
        self._quest_row(dest, "queued", priority, f"priority set to {priority}")
        return {"ok": True, "name": dest.name, "priority": priority}

    def reorder_quest(self, name: str, position: int) -> dict:
        order = reorder(self.paths, name, position)
        return {"ok": True, "name": name, "order": order}

    def delete_quest(self, name: str) -> dict:
        path, state = delete_quest(self.paths, name)
        self._quest_row(path, "deleted", state if state in PRIORITIES else None,
                        f"deleted from {state}")
        self.ledger.event("quest_deleted", f"Quest {name} removed from {state}")
        return {"ok": True, "name": name, "was": state}

    def generate_quest(self, skill: str, level: int, count: int, seed: int | None = None) -> Path:
        import skills
        seed = int(time.time()) if seed is None else seed
        problems = skills.generate(skill, level, count, seed)
        name = f"{skill}-L{level}-{count}-s{seed}.jsonl"
        return write_quest(self.paths.inbox / name, [p.as_example() for p in problems])

    # -- settings -------------------------------------------------------------------
    def vram_estimate(self, **overrides: Any) -> dict:
        """GPU memory to fully fine-tune the hero's base model with the realm's settings
        (what the Settings page shows live as fields change). Overrides: seq_len,
        batch_size, dtype, optimizer, gradient_checkpointing, liger."""
        from .train.vram import estimate_from_path
        cfg = self.config
        t = cfg.training
        kwargs: dict[str, Any] = {
            "seq_len": t.max_length, "batch_size": t.batch_size,
            "dtype": "float32" if t.dtype == "float32" else "bfloat16",
            "optimizer": t.optimizer, "gradient_checkpointing": t.gradient_checkpointing,
            "liger": t.liger == "on"}
        kwargs.update(overrides)
        return estimate_from_path(str(cfg.base_model_path(self.paths)), **kwargs).as_dict()

    # -- skills ---------------------------------------------------------------------
    def record_eval(self, result: Any, step: int | None = None, checkpoint: str | None = None) -> str:
        """Store an `skills.EvalResult` (overall + per primitive); returns its run id."""
        from .evals.skillbook import record_eval
        return record_eval(self.ledger, result, step, checkpoint)

    def skill_state(self, skill: str) -> dict:
        from .evals.skillbook import skill_state
        return skill_state(self.ledger, skill).as_dict()

    def eval_report(self, skill: str, threshold: float = 0.8) -> dict:
        from .evals.skillbook import eval_report
        return eval_report(self.ledger, skill, threshold)

    def spar(self, result: Any, seed: int | None = None) -> Path:
        """Sparring from an eval's wrong answers: 3 examples each, into queue/high."""
        from skills.sparring import SPARRING_SEED, sparring_examples

        from .evals.skillbook import SparringError, publish_sparring
        if not result.wrong:
            raise SparringError("every answer was right: nothing to spar about")
        examples = sparring_examples(result, SPARRING_SEED if seed is None else seed)
        name = f"sparring-{result.skill}-L{result.level}-{len(result.wrong)}w-{time.time_ns()}.jsonl"
        return self._queued_high(publish_sparring(self.paths, examples, name), len(examples))

    def targeted_quest(self, skill: str, level: int | None = None, count: int = 200,
                       threshold: float = 0.8, seed: int | None = None) -> Path:
        """Practice weighted to the primitives under the threshold in the latest eval of
        the level (default: the skill's current level), into queue/high."""
        import skills
        from skills.sparring import targeted_problems

        from .evals.skillbook import primitive_accuracy, skill_state
        level = skill_state(self.ledger, skill).level if level is None else level
        acc = primitive_accuracy(self.ledger, skill, level)
        if not acc:
            raise skills.SkillError(f"no eval of {skill} level {level} in the ledger yet")
        seed = time.time_ns() % 2**31 if seed is None else seed
        problems = targeted_problems(skill, level, acc, count, seed, threshold)
        name = f"target-{skill}-L{level}-{count}-s{seed}.jsonl"
        dest = write_quest(self.paths.queue("high") / name, [p.as_example() for p in problems])
        return self._queued_high(dest, len(problems))

    def _queued_high(self, dest: Path, examples: int) -> Path:
        """Quests the realm writes straight into queue/high are recorded as the daemon's
        admission would record them (so duplicate detection and the quest board see them)."""
        self.ledger.append("quests", [{"quest_id": dest.name, "status": "queued",
                                       "priority": "high", "path": str(dest), "examples": examples,
                                       "sha256": file_sha256(dest)}])
        return dest
    # -- champion -------------------------------------------------------------------
    def champion(self) -> dict | None:
        rows = self.ledger.query("SELECT step, name, path, ts FROM champion")
        return rows[0] if rows else None

    def promote(self, step: int | str) -> dict:
        """Make a checkpoint the champion (an event keyed 'champion'; the latest wins).
        Retention never deletes it."""
        rec = self.checkpoints.get(step)
        if rec is None or not Path(rec.path).is_dir():
            raise VaultError(f"no checkpoint at step {step} on disk")
        data = {"step": rec.step, "name": rec.name, "path": rec.path, "loss": rec.loss,
                "val_loss": rec.val_loss}
        self.ledger.event("champion", f"{rec.name} is the champion", json_data(data),
                          key="champion")
        self.check_achievements()  # "First champion"
        return {"ok": True, **data}

    def delete_checkpoint(self, step: int) -> dict:
        """Delete a checkpoint from disk; the champion and the one in use are refused."""
        return self.vault.delete_checkpoint(step)

    def export_checkpoint(self, step: int, dest: str | os.PathLike | None = None) -> Path:
        """A clean HF directory of a checkpoint (no optimizer/trainer state), by default
        <realm home>/exports/<checkpoint name>."""
        if dest is None:
            rec = self.checkpoints.get(step) if isinstance(step, int) and not isinstance(step, bool) else None
            dest = self.paths.exports / (rec.name if rec else f"checkpoint-{step}")
        return self.vault.export_checkpoint(step, dest)

    # -- ledger ---------------------------------------------------------------------
    def sql(self, query: str) -> list[dict]:
        return self.ledger.query(query)

    def losses(self, limit: int = 500) -> list[list[float]]:
        return self.series("loss", limit)

    def events(self, limit: int = 10) -> list[dict]:
        return [{"ts": r["ts"].timestamp(), "kind": r["kind"], "message": r["message"]}
                for r in self.ledger.query(
                    "SELECT ts, kind, message FROM events ORDER BY ts DESC LIMIT ?", [limit])]

    def tavern_state(self) -> dict:
        """Everything the hero card and battle view show, in one JSON-able dict."""
        return {"hero": self.hero(), "battle": self.training_status(),
                "losses": self.losses(), "events": self.events()}

    # -- the Tavern's pages (issue 8) ---------------------------------------------------
    def achievements(self) -> list[dict]:
        """Earned achievements, oldest first, each with its date."""
        from .evals.achievements import earned
        return earned(self.ledger)

    def check_achievements(self) -> list[dict]:
        """Award what the ledger's facts have earned and not yet recorded; the new ones."""
        from .evals.achievements import award
        return award(self.ledger)

    def skills_summary(self) -> list[dict]:
        """Each skill's badge: name, icon, level, max level, recent evals at the level."""
        import skills
        out = []
        for sid in skills.skill_ids():
            d = skills.skill_def(sid)
            st = self.skill_state(sid)
            out.append({"skill": sid, "name": d.name, "icon": d.icon, "level": st["level"],
                        "max_level": d.max_level, "recent": st.get("recent", [])})
        return out

    def skill_catalog(self) -> list[dict]:
        """Every skill's id, name, icon and max level (no ledger reads)."""
        import skills
        return [{"skill": s, "name": d.name, "icon": d.icon, "max_level": d.max_level}
                for s in skills.skill_ids() for d in [skills.skill_def(s)]]

    def settings(self) -> dict:
        """realm.toml's fields (effective values, types, bounds, choices, which are
        critical) for the Settings page; `error` while the file is broken."""
        from .store.settings import describe
        try:
            cfg, error = self.config, None
        except ConfigError as e:
            cfg, error = RealmConfig(), str(e)
        return {"fields": describe(cfg), "error": error, "path": str(self.paths.config_file)}

    def save_settings(self, changes: dict[str, Any], confirm: bool = False) -> dict:
        """Validate {"section.key": value} against the config models and write realm.toml
        atomically. Critical fields (max_length, base_model, ...) need confirm=True;
        without it nothing is written and `needs_confirmation` names them."""
        from .store.settings import save
        result = save(self.paths, changes, confirm)
        if result.get("ok"):
            self.ledger.event("settings_changed", "Settings changed: " + ", ".join(sorted(changes)))
        return result

    def preview_settings(self, changes: dict[str, Any]) -> dict[str, str]:
        """The validation errors of {"section.key": value} as typed so far ({} when
        valid); nothing is written."""
        from .store.settings import preview
        return preview(self.paths, changes)

    def disk_usage(self) -> dict:
        """The realm home's disk: free/total bytes and what checkpoints take."""
        from .store.vault import dir_bytes
        du = shutil.disk_usage(self.paths.home)
        ckpt = self.paths.checkpoints
        return {"total": du.total, "used": du.used, "free": du.free,
                "checkpoints": sum(dir_bytes(p) for p in ckpt.iterdir() if p.is_dir())
                if ckpt.exists() else 0}

    def notable_events(self, kinds: tuple[str, ...], limit: int = 20) -> list[dict]:
        """The newest events of these kinds (what the Tavern's toasts announce)."""
        marks = ", ".join("?" for _ in kinds)
        return [{"ts": r["ts"].timestamp(), "kind": r["kind"], "message": r["message"]}
                for r in self.ledger.query(f"SELECT ts, kind, message FROM events WHERE kind IN ({marks}) "
                                           "ORDER BY ts DESC LIMIT ?", [*kinds, limit])]

    def quest_sizes(self) -> dict[str, int]:
        """Examples per quest name, as admission counted them."""
        return {r["quest_id"]: r["n"] for r in self.ledger.query(
            "SELECT quest_id, max(examples) AS n FROM quests WHERE examples IS NOT NULL GROUP BY quest_id")}

    def seconds_per_example(self) -> float | None:
        """The recent training pace (from the last 200 logged steps), for queue estimates."""
        rows = self.ledger.tail("metrics", "ts, step", 200, notnull="loss")
        if len(rows) < 2:
            return None
        first, last = min(rows, key=lambda r: r["step"]), max(rows, key=lambda r: r["step"])
        steps = last["step"] - first["step"]
        seconds = (last["ts"] - first["ts"]).total_seconds()
        t = self.safe_config().training
        per_step = t.batch_size * t.gradient_accumulation_steps
        return seconds / steps / per_step if steps > 0 and seconds > 0 else None

    def primitive_history(self, skill: str, checkpoints: int = 20) -> dict:
        """Per-primitive accuracy of a skill over its last evaluated checkpoints (the
        Guild's heatmap): {"steps", "primitives", "cells": [[step, primitive, accuracy]]}."""
        rows = self.ledger.query("""
            WITH recent AS (SELECT DISTINCT step FROM primitive_accuracy
                            WHERE skill = ? AND step IS NOT NULL ORDER BY step DESC LIMIT ?)
            SELECT step, primitive_id, sum(correct) / nullif(sum(n), 0) AS accuracy
            FROM primitive_accuracy WHERE skill = ? AND step IN (SELECT step FROM recent)
            GROUP BY step, primitive_id ORDER BY step, primitive_id""", [skill, checkpoints, skill])
        return {"steps": sorted({r["step"] for r in rows}),
                "primitives": sorted({r["primitive_id"] for r in rows}),
                "cells": [[r["step"], r["primitive_id"], r["accuracy"]] for r in rows]}

    def eval_history(self, skill: str | None = None) -> list[dict]:
        """Every eval (step, skill, level, accuracy), oldest first: accuracy by level plots."""
        return self.ledger.query(
            "SELECT ts, step, skill, level, accuracy FROM evals WHERE (? IS NULL OR skill = ?) "
            "ORDER BY ts", [skill, skill])

    SERIES = ("loss", "val_loss", "tokens_per_s", "learning_rate", "grad_norm")

    def series(self, column: str, limit: int = 500) -> list[list[float]]:
        """[[step, value]] of one metrics column, oldest first (the Tavern's plots)."""
        if column not in self.SERIES:
            raise ValueError(f"unknown metric {column!r}; expected one of {self.SERIES}")
        rows = self.ledger.tail("metrics", f"step, {column}", limit, notnull=column)
        return [[r["step"], r[column]] for r in reversed(rows)]

    # -- oracle ---------------------------------------------------------------------
    _oracle_lock = threading.Lock()  # server threads may ask first at the same time

    @property
    def oracle(self) -> Oracle:
        """This process's Oracle: its own bounded pool ([oracle] in realm.toml) and the
        inference hosts of hosts.toml. Chat by exact step; never another model."""
        with self._oracle_lock:
            if "_oracle" not in self.__dict__:
                self.__dict__["_oracle"] = self._make_oracle()
            return self.__dict__["_oracle"]

    def _make_oracle(self) -> Oracle:
        from .oracle.hosts import inference_hosts
        from .oracle.pool import ModelPool, Oracle, UnknownCheckpoint, list_checkpoints, locate_checkpoint
        from .oracle.remote import RemoteOracle

        cfg = self.config

        def base() -> Path:
            return self.config.base_model_path(self.paths)

        def locate(step: int) -> tuple[str, Path]:
            try:
                return locate_checkpoint(self.ledger, base(), step)
            except UnknownCheckpoint as missing:
                if step == 0:
                    raise
                # Not on this machine: ask the vault, which copies it from the best zone
                # (its ledger row may be gone too: the directory name is canonical).
                try:
                    path = self.vault.fetch(f"checkpoint_{step}")
                except VaultError:
                    raise missing from None
                return path.name, path

        def name_of(step: int) -> str:
            from .oracle.pool import checkpoint_row
            return checkpoint_row(self.ledger, base(), step)["name"]

        def remotes() -> dict[str, RemoteOracle]:
            return {h.name: RemoteOracle(h.name, h.url, name_of, h.token)
                    for h in inference_hosts(self.paths.home).values()}

        pool = ModelPool(locate, cfg.oracle.max_models, cfg.oracle.max_bytes, cfg.oracle.dtype,
                         cfg.oracle.threads)
        return Oracle(locate, pool, remotes, lambda: list_checkpoints(self.ledger, base()))

    def oracle_probe(self, skill: str, step: int, host: str | None = None, seed: int | None = None) -> dict:
        """"Ask DIO": a fresh problem at the skill's current level, DIO's answer, and
        whether the skill's own scorer calls it right."""
        return self.oracle.probe(skill, step, host, seed=seed,
                                 level_of=lambda s: self.skill_state(s)["level"])

    # -- task master and curriculum (realm_kernel/services/taskmaster.py, curriculum.py) --------
    def tasks(self, check_work: bool = False) -> list[dict]:
        """Every registered task with its settings and last run (task_id, name, priority,
        resource, cooldown_s, enabled, notebook, last_run, last_status, next_eligible,
        output, detail); with check_work, also whether it may run now and why not."""
        from .services.taskmaster import describe, gpu_status
        return describe(self, gpu_status() if check_work else None, check_work=check_work)

    def run_task(self, task_id: str) -> dict:
        """Ask the Task Master process to run a task now (a request file it takes first)."""
        from .services.taskmaster import request_run
        return request_run(self, task_id)

    def set_task(self, task_id: str, *, enabled: bool | None = None, priority: int | None = None,
                 cooldown_s: float | None = None) -> dict:
        from .services.taskmaster import set_task
        return set_task(self, task_id, enabled, priority, cooldown_s)

    def taskmaster_status(self) -> dict:
        from .services.taskmaster import STATUS, gpu_status
        d = read_status(self.paths, STATUS)
        d["alive"] = bool(d.get("pid")) and pid_alive(d.get("pid")) and d.get("state") != "offline"
        d["gpu"] = gpu_status()
        return d

    def curriculum(self) -> list[dict]:
        """Per skill: skill, name, icon, level, max_level, recent, review_levels, priority,
        enabled."""
        from .evals.curriculum import plan
        return plan(self.ledger, self.safe_config().curriculum)

    def quests_waiting(self) -> int:
        q = self.queue()
        return sum(len(q[s]) for s in ("processing", *PRIORITIES)) + sum(
            1 for p in self.paths.inbox.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(self.paths.inbox).parts))

    def generate_curriculum_quest(self, seed: int | None = None) -> dict | None:
        """The curriculum's next quest (skill by priority, its current level plus review)
        into the inbox; queued curriculum quests of a level the skill has left are
        withdrawn first. None when no skill is enabled."""
        from .evals import curriculum
        cfg = self.safe_config().curriculum
        plans = self.curriculum()
        withdrawn = []
        for state in PRIORITIES:
            for e in self.queue()[state]:
                parsed = curriculum.parse_name(e["name"])
                here = next((p for p in plans if parsed and p["skill"] == parsed[0]), None)
                if here and parsed[1] != here["level"]:
                    try:
                        self.delete_quest(e["name"])
                        withdrawn.append(e["name"])
                    except (QuestError, FileNotFoundError, ValueError):
                        pass  # the daemon took it meanwhile
        chosen = curriculum.pick(plans, curriculum.generated_counts(self.ledger))
        if chosen is None:
            return None
        seed = time.time_ns() % 2**31 if seed is None else seed
        problems = curriculum.problems(chosen["skill"], chosen["level"], cfg.quest_examples,
                                       cfg.review_fraction, cfg.review_window, seed)
        name = curriculum.quest_name(chosen["skill"], chosen["level"], seed)
        staging = self.paths.inbox / ".staging"
        staging.mkdir(exist_ok=True)
        staged = write_quest(staging / name, [p.as_example() for p in problems])
        os.replace(staged, self.paths.inbox / name)
        data = {"skill": chosen["skill"], "level": chosen["level"], "quest": name,
                "examples": len(problems), "review_levels": chosen["review_levels"],
                "review": sum(p.level != chosen["level"] for p in problems), "seed": seed,
                "withdrawn": withdrawn}
        self.ledger.event("quest_generated", f"New quest: {chosen['name']} L{chosen['level']} "
                          f"({len(problems)} problems)", json_data(data))
        return data

    def eval_queue(self) -> list[dict]:
        """Checkpoints waiting for their one eval, oldest first."""
        from .evals.evalqueue import pending
        return pending(self)

    def evaluate_pending(self, max_checkpoints: int = 6, size: int | None = None) -> list[dict]:
        """Evaluate waiting checkpoints (each exactly once) on their skill's current
        level; records evals, per-primitive accuracy, level-ups and champions."""
        from .evals.evalqueue import evaluate
        return [evaluate(self, req, size) for req in self.eval_queue()[:max_checkpoints]]

    def spar_checkpoint(self, skill: str, count: int = 40, step: int | None = None,
                        seed: int | None = None) -> dict:
        """A sparring session: `count` fresh problems for a checkpoint (default newest);
        wrong answers -> 3 examples each -> queue/high."""
        from .evals.evalqueue import spar
        return spar(self, skill, count, step, seed)

    def cleanup_checkpoints(self, apply: bool = True) -> dict:
        """Retention through the vault, sparing every checkpoint still awaiting its eval."""
        plan = self.vault.retention_plan()
        waiting = {r["step"] for r in self.eval_queue()}
        deleted, kept = [], []
        for d in plan["delete"]:
            if d["step"] in waiting or not apply:
                kept.append(d["step"])
                continue
            try:
                self.vault.delete_checkpoint(d["step"], by="cleanup")
                deleted.append(d["step"])
            except (VaultError, ValueError) as e:  # protected meanwhile, or already gone
                kept.append(d["step"])
                self.ledger.event("cleanup_skipped", f"kept step {d['step']}: {e}")
        return {"deleted": deleted, "kept_waiting_or_protected": kept,
                "keep": plan["keep"], "dry_run": not apply}

    def validate_queue(self) -> list[dict]:
        """The daemon's report for every queued quest (nothing is moved)."""
        out = []
        for state in PRIORITIES:
            for e in self.queue()[state]:
                path = self.paths.queue(state) / e["name"]
                try:
                    rep = self.validate_quest(path)
                    out.append({"quest": e["name"], "priority": state, "ok": rep.ok,
                                "examples": rep.examples, "summary": rep.summary()})
                except FileNotFoundError:
                    continue  # trained meanwhile
        return out

    def lineage(self) -> list[dict]:
        """Which quest trained which checkpoint, with its eval (the lineage report)."""
        return self.ledger.query("""
            SELECT c.step, c.name, c.training_file AS quest, c.skill, c.skill_level, c.loss,
                   e.level AS eval_level, e.accuracy
            FROM checkpoint_ledger c LEFT JOIN evals e ON e.checkpoint = c.name
            ORDER BY c.step""")
