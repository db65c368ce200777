"""The Oracle widget's Python side, the same in JupyterLab and `panel serve`: it carries
out the widget's `action`s (load, unload, chat, duel, probe) through `Realm.oracle` in
this process, streams answers in threads, and its `snapshot()` is the widget's `state`."""

from __future__ import annotations

import copy
import logging
import threading
import time

from realm_kernel.api import Realm

log = logging.getLogger("realm.widgets")
PANES = ("left", "right")
CHECKPOINTS_TTL = 2.0  # seconds between ledger reads of the checkpoint list


def _pane() -> dict:
    return {"step": None, "model": None, "model_path": None, "messages": [], "busy": False, "error": None}


class OracleSession:
    def __init__(self, realm: Realm | None = None, max_new_tokens: int = 64) -> None:
        self.realm = realm or Realm(writer="widgets")
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._seen: set = set()
        self._panes = {p: _pane() for p in PANES}
        self._probe: dict = {}
        self._notice: str | None = None
        self._slow: dict = {"checkpoints": [], "skills": []}  # ledger reads, refreshed every TTL
        self._slow_at = 0.0

    # -- state ---------------------------------------------------------------------
    def snapshot(self) -> dict:
        oracle = self.realm.oracle
        if time.monotonic() - self._slow_at > CHECKPOINTS_TTL:
            try:
                self._slow = {"checkpoints": [{"step": c["step"], "name": c["name"]}
                                              for c in oracle.checkpoints()],
                              "skills": self._skills(), "hosts": oracle.hosts()}
            except Exception as e:  # a ledger hiccup must not blank the widget
                self._notice = f"checkpoints: {e}"
            self._slow_at = time.monotonic()
        with self._lock:
            return {**self._slow,
                    "loaded": [{"step": m["step"], "model": m["model"]} for m in oracle.pool.loaded()],
                    "panes": copy.deepcopy(self._panes),
                    "probe": dict(self._probe), "notice": self._notice}

    def _skills(self) -> list[dict]:
        import skills
        out = []
        for sid in skills.skill_ids():
            try:
                level = self.realm.skill_state(sid)["level"]
            except Exception:
                level = 1
            out.append({"id": sid, "level": level})
        return out

    # -- actions -------------------------------------------------------------------
    def act(self, action: dict | None) -> None:
        """Carry out one widget action ({"name": ..., "nonce": ...}) once."""
        if not action or action.get("nonce") in self._seen:
            return
        self._seen.add(action.get("nonce"))
        name, host = action.get("name"), action.get("host") or "local"
        try:
            if name == "load":
                self._run(lambda: self._loaded(self.realm.oracle.load(action.get("step"), host)))
            elif name == "unload":
                self.realm.oracle.unload(action.get("step"))
                self._note(f"unloaded step {action.get('step')}")
            elif name == "chat":
                self._chat(action.get("pane", "left"), action.get("step"), host, action.get("message"))
            elif name == "duel":
                for pane in PANES:
                    self._chat(pane, action.get(f"{pane}_step"), host, action.get("message"))
            elif name == "probe":
                self._probe_skill(str(action.get("skill")), action.get("step"), host)
            else:
                self._note(f"unknown action {name!r}")
        except Exception as e:  # a refused action is shown, never raised into the host
            self._note(str(e))

    def _note(self, text: str | None) -> None:
        with self._lock:
            self._notice = text

    def _loaded(self, info: dict) -> None:
        evicted = f"; evicted {info['evicted']}" if info.get("evicted") else ""
        self._note(f"loaded {info['model']} on {info['host']}{evicted}")

    def _run(self, fn) -> None:
        def guarded() -> None:
            try:
                fn()
            except Exception as e:
                self._note(str(e))
        threading.Thread(target=guarded, daemon=True, name="oracle-widget").start()

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
                            p.update(model=ev["model"], model_path=ev["model_path"])
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
                result = self.realm.oracle_probe(skill, step, None if host == "local" else host)
                keep = ("skill", "level", "question", "expected", "content", "correct", "model", "step")
                probe = {k: result[k] for k in keep}
            except Exception as e:
                probe = {"skill": skill, "step": step, "error": str(e)}
            with self._lock:
                self._probe = {**probe, "busy": False}
        threading.Thread(target=ask, daemon=True, name="oracle-probe").start()
