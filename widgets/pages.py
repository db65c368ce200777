"""The Tavern's pages, host-agnostic: each page is a session whose `snapshot()` is the
`state` of every widget on the page and whose `act()` carries out the widgets' `action`s
through `Realm` (the API the CLI uses). JupyterLab (widgets/jupyter.py) and `panel serve`
(widgets/app.py) bind the same sessions to the same .js/.css files, and share one `Realm`
per realm home in a process (`shared_realm`)."""

from __future__ import annotations

import base64
import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realm_kernel.api import ConfigError, QuestError, Realm, events_of

from .poller import View
from .traits import FIELDS

log = logging.getLogger("realm.widgets")
_realms: dict[Path, Realm] = {}
_realms_lock = threading.Lock()


def shared_realm(home: str | Path | None = None) -> Realm:
    """This process's one `Realm` for a realm home (REALM_HOME when None): its ledger
    connection and its Oracle pool are shared by every page, in JupyterLab and in every
    browser session of the Panel app."""
    key = Realm.home_of(home)
    with _realms_lock:
        if key not in _realms:
            _realms[key] = Realm(key, writer="widgets")
        return _realms[key]

# Events the toasts announce (the Task Master writes skill_level_up).
TOAST_KINDS = ("quest_completed", "hero_level_up", "champion", "skill_level_up", "achievement",
               # What a failing battle did about it (docs/engine.md "What happens when a battle fails").
               "oom_backoff", "loss_alarm", "rollback", "setup_fault",
               # An eval or probe that ran out of memory and was asked again smaller.
               "eval_backoff")
MAX_UPLOAD_BYTES = 64 << 20  # the browser sends uploads through a synced property


# Parts read by one session and taken by the others with the same stamps (Session._adopt):
# (realm home, the part's method) -> (stamps key, value, when read).
_shared_parts: dict[tuple, tuple] = {}
_shared_lock = threading.Lock()

# What the toasts read (every page has them): their kinds of events only, not the events
# DIO writes about once a second while it trains (checkpoints saved, evals asked).
TOAST_READS = (events_of(*TOAST_KINDS),)


