"""`Realm`: the one Python API. Notebooks, the CLI, the REST handlers and the widgets
all call it; none of them reaches past it into files or DuckDB."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import RealmConfig, load_config
from .hero import hero_stats
from .ledger import Ledger
from .paths import RealmPaths
from .quests import QuestError, check_name, list_queue, load_quest, write_quest
from .status import DAEMON, TRAINING, read_status

if TYPE_CHECKING:
    from .oracle import Oracle

CONTROLS = ("pause", "resume", "stop")


def pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class Realm:
    def __init__(self, home: str | os.PathLike | None = None, writer: str = "api") -> None:
        self.paths = RealmPaths.at(home).ensure()
        self.ledger = Ledger(self.paths, writer)

    @property
    def config(self) -> RealmConfig:
        return load_config(self.paths.home)

    # -- hero -----------------------------------------------------------------------
    def hero(self) -> dict:
        row = self.ledger.query("""
            SELECT
              (SELECT coalesce(max(step), 0) FROM metrics) AS steps,
              (SELECT loss FROM metrics WHERE loss IS NOT NULL
                 ORDER BY step DESC, ts DESC LIMIT 1) AS loss,
              (SELECT val_loss FROM metrics WHERE val_loss IS NOT NULL
                 ORDER BY step DESC, ts DESC LIMIT 1) AS val_loss,
              (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy,
              (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed
        """)[0]
        try:
            name = self.config.hero.name
        except ValueError:
            name = "DIO"
        return hero_stats(name=name, steps=row["steps"], loss=row["loss"],
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
        status["controls"] = [a for a in ("pause", "stop")
                              if self.paths.control_file(a).exists()]
        status["daemon"] = self.daemon_status()
        if not status["daemon"]["alive"]:
            status["state"] = "offline"
        return status

    def queue(self) -> dict:
        return list_queue(self.paths)

    def control(self, action: str) -> dict:
        """pause | resume | stop, obeyed by the daemon at the next step boundary."""
        if action not in CONTROLS:
            raise ValueError(f"unknown action {action!r}; expected one of {CONTROLS}")
        if action == "resume":
            for a in ("pause", "stop"):
                self.paths.control_file(a).unlink(missing_ok=True)
        else:
            self.paths.control_file(action).write_text(str(time.time()))
        self.ledger.event("control", f"{action} requested")
        return {"ok": True, "action": action,
                "controls": [a for a in ("pause", "stop") if self.paths.control_file(a).exists()]}

    # -- quests ---------------------------------------------------------------------
    def add_quest(self, source: str | os.PathLike, name: str | None = None) -> dict:
        """Validate a quest file and drop it into the inbox (the daemon re-checks it).

        The copy is validated under its real name (the suffix decides the format) in a
        hidden folder the daemon ignores, then published with one rename.
        """
        src = Path(source)
        name = name or src.name
        why = check_name(name)
        if why:
            raise ValueError(why)
        staging = self.paths.inbox / ".staging"
        staging.mkdir(exist_ok=True)
        staged = staging / name
        try:
            shutil.copyfile(src, staged)
            _, report = load_quest(staged, self.config.daemon.max_quest_bytes)
            if not report.ok:
                self.ledger.event("quest_rejected", report.summary())
                raise QuestError(report)
            dest = self.paths.inbox / name
            if dest.exists():
                raise FileExistsError(f"a quest named {name!r} is already in the inbox")
            os.replace(staged, dest)
            return {"ok": True, "name": name, "examples": report.examples}
        finally:
            staged.unlink(missing_ok=True)

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
        from .vram import estimate_from_path
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
        from .skillbook import record_eval
        return record_eval(self.ledger, result, step, checkpoint)

    def skill_state(self, skill: str) -> dict:
        from .skillbook import skill_state
        return skill_state(self.ledger, skill).as_dict()

    def eval_report(self, skill: str, threshold: float = 0.8) -> dict:
        from .skillbook import eval_report
        return eval_report(self.ledger, skill, threshold)

    def spar(self, result: Any, seed: int | None = None) -> Path:
        """Sparring from an eval's wrong answers: 3 examples each, into queue/high."""
        from skills.sparring import SPARRING_SEED, sparring_examples

        from .skillbook import SparringError, publish_sparring
        if not result.wrong:
            raise SparringError("every answer was right: nothing to spar about")
        examples = sparring_examples(result, SPARRING_SEED if seed is None else seed)
        name = f"spar-{result.skill}-L{result.level}-{len(result.wrong)}w-{time.time_ns()}.jsonl"
        return publish_sparring(self.paths, examples, name)

    def targeted_quest(self, skill: str, level: int | None = None, count: int = 200,
                       threshold: float = 0.8, seed: int | None = None) -> Path:
        """Practice weighted to the primitives under the threshold in the latest eval of
        the level (default: the skill's current level), into queue/high."""
        import skills
        from skills.sparring import targeted_problems

        from .skillbook import primitive_accuracy, skill_state
        level = skill_state(self.ledger, skill).level if level is None else level
        acc = primitive_accuracy(self.ledger, skill, level)
        if not acc:
            raise skills.SkillError(f"no eval of {skill} level {level} in the ledger yet")
        seed = time.time_ns() % 2**31 if seed is None else seed
        problems = targeted_problems(skill, level, acc, count, seed, threshold)
        name = f"target-{skill}-L{level}-{count}-s{seed}.jsonl"
        return write_quest(self.paths.queue("high") / name, [p.as_example() for p in problems])

    # -- ledger ---------------------------------------------------------------------
    def sql(self, query: str) -> list[dict]:
        return self.ledger.query(query)

    def losses(self, limit: int = 500) -> list[list[float]]:
        rows = self.ledger.query(
            "SELECT step, loss FROM (SELECT step, loss, ts FROM metrics WHERE loss IS NOT NULL "
            "ORDER BY step DESC, ts DESC LIMIT ?) ORDER BY step", [limit])
        return [[r["step"], r["loss"]] for r in rows]

    def events(self, limit: int = 10) -> list[dict]:
        return [{"ts": r["ts"].timestamp(), "kind": r["kind"], "message": r["message"]}
                for r in self.ledger.query(
                    "SELECT ts, kind, message FROM events ORDER BY ts DESC LIMIT ?", [limit])]

    def tavern_state(self) -> dict:
        """Everything the hero card and battle view show, in one JSON-able dict."""
        return {"hero": self.hero(), "battle": self.training_status(),
                "losses": self.losses(), "events": self.events()}

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
        from .oracle import ModelPool, Oracle, list_checkpoints, locate_checkpoint
        from .oracle_hosts import inference_hosts
        from .oracle_remote import RemoteOracle

        cfg = self.config

        def base() -> Path:
            return self.config.base_model_path(self.paths)

        def locate(step: int) -> tuple[str, Path]:
            return locate_checkpoint(self.ledger, base(), step)

        def name_of(step: int) -> str:
            from .oracle import checkpoint_row
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
