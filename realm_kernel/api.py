"""`Realm`: the one Python API. Notebooks, the CLI, the REST handlers and the widgets
all call it; none of them reaches past it into files or DuckDB."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import realm_skills as skills

from .evals import forgetting, grading, practice
from .evals.achievements import award, earned
from .evals.champion import champion, promote
from .evals.curriculum import plan_of
from .evals.evalqueue import cleanup, evaluate, pending, probe_checkpoint, spar
from .evals.hero import hero_stats
from .evals.skillbook import (
    check_queued_sparring,
    eval_report,
    primitive_summary,
    skill_primitives,
    skill_state,
)
from .hero_model.vram import estimate_from_path
from .oracle.client import SharedOracle
from .oracle.inference_hosts import inference_hosts
from .oracle.pool import ModelPool, Oracle, require_step
from .oracle.remote import RemoteOracle
from .quests.admission import check_quest, validate_queue
from .quests.formats import QuestError as QuestError  # re-exported for the widgets
from .quests.formats import QuestReport
from .quests.publish import publish, quest_row, record, withdraw
from .quests.queue import list_queue, reorder, set_priority, waiting
from .services import taskmaster
from .store import backup
from .store.checkpoints import UnknownCheckpoint, checkpoint_row, list_checkpoints, locate_checkpoint
from .store.config import ConfigError, RealmConfig
from .store.home import Home
from .store.paths import RealmPaths
from .store.process import pid_alive
from .store.schema import SCHEMA_VERSION
from .store.settings import describe as describe_settings
from .store.settings import preview as preview_settings_file
from .store.settings import save as save_settings_file
from .store.status import DAEMON, TRAINING, WEAVER, read_status
from .store.vault import VaultError, VaultKeeper, dir_bytes

CONTROLS = ("pause", "resume", "stop", "skip")


class Realm(Home):
    """The facade over one realm home: each method is a thin call into the layer that
    owns it (store, quests, evals, oracle, services)."""

    @staticmethod
    def home_of(home: str | os.PathLike | None = None) -> Path:
        """The realm home `Realm(home)` opens (REALM_HOME or the default when None),
        without opening it."""
        return RealmPaths.at(home).home

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
        fixed = led.tail("metrics", "def_loss", 1, notnull="def_loss")
        row = {"steps": led.max_value("metrics", "step") or 0,
               "loss": loss[0]["loss"] if loss else None,
               "val_loss": val[0]["val_loss"] if val else None,
               **led.query("""SELECT (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy,
                   (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed""")[0]}
        return hero_stats(name=self.safe_config().hero.name, steps=row["steps"], loss=row["loss"],
                          val_loss=row["val_loss"], accuracy=row["accuracy"],
                          quests_completed=row["completed"],
                          def_loss=fixed[0]["def_loss"] if fixed else None).as_dict()

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
        """Every service the Weaver supervises (as it last wrote them) and what it mended."""
        weaver = read_status(self.paths, WEAVER)
        weaving = pid_alive(weaver.get("pid")) if weaver else False
        services = [{**t, "alive": bool(weaving and t.get("alive") and pid_alive(t.get("pid")))}
                   for t in weaver.get("services", [])]
        return {"home": str(self.paths.home), "daemon": self.daemon_status(),
                "services": services, "mended": weaver.get("mended", []),
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
    def validate_quest(self, path: str | os.PathLike, depth: str | None = None) -> QuestReport:
        """The report the daemon would give this file (duplicates checked against the
        ledger too)."""
        return check_quest(Path(path), self.config, self.paths, self.ledger, depth)[1]

    def add_quest(self, source: str | os.PathLike, name: str | None = None,
                  priority: str | None = None) -> dict:
        """Validate a quest file and drop it into the inbox (the daemon re-checks it)."""
        src = Path(source)
        return publish(self.paths, self.ledger, self.config, name or src.name,
                       lambda dest: shutil.copyfile(src, dest), priority=priority)

    def import_dataset(self, source: str, split: str | None = None, name: str | None = None,
                       priority: str | None = None) -> dict:
        """A HF `datasets` folder (save_to_disk) or a cached hub dataset id as a .jsonl
        quest in the inbox (every row checked and converted to chat examples first)."""
        from .quests.datasets import dataset_examples
        from .quests.formats import limits_of, safe_name
        examples, report = dataset_examples(source, split, limits_of(self.config))
        name = name or safe_name(source.replace("/", "__")) + (f"-{split}" if split else "") + ".jsonl"
        out = publish(self.paths, self.ledger, self.config, name,
                      examples, priority=priority)
        return {**out, "source": source, "rows": report.examples}

    def upload_quest(self, name: str, data: bytes, priority: str | None = None) -> dict:
        """The same for bytes (a REST upload)."""
        return publish(self.paths, self.ledger, self.config, name, lambda dest: dest.write_bytes(data),
                       priority=priority)

    def set_quest_priority(self, name: str, priority: str) -> dict:
        dest = set_priority(self.paths, name, priority)
        record(self.ledger, [quest_row(dest, "queued", priority, detail=f"priority set to {priority}")])
        return {"ok": True, "name": dest.name, "priority": priority}

    def reorder_quest(self, name: str, position: int) -> dict:
        order = reorder(self.paths, name, position)
        return {"ok": True, "name": name, "order": order}

    def delete_quest(self, name: str) -> dict:
        return withdraw(self.paths, self.ledger, name)

    def generate_quest(self, skill: str, level: int, count: int, seed: int | None = None) -> Path:
        """`count` problems of a skill level into the inbox."""
        return practice.skill_quest(self, skill, level, count, seed)

    # -- settings -------------------------------------------------------------------
    def vram_estimate(self, **overrides: Any) -> dict:
        """GPU memory to fine-tune the hero's base model with the realm's settings, full or
        LoRA/QLoRA (what the Settings page shows live as fields change). Overrides: seq_len,
        batch_size, dtype, optimizer, gradient_checkpointing, liger, method, lora_rank."""
        cfg = self.config
        t = cfg.training
        kwargs: dict[str, Any] = {
            "seq_len": t.max_length, "batch_size": t.batch_size,
            "dtype": "float32" if t.dtype == "float32" else "bfloat16",
            "optimizer": t.optimizer, "gradient_checkpointing": t.gradient_checkpointing,
            "liger": t.liger == "on", "method": t.method, "lora_rank": t.lora_rank,
            "lora_targets": t.lora_targets}
        kwargs.update(overrides)
        return estimate_from_path(str(cfg.base_model_path(self.paths)), **kwargs).as_dict()

    # -- skills ---------------------------------------------------------------------
    def record_eval(self, result: Any, step: int | None = None, checkpoint: str | None = None) -> str:
        """Store an `skills.EvalResult` (overall + per primitive) and apply the level-up
        rule (a level-up event, the checkpoint becomes champion); returns its run id."""
        return grading.record(self, result, step, checkpoint)["run_id"]

    def skill_state(self, skill: str) -> dict:
        return skill_state(self.ledger, skill).as_dict()

    def eval_report(self, skill: str, threshold: float = 0.8) -> dict:
        return eval_report(self.ledger, skill, threshold)

    def spar(self, result: Any, seed: int | None = None) -> Path:
        """Sparring from an eval's wrong answers: 3 examples each, into queue/high."""
        return practice.spar_result(self, result, seed)

    def targeted_quest(self, skill: str, level: int | None = None, count: int = 200,
                       threshold: float = 0.8, seed: int | None = None) -> Path:
        """Practice weighted to the primitives under the threshold in the latest eval of
        the level (default: the skill's current level), into queue/high."""
        return practice.targeted_quest(self, skill, level, count, threshold, seed)

    # -- champion -------------------------------------------------------------------
    def champion(self) -> dict | None:
        return champion(self)

    def promote(self, step: int | str) -> dict:
        """Make a checkpoint the champion (an event keyed 'champion'; the latest wins).
        Retention never deletes it."""
        return promote(self, step)

    # -- backups --------------------------------------------------------------------
    def backup(self, dest: str | os.PathLike | None = None, all_checkpoints: bool = False) -> dict:
        """A consistent snapshot (ledger, settings, the champion's weights; with
        all_checkpoints every checkpoint) into DEST, default backups/<time>/."""
        champ = self.champion()
        target = Path(dest) if dest else self.paths.home / "backups" / time.strftime("%Y%m%d-%H%M%S")
        return backup.snapshot(self.paths, target, "manual",
                               champion=Path(champ["path"]) if champ and champ.get("path") else None,
                               all_checkpoints=all_checkpoints)

    def restore(self, src: str | os.PathLike) -> dict:
        """Bring this realm home back from a backup (refused while a daemon runs)."""
        out = backup.restore(self.paths, Path(src))
        self.ledger.ensure_views()
        return out

    def delete_checkpoint(self, step: int) -> dict:
        """Delete a checkpoint from disk; the champion and the one in use are refused."""
        return self.vault.delete_checkpoint(step)

    def export_checkpoint(self, step: int, dest: str | os.PathLike | None = None,
                          merge: bool = False) -> Path:
        """A clean HF directory of a checkpoint (no optimizer/trainer state), by default
        <realm home>/exports/<checkpoint name>; `merge` folds a LoRA adapter into its base."""
        from .train.loading import merge_adapter
        if dest is None:
            rec = self.checkpoints.get(step) if isinstance(step, int) and not isinstance(step, bool) else None
            dest = self.paths.exports / (rec.name if rec else f"checkpoint-{step}")
        return self.vault.export_checkpoint(step, dest, merge_adapter if merge else None)

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
        return earned(self.ledger)

    def check_achievements(self) -> list[dict]:
        """Award what the ledger's facts have earned and not yet recorded; the new ones."""
        return award(self.ledger)

    def skills_summary(self) -> list[dict]:
        """Each skill's badge: name, icon, level, max level, recent evals at the level."""
        out = []
        for sid in skills.skill_ids():
            d = skills.skill_def(sid)
            st = self.skill_state(sid)
            out.append({"skill": sid, "name": d.name, "icon": d.icon, "level": st["level"],
                        "max_level": d.max_level, "recent": st.get("recent", [])})
        return out

    # -- skill tooling (REST /realm/api/skills..., `realm skills ...`) -----------------------
    def skills_list(self) -> list[dict]:
        """Every skill: id, name, icon, passive, levels, primitive ids, current level."""
        out = []
        for sid in skills.skill_ids():
            d = skills.skill_def(sid)
            out.append({"id": sid, "name": d.name, "icon": d.icon, "passive": d.passive,
                        "levels": d.max_level, "eval_size": d.eval_size,
                        "primitives": [p.id for p in d.primitives],
                        "level": self.skill_state(sid)["level"]})
        return out

    def skill_primitives(self, skill: str) -> list[dict]:
        return skill_primitives(skill)

    def primitive_summary(self, skill: str) -> list[dict]:
        return primitive_summary(self.ledger, skill)

    def passives(self) -> list[dict]:
        """The 11 passives with their primitives and difficulty knobs."""
        from realm_skills.catalog import catalog
        cat = catalog()
        return [{"id": p.id, "name": p.name, "track": p.track, "skill": p.skill,
                 "primitives": [{"id": q.id, "name": q.name,
                                 "knobs": skills.knobs_for(q.id) if q.skill is None else None}
                                for q in cat.primitives.values() if q.passive == p.id]}
                for p in cat.passives]

    def passive_history(self, passive: str | None = None, limit: int = 200) -> dict:
        """The forgetting watch: passive accuracy over steps, best, latest, drop flags, cost."""
        return forgetting.history(self.ledger, passive, limit, self.safe_config().watch.drop_points)

    def review_quest(self, passive: str, count: int | None = None) -> str:
        """A review quest of every primitive of a passive into the inbox; its name."""
        from realm_skills.catalog import catalog
        if passive not in {p.id for p in catalog().passives}:
            known = [p.id for p in catalog().passives]
            raise skills.SkillError(f"unknown passive {passive!r}; known: {known}")
        return forgetting.review_quest(self, passive, count or self.safe_config().watch.review_examples)

    def probe_passives(self, step: int | None = None) -> dict:
        """Run the fixed passive probe set on a checkpoint now (default: the newest)."""
        # Half the cores, as the eval kernels (training has the rest; oversubscribed
        # threads on a busy 2-core machine ran the probe ~10x slower).
        threads = self.safe_config().oracle.threads or max(1, (os.cpu_count() or 2) // 2)
        return probe_checkpoint(self, step, threads)

    def check_sparring(self) -> list[dict]:
        """Every queued sparring file, checked as a quest and by the sparring rules."""
        return check_queued_sparring([self.paths.queue(p) for p in ("high", "normal", "low")])

    def skill_catalog(self) -> list[dict]:
        """Every skill's id, name, icon and max level (no ledger reads)."""
        return [{"skill": s, "name": d.name, "icon": d.icon, "max_level": d.max_level}
                for s in skills.skill_ids() for d in [skills.skill_def(s)]]

    def settings(self) -> dict:
        """realm.toml's fields (effective values, types, bounds, choices, which are
        critical) for the Settings page; `error` while the file is broken."""
        try:
            cfg, error = self.config, None
        except ConfigError as e:
            cfg, error = RealmConfig(), str(e)
        return {"fields": describe_settings(cfg), "error": error, "path": str(self.paths.config_file)}

    def save_settings(self, changes: dict[str, Any], confirm: bool = False) -> dict:
        """Validate {"section.key": value} against the config models and write realm.toml
        atomically. Critical fields (max_length, base_model, ...) need confirm=True;
        without it nothing is written and `needs_confirmation` names them."""
        result = save_settings_file(self.paths, changes, confirm)
        if result.get("ok"):
            self.ledger.event("settings_changed", "Settings changed: " + ", ".join(sorted(changes)))
        return result

    def preview_settings(self, changes: dict[str, Any]) -> dict[str, str]:
        """The validation errors of {"section.key": value} as typed so far ({} when
        valid); nothing is written."""
        return preview_settings_file(self.paths, changes)

    def disk_usage(self) -> dict:
        """The realm home's disk: free/total bytes and what checkpoints take."""
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
    def oracle(self) -> SharedOracle:
        """The realm's one Oracle pool ([oracle] in realm.toml), held by the pool owner
        (the Jupyter server extension) and reached over its API from every other process;
        this process's own pool when no owner runs (`status()` says which). And the
        inference hosts of hosts.toml. Chat by exact step; never another model."""
        with self._oracle_lock:
            if "_oracle" not in self.__dict__:
                self.__dict__["_oracle"] = self._make_oracle()
            return self.__dict__["_oracle"]

    def _make_oracle(self) -> SharedOracle:

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
            return checkpoint_row(self.ledger, base(), step)["name"]

        def remotes() -> dict[str, RemoteOracle]:
            return {h.name: RemoteOracle(h.name, h.url, name_of, h.token)
                    for h in inference_hosts(self.paths.home).values()}

        pool = ModelPool(locate, cfg.oracle.max_models, cfg.oracle.max_bytes, cfg.oracle.dtype,
                         cfg.oracle.threads)
        local = Oracle(locate, pool, remotes, lambda: list_checkpoints(self.ledger, base()))
        return SharedOracle(local, self.paths.oracle_owner)

    def oracle_probe(self, skill: str, step: int, host: str | None = None, seed: int | None = None) -> dict:
        """"Ask DIO": a fresh problem at the skill's current level, DIO's answer, and
        whether the skill's own scorer calls it right (graded like any eval)."""
        step = require_step(step)
        replies: list[dict] = []

        def ask_one(question: str) -> str:
            replies.append(self.oracle.chat(step, message=question, host=host,
                                            sampling={"max_new_tokens": 256}))
            return replies[-1]["content"]

        graded = grading.probe(ask_one, skill, self.skill_state(skill)["level"], seed)
        return {**replies[0], **graded}

    # -- task master and curriculum (realm_kernel/services/taskmaster.py, curriculum.py) --------
    def tasks(self, check_work: bool = False) -> list[dict]:
        """Every registered task with its settings and last run (task_id, name, priority,
        resource, cooldown_s, enabled, notebook, last_run, last_status, next_eligible,
        output, detail); with check_work, also whether it may run now and why not."""
        return taskmaster.describe(self, taskmaster.gpu_status() if check_work else None,
                                   check_work=check_work)

    def run_task(self, task_id: str) -> dict:
        """Ask the Task Master process to run a task now (a request file it takes first)."""
        return taskmaster.request_run(self, task_id)

    def set_task(self, task_id: str, *, enabled: bool | None = None, priority: int | None = None,
                 cooldown_s: float | None = None, parameters: dict | None = None) -> dict:
        """Run-time task settings (over realm.toml's [taskmaster.tasks.<id>]); `parameters`
        are the notebook's (counts, eval sizes, thresholds), checked by name and type."""
        return taskmaster.set_task(self, task_id, enabled, priority, cooldown_s, parameters)

    def taskmaster_status(self) -> dict:
        d = read_status(self.paths, taskmaster.STATUS)
        d["alive"] = bool(d.get("pid")) and pid_alive(d.get("pid")) and d.get("state") != "offline"
        d["gpu"] = taskmaster.gpu_status()
        return d

    def curriculum(self) -> list[dict]:
        """Per skill: skill, name, icon, level, max_level, recent, review_levels, priority,
        enabled."""
        return plan_of(self)

    def quests_waiting(self) -> int:
        return waiting(self.paths)

    def generate_curriculum_quest(self, seed: int | None = None) -> dict | None:
        """The curriculum's next quest into the inbox (see evals.practice)."""
        return practice.curriculum_quest(self, seed)

    def eval_queue(self) -> list[dict]:
        """Checkpoints waiting for their one eval, oldest first."""
        return pending(self)

    def evaluate_pending(self, max_checkpoints: int = 6, size: int | None = None) -> list[dict]:
        """Evaluate waiting checkpoints (each exactly once) on their skill's current
        level; records evals, per-primitive accuracy, level-ups and champions."""
        return [evaluate(self, req, size) for req in self.eval_queue()[:max_checkpoints]]

    def spar_checkpoint(self, skill: str, count: int = 40, step: int | None = None,
                        seed: int | None = None) -> dict:
        """A sparring session: `count` fresh problems for a checkpoint (default newest);
        wrong answers -> 3 examples each -> queue/high."""
        return spar(self, skill, count, step, seed)

    def cleanup_checkpoints(self, apply: bool = True) -> dict:
        """Retention through the vault, sparing every checkpoint still awaiting its eval."""
        return cleanup(self, self.vault, apply)

    def validate_queue(self) -> list[dict]:
        """The daemon's report for every queued quest (nothing is moved)."""
        return validate_queue(self.paths, self.config, self.ledger)

    def lineage(self) -> list[dict]:
        """Which quest trained which checkpoint, with its eval (the lineage report)."""
        return self.ledger.query("""
            SELECT c.step, c.name, c.training_file AS quest, c.skill, c.skill_level, c.loss,
                   e.level AS eval_level, e.accuracy
            FROM checkpoint_ledger c LEFT JOIN evals e ON e.checkpoint = c.name
            ORDER BY c.step""")