class Session:
    """One page in one browser tab or notebook: its state and its actions.

    The state is made of parts, each a method named in `reads` with the sources it reads
    (ledger tables and status files: store/changes.py). A part is recomputed only when the
    stamps of its sources differ from the last time it was computed, so a page whose
    sources did not change runs no query at all; a part that reads `None` is in-memory
    state (no query) and is taken on every snapshot."""

    reads: dict[str, tuple[str, ...] | None] = {}
    # Parts whose sources change with every training step (metrics, the daemon's status):
    # while they keep changing, each is read again at most every so many seconds (a person
    # reads a loss every few seconds; the events keep the page's pace). An in-memory part
    # (reads None) named here is read at most that often too. An action reads every part
    # at once.
    every: dict[str, float] = {}
    clock: Callable[[], float] = staticmethod(time.monotonic)
    live = False  # True: in-memory parts change on their own (the Oracle's streams)
    # True: each part's value depends on the realm only, so sessions share what one read
    # (three browser tabs of a page read it once; every page's toasts are read once).
    shared = True
    # Actions a realm away from its trainer still carries out (they write nothing of the
    # trainer's realm); every other one is refused there, naming the trainer's host.
    away_actions: frozenset[str] = frozenset()

    def __init__(self, realm: Realm | None = None) -> None:
        self.realm = realm or shared_realm()
        self._seen: set = set()
        self.notice: dict | None = None
        try:
            self.trainer = self.realm.trainer  # None: this realm trains its own hero
        except ConfigError as e:  # a broken hosts.toml: this realm's own pages, and why
            log.warning("hosts.toml: %s", e)
            self.trainer = None
            self.notice = {"ok": False, "action": "hosts", "message": str(e), "detail": None,
                           "nonce": None}
        # Where the page reads: the trainer's REST API (same read methods as the realm's
        # sub-facades: api/remote_trainer.py), or this realm.
        self.src: Any = self.trainer or self.realm
        self._parts: dict[str, dict] = {}
        self._keys: dict[str, tuple] = {}
        self._read_at: dict[str, float] = {}  # when each part was last read (self.clock)
        self._snap_lock = threading.Lock()  # the poller and an action may snapshot at once
        self._fresh = False  # an action ran: read, do not adopt

    def parts(self) -> dict[str, tuple[str, ...] | None]:
        if self.trainer is not None:  # the trainer's facts change where no local stamp sees them
            return {**dict.fromkeys(self.reads), "toasts": TOAST_READS}
        return {**self.reads, "toasts": TOAST_READS}

    def sources(self) -> set[str]:
        return {s for reads in self.parts().values() for s in reads or ()}

    def snapshot(self, stamps: dict[str, tuple] | None = None) -> dict:
        """The page's state; `stamps` (the poller's, shared by every page of a tick) or
        the sources' stamps now decide which parts are read again."""
        with self._snap_lock:
            if stamps is None:
                stamps = self.realm.stamps(self.sources())
            out: dict = {}
            now = self.clock()
            for part, reads in self.parts().items():
                key = None if reads is None else tuple(stamps[s] for s in reads)
                stale = key is None or self._keys.get(part) != key
                if stale and (key is None or not self._adopt(part, key)) and not self._too_soon(part, now):
                    try:
                        self._parts[part] = getattr(self, part)()
                        self._keys[part] = key
                        self._read_at[part] = now
                        if key is not None:
                            self._publish(part)
                    except Exception as e:  # a ledger or network hiccup keeps the last facts
                        log.warning("page state %s: %s", part, e)
                out.update(self._parts.get(part, {}))
            self._fresh = False
            # Read after the parts: whether the trainer answered this time (parts it could
            # not read keep their last facts; the label says they are stale, and why).
            trainer = self.trainer.label() if self.trainer else None
            return {**out, "trainer": trainer, "notice": self.notice}

    def _shared_key(self, part: str) -> tuple | None:
        """Where a part's value is shared by every session of the process over this realm
        home: the part's method (Session.toasts for every page), or None if private."""
        if not self.shared:
            return None
        owner = next(c for c in type(self).__mro__ if part in vars(c))
        return (self.realm.paths.home, owner.__qualname__, part)

    def _adopt(self, part: str, key: tuple) -> bool:
        """Take the value another session read with these same stamps (no read), unless an
        action of this session asked for a fresh read."""
        where = self._shared_key(part)
        with _shared_lock:
            got = _shared_parts.get(where) if where and not self._fresh else None
        if got is None or got[0] != key:
            return False
        self._keys[part], self._parts[part], self._read_at[part] = got
        return True

    def _publish(self, part: str) -> None:
        if (where := self._shared_key(part)) is not None:
            with _shared_lock:
                _shared_parts[where] = (self._keys[part], self._parts[part], self._read_at[part])

    def _too_soon(self, part: str, now: float) -> bool:
        """Read `part` again later: it has a value, and was read less than `every` ago."""
        return part in self._keys and now - self._read_at.get(part, now) < self.every.get(part, 0.0)

    def toasts(self) -> dict:
        # The toasts are on every page (and so, beside them, is the trainer's label).
        return {"toasts": self.src.reports.notable_events(TOAST_KINDS)}

    def act(self, action: dict | None) -> dict | None:
        """Carry out a widget action once ({"name": ..., "nonce": ..., **args})."""
        if not action or action.get("nonce") in self._seen:
            return None
        self._seen.add(action.get("nonce"))
        name = str(action.get("name"))
        args = {k: v for k, v in action.items() if k not in ("name", "nonce")}
        handler = getattr(self, f"do_{name}", None)
        try:
            if handler is None:
                raise ValueError(f"unknown action {name!r}")
            if self.trainer is not None and name not in self.away_actions:
                self.trainer.refuse(name)
            message, detail = handler(**args), None
        except Exception as e:  # every refusal is shown on the page, never raised into the host
            log.warning("widget action %s refused: %s", name, e)
            detail = e.report.render() if isinstance(e, QuestError) else None
            message = str(e) if not isinstance(e, KeyError) else f"missing {e}"
            self.notice = {"ok": False, "action": name, "message": message, "detail": detail,
                           "nonce": action.get("nonce")}
        else:
            self.notice = {"ok": True, "action": name, "message": message, "nonce": action.get("nonce")}
        self._keys.clear()  # the action changed something: read it all again, now
        self._read_at.clear()
        self._fresh = True
        return self.notice


class TavernSession(Session):
    """Hero card, the live battle, skill badges, recent events, achievements.

    `Realm.tavern_state()` split by what changes when: the hero and the battle move with
    every step (read at most every 2 s while DIO trains), the events and loss alarms only
    when an event is written (at the page's pace)."""

    reads = {"state": ("metrics", "checkpoints", "events", "evals", "runs", "quests", "achievements",
                       "status"),
             "feed": ("events",),
             "slow_state": ("evals", "primitive_accuracy", "achievements")}
    every = {"state": 2.0}

    def state(self) -> dict:
        if self.trainer:  # the trainer's whole Tavern state over REST (its events too)
            return self.trainer.tavern_state()
        r = self.realm
        return {"hero": r.hero(), "battle": r.training.status(), "losses": r.reports.series("loss")}

    def feed(self) -> dict:
        if self.trainer:  # in state() above
            return {}
        return {"events": self.realm.reports.events(), "alarms": self.realm.reports.alarm_steps()}

    def slow_state(self) -> dict:
        return {"skills": self.src.skills.list(), "achievements": self.src.reports.achievements()}

    def do_control(self, action: str) -> str:
        self.realm.training.control(action)
        return f"{action} requested"

    # The battle view's buttons send their own names.
    def do_pause(self) -> str:
        return self.do_control("pause")

    def do_resume(self) -> str:
        return self.do_control("resume")

    def do_stop(self) -> str:
        return self.do_control("stop")

    def do_skip(self) -> str:
        return self.do_control("skip")


class QuestSession(Session):
    """The queue by priority, uploads, generated quests, reorder, priorities, deletes."""

    reads = {"slow_state": ("quests", "runs", "metrics", "evals", "queue")}
    every = {"slow_state": 5.0}  # metrics: the ETAs follow the training pace

    def slow_state(self) -> dict:
        queue = self.src.quests.queue()
        sizes = self.src.quests.sizes()
        pace = self.src.training.seconds_per_example()
        for state, entries in queue.items():
            for e in entries:
                e["examples"] = sizes.get(e["name"])
                e["state"] = state
                if e["examples"] and pace:
                    e["eta_seconds"] = e["examples"] * pace
        return {"queue": queue, "skills": self.src.skills.list(levels=False)}

    def do_upload(self, filename: str, content_b64: str, priority: str | None = None) -> str:
        data = base64.b64decode(content_b64, validate=True)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"{filename}: {len(data)} bytes; uploads from the page stop at "
                             f"{MAX_UPLOAD_BYTES} (use `realm quest add` for bigger files)")
        r = self.realm.quests.upload(filename, data, priority or None)
        return f"Quest {r['name']} accepted ({r['examples']} examples, {r['priority']})"

    def do_generate(self, skill: str, level: int, count: int = 200) -> str:
        path = self.realm.quests.generate(skill, int(level), int(count))
        return f"Quest {path.name} generated into the inbox"

    def do_priority(self, quest: str, priority: str) -> str:
        self.realm.quests.set_priority(quest, priority)
        return f"{quest}: priority {priority}"

    def do_move(self, quest: str, position: int) -> str:
        self.realm.quests.move(quest, int(position))
        return f"{quest} moved to position {int(position) + 1}"

    def do_delete(self, quest: str) -> str:
        r = self.realm.quests.remove(quest)
        return f"{quest} removed from {r['was']}"

    def do_start(self, quest: str) -> str:
        """Start a quest: first in the high queue, and the battle resumed."""
        self.realm.quests.set_priority(quest, "high")
        self.realm.quests.move(quest, 0)
        self.realm.training.control("resume")
        return f"{quest} is next"


class VaultSession(Session):
    """Checkpoints with their ledger stats, the champion, zones, transfers, disk use."""

    # events: the champion view only (evals/champion.py writes it as a `champion` event)
    reads = {"slow_state": ("checkpoints", "assets", "zones", events_of("champion"), "checkpoint_files",
                            "config")}
    # Checkpoints are saved (and retention deletes old ones) every few seconds while a
    # small hero trains: the list follows at most every 5 s, like the Quest board's ETAs.
    every = {"slow_state": 5.0}

    def slow_state(self) -> dict:
        return {"checkpoints": self.src.vault.checkpoints(), **self.src.vault_marks()}

    def do_promote(self, step: int) -> str:
        r = self.realm.checkpoints.promote(int(step))
        return f"New champion! {r['name']}"

    def do_delete(self, step: int) -> str:
        self.realm.checkpoints.delete(int(step))
        return f"checkpoint {step} deleted"

    def do_export(self, step: int, dest: str) -> str:
        path = self.realm.checkpoints.export(int(step), str(dest).strip() or None)  # empty: exports/
        return f"checkpoint {step} exported to {path}"

    def do_transfer(self, asset_id: str, zone: str) -> str:
        loc = self.realm.vault.transfer(asset_id, zone)
        return f"{asset_id} copied to zone {loc.zone}"


# Settings fields the VRAM calculator reads, and the estimate's argument for each.
VRAM_FIELDS = {"training.max_length": "seq_len", "training.batch_size": "batch_size",
               "training.optimizer": "optimizer", "training.gradient_checkpointing": "gradient_checkpointing"}


class SettingsSession(Session):
    """realm.toml's fields with validation; the VRAM estimate follows the form live."""

    reads = {"slow_state": ("config",), "state": None}
    shared = False  # slow_state estimates this form's VRAM

    def __init__(self, realm: Realm | None = None) -> None:
        super().__init__(realm)
        self.pending: dict[str, Any] = {}
        self.vram: dict | None = None
        self.errors: dict[str, str] = {}
        self.confirm: list[str] = []

    def slow_state(self) -> dict:
        # Away from the trainer: its realm.toml, read-only. No estimate: the calculator
        # would size this machine's hero profile, and a preview would check the fields
        # against this realm's file, not the trainer's (both refused there).
        if self.vram is None and self.trainer is None:
            self._estimate()
        return {"settings": self.src.settings.describe()}

    def state(self) -> dict:
        return {"vram": self.vram, "errors": self.errors, "confirm": self.confirm}

    def _estimate(self) -> None:
        overrides: dict[str, Any] = {}
        for key, arg in VRAM_FIELDS.items():
            if key in self.pending:
                overrides[arg] = self.pending[key]
        if "training.dtype" in self.pending:
            overrides["dtype"] = "float32" if self.pending["training.dtype"] == "float32" else "bfloat16"
        if "training.liger" in self.pending:
            overrides["liger"] = self.pending["training.liger"] == "on"
        try:
            if "seq_len" in overrides:
                overrides["seq_len"] = int(overrides["seq_len"])
            if "batch_size" in overrides:
                overrides["batch_size"] = int(overrides["batch_size"])
            self.vram = self.realm.training.vram_estimate(**overrides)
        except Exception as e:  # a half-typed field or a missing base model
            self.vram = {"error": str(e)}

    def do_preview(self, changes: dict) -> str:
        """Fields as typed so far: validation errors and the VRAM estimate, nothing written."""
        self.pending = dict(changes)
        self.errors = self.realm.settings.preview(self.pending)
        self._estimate()
        self.confirm = []
        return ""

    def do_save(self, changes: dict, confirm: bool = False) -> str:
        self.pending = dict(changes)
        r = self.realm.settings.save(self.pending, confirm=bool(confirm))
        self.errors = r.get("errors", {})
        self.confirm = r.get("needs_confirmation", [])
        if self.errors:
            raise ValueError("not saved: " + "; ".join(f"{k}: {v}" for k, v in self.errors.items()))
        if self.confirm:
            return "confirm the critical changes: " + ", ".join(self.confirm)
        self.pending = {}
        self._estimate()
        return "saved " + ", ".join(r["changed"])


class SchedulerSession(Session):
    """Curriculum per skill, the Task Master's tasks, run now, and where tasks run (one
    machine, or the Ray cluster's nodes in cluster mode)."""

    reads = {"slow_state": ("tasks", "evals", "primitive_accuracy", "config", "task_files")}

    def slow_state(self) -> dict:
        return {"tasks": self.src.tasks.list(), "curriculum": self.src.skills.curriculum(),
                "cluster": self.src.tasks.cluster()}

    def do_run(self, task_id: str) -> str:
        self.realm.tasks.run(task_id)
        return f"{task_id}: run requested"

    def do_skill(self, skill: str, priority: int | None = None, enabled: bool | None = None) -> str:
        """A skill's share of generated quests and whether it is trained ([curriculum] in
        realm.toml, the Task Master's settings)."""
        cfg = self.realm.config.model_dump(mode="json")
        if "curriculum" not in cfg:
            raise ValueError("skill priorities need the Task Master's [curriculum] settings")
        plan = cfg["curriculum"]["skills"]
        entry = plan.setdefault(skill, {})
        if priority is not None:
            entry["priority"] = int(priority)
        if enabled is not None:
            entry["enabled"] = bool(enabled)
        r = self.realm.settings.save({"curriculum.skills": plan})
        if not r["ok"]:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in r.get("errors", {}).items()))
        return f"{skill}: priority {entry.get('priority')}, {'on' if entry.get('enabled', True) else 'off'}"

    def do_set_task(self, task_id: str, enabled: bool | None = None, priority: int | None = None,
                    cooldown_s: float | None = None, parameters: dict | None = None) -> str:
        self.realm.tasks.set(task_id, enabled=enabled, priority=None if priority is None else int(priority),
                            cooldown_s=None if cooldown_s is None else float(cooldown_s),
                            parameters=parameters)
        return f"{task_id} updated" + (f": {parameters}" if parameters else "")


class GuildSession(Session):
    """Per-skill levels and progress, per-primitive accuracy over checkpoints, sparring."""

    reads = {"slow_state": ("evals", "primitive_accuracy", "passive_probes", "config")}

    def slow_state(self) -> dict:
        src = self.src.skills
        skills_ = src.list()
        for s in skills_:
            report = src.eval_report(s["skill"])
            s["weak"] = report["weak_primitives"]
            s["threshold"] = report["threshold"]
            s["rule"] = report["state"]["rule"]
            s["heatmap"] = src.primitive_history(s["skill"])
        return {"guild": skills_, "passives": src.passive_history()}

    def do_review(self, passive: str) -> str:
        name = self.realm.skills.review_quest(passive)
        return f"Review quest {name} queued"

    def do_spar(self, skill: str) -> str:
        path = self.realm.skills.targeted_quest(skill)
        return f"Targeted sparring {path.name} queued (high)"


PANES = ("left", "right")


def _pane() -> dict:
    return {"step": None, "model": None, "model_path": None, "host": None, "messages": [], "busy": False,
            "error": None}


class OracleSession(Session):
    """Chat with checkpoints in the realm's Oracle pool (`Realm.oracle`: the pool owner's,
    or this process's own when none runs): load, unload, chat and duel two panes with
    streamed answers, "ask DIO" probes.
    Loads, answers and probes run in threads; each snapshot shows them as they grow."""

    reads = {"slow_state": ("checkpoints", "assets", "evals", "config", "hosts", "status"),
             "pool": None, "state": None}
    # status: the daemon's moves with every step. pool: what the pool has loaded, asked of
    # the pool's owner (a request to another process) at most every second; the panes'
    # streamed answers (state) are in memory and follow every poll.
    every = {"slow_state": 5.0, "pool": 1.0}
    live = True  # answers stream in from threads
    # The Oracle chats with checkpoints by step on its hosts; it writes nothing of the trainer's.
    away_actions = frozenset({"load", "unload", "chat", "duel", "probe"})

    def __init__(self, realm: Realm | None = None, max_new_tokens: int = 64) -> None:
        super().__init__(realm)
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._panes = {p: _pane() for p in PANES}
        self._probe: dict = {}
        self._later: list = []  # work an action starts once its notice is on the page

    def slow_state(self) -> dict:
        oracle = self.realm.oracle
        # Away from the trainer: the steps its Oracle lists (its base model and its ledger's).
        ckpts = self.trainer.oracle_checkpoints() if self.trainer else oracle.checkpoints()
        return {"checkpoints": [{"step": c["step"], "name": c["name"]} for c in ckpts],
                "skills": self._skills(), "hosts": oracle.hosts()}

    def pool(self) -> dict:
        return {"loaded": [{"step": m["step"], "model": m["model"]} for m in self.realm.oracle.loaded()]}

    def state(self) -> dict:
        with self._lock:
            return {"panes": copy.deepcopy(self._panes), "probe": dict(self._probe)}

    def _skills(self) -> list[dict]:
        if self.trainer:  # the trainer's levels
            return [{"id": s["skill"], "level": s["level"] or 1} for s in self.trainer.skills.list()]
        out = []
        for s in self.realm.skills.list(levels=False):
            try:
                level = self.realm.skills.state(s["skill"])["level"]
            except Exception:
                level = 1
            out.append({"id": s["skill"], "level": level})
        return out

    def act(self, action: dict | None) -> dict | None:
        notice = super().act(action)
        later, self._later = self._later, []
        for job in later if notice and notice["ok"] else ():
            threading.Thread(target=self._finish, args=(job, notice), daemon=True, name="oracle-load").start()
        return notice

    def _finish(self, job, notice: dict) -> None:
        """A background action's outcome replaces its notice (same action, same nonce); the
        pool's list is read again with it (a load or an unload changed it)."""
        try:
            message = job()
        except Exception as e:  # shown like any refusal
            log.warning("widget action %s refused: %s", notice["action"], e)
            self._keys.pop("pool", None)
            self.notice = {**notice, "ok": False, "message": str(e), "detail": None}
        else:
            self._keys.pop("pool", None)  # before the notice: never "loaded" beside an old list
            self.notice = {**notice, "message": message}

    def do_load(self, step: int, host: str | None = None) -> str:
        host = host or "local"

        def load() -> str:
            info = self.realm.oracle.load(step, host)
            evicted = f"; evicted {info['evicted']}" if info.get("evicted") else ""
            return f"loaded {info['model']} on {info['host']}{evicted}"
        self._later.append(load)
        return f"loading step {step} on {host}…"

    def do_unload(self, step: int, host: str | None = None) -> str:
        # An OpenAI-compatible host serves what it was started with: its unload refuses.
        info = self.realm.oracle.unload(step, host or "local")
        return f"unloaded step {step}" + ("" if info["host"] == "local" else f" on {info['host']}")

    def do_chat(self, message: str, step: int | None = None, pane: str = "left",
                host: str | None = None) -> str:
        self._chat(pane, step, host or "local", message)
        return ""

    def do_duel(self, message: str, left_step: int | None = None, right_step: int | None = None,
                host: str | None = None) -> str:
        for pane, step in zip(PANES, (left_step, right_step), strict=True):
            self._chat(pane, step, host or "local", message)
        return ""

    def do_probe(self, skill: str, step: int | None = None, host: str | None = None) -> str:
        self._probe_skill(str(skill), step, host or "local")
        return ""

    def _chat(self, pane: str, step, host: str, message) -> None:
        if pane not in PANES:
            raise ValueError(f"unknown pane {pane!r}")
        oracle = self.realm.oracle
        with self._lock:
            p = self._panes[pane]
            if p["step"] != step:  # another checkpoint: a fresh conversation
                self._panes[pane] = p = {**_pane(), "step": step}
            history = [{"role": m["role"], "content": m["content"]} for m in p["messages"]]
        history.append({"role": "user", "content": message})
        # Validation and the loaded check happen here, so refusals show at once.
        events = oracle.stream(step, messages=history, host=host,
                               sampling={"max_new_tokens": self.max_new_tokens})
        with self._lock:
            p["messages"] = [*history, {"role": "assistant", "content": "", "model": None}]
            p.update(busy=True, error=None)

        def stream() -> None:
            try:
                for ev in events:
                    with self._lock:
                        answer = p["messages"][-1]
                        if ev["type"] == "start":
                            answer["model"] = ev["model"]
                            p.update(model=ev["model"], model_path=ev["model_path"], host=ev["host"])
                        elif ev["type"] == "token":
                            answer["content"] += ev["text"]
            except Exception as e:
                with self._lock:
                    p["error"] = str(e)
            finally:
                with self._lock:
                    p["busy"] = False
        threading.Thread(target=stream, daemon=True, name=f"oracle-{pane}").start()

    def _probe_skill(self, skill: str, step, host: str) -> None:
        with self._lock:
            self._probe = {"skill": skill, "step": step, "busy": True}

        def ask() -> None:
            try:
                result = self.realm.skills.ask(skill, step, None if host == "local" else host)
                keep = ("skill", "level", "question", "expected", "content", "correct", "model", "step")
                probe = {k: result[k] for k in keep}
            except Exception as e:
                probe = {"skill": skill, "step": step, "error": str(e)}
            with self._lock:
                self._probe = {**probe, "busy": False}
        threading.Thread(target=ask, daemon=True, name="oracle-probe").start()


def set_fields(widget, changes: dict) -> None:
    """Set several synced fields as one message (the anywidget's hold_sync, Panel's
    param.update): the JS then draws once with all of them, never a half-updated state
    (a champion's mark without its protection, say)."""
    if hasattr(widget, "hold_sync"):
        with widget.hold_sync():
            for f, v in changes.items():
                setattr(widget, f, v)
    else:
        widget.param.update(**changes)


def bind(session: Session, widgets: list, period: float = 1.0) -> tuple[View, Callable]:
    """The host-agnostic glue: a `View` whose refresh pushes each widget the fields of the
    session's snapshot it declares (widgets/traits.py) where they differ (the process's
    poller calls it while the view is shown), and `on_action(action)`, which carries out
    an action then refreshes at once."""
    def push(state: dict) -> None:
        for w in widgets:  # each widget gets its declared fields, only those that changed
            changes = {f: state.get(f) for f in FIELDS[w.widget_name] if getattr(w, f) != state.get(f)}
            if changes:
                set_fields(w, changes)

    view = View(session, push, period)

    def on_action(action: dict | None) -> None:
        session.act(action)
        view.refresh()

    return view, on_action


@dataclass(frozen=True)
class Page:
    title: str
    icon: str
    session: type[Session]
    widgets: tuple[str, ...]
    poll_seconds: float = 1.0
    plots: tuple[str, ...] = field(default=())


PAGES: dict[str, Page] = {
    "tavern": Page("Tavern", "🍺", TavernSession, ("hero_card", "battle_view", "achievements", "toasts"),
                   0.5, ("battle",)),
    "quests": Page("Quests", "📜", QuestSession, ("quest_board", "toasts")),
    "oracle": Page("Oracle", "🔮", OracleSession, ("oracle", "toasts"), 0.25),  # tokens stream at this pace
    "vault": Page("Vault", "🏦", VaultSession, ("vault_browser", "toasts")),
    "settings": Page("Settings", "⚙️", SettingsSession, ("settings", "toasts")),
    "scheduler": Page("Scheduler", "⏳", SchedulerSession, ("scheduler", "toasts")),
    "guild": Page("Guild", "🛡️", GuildSession, ("guild", "toasts"), 1.0, ("guild",)),
}
