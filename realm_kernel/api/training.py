"""`realm.training`: the daemon and the battle in progress: status, the controls it obeys
at the next step boundary, memory and pace estimates."""

from __future__ import annotations

import time
from typing import Any

from ..hero_model.vram import estimate_from_path
from ..store.home import Home
from ..store.paths import RealmPaths
from ..store.process import pid_alive
from ..store.status import DAEMON, TRAINING, read_status

CONTROLS = ("pause", "resume", "stop", "skip")


def service_status(paths: RealmPaths, name: str) -> dict:
    """A service's status file with `alive`: its pid runs and it did not say it went offline."""
    d = read_status(paths, name)
    d["alive"] = bool(d.get("pid")) and pid_alive(d.get("pid")) and d.get("state") != "offline"
    return d


class Training:
    def __init__(self, home: Home) -> None:
        self.home = home

    def status(self) -> dict:
        status = read_status(self.home.paths, TRAINING)
        status.setdefault("state", "offline")
        status["controls"] = self.controls()
        status["daemon"] = self.daemon()
        if not status["daemon"]["alive"]:
            status["state"] = "offline"
        return status

    def daemon(self) -> dict:
        return service_status(self.home.paths, DAEMON)

    def controls(self) -> list[str]:
        return [a for a in ("pause", "stop", "skip") if self.home.paths.control_file(a).exists()]

    def control(self, action: str) -> dict:
        """pause | resume | stop | skip, obeyed by the daemon at the next step boundary.
        skip saves a checkpoint and sets the quest in training aside (failed/, reason
        "skipped"); with no quest in training it is dropped."""
        if action not in CONTROLS:
            raise ValueError(f"unknown action {action!r}; expected one of {CONTROLS}")
        paths = self.home.paths
        if action == "resume":
            for a in ("pause", "stop"):
                paths.control_file(a).unlink(missing_ok=True)
        else:
            paths.control_file(action).write_text(str(time.time()))
        self.home.ledger.event("control", f"{action} requested")
        return {"ok": True, "action": action, "controls": self.controls()}

    def vram_estimate(self, **overrides: Any) -> dict:
        """GPU memory to fine-tune the hero's base model with the realm's settings, full or
        LoRA/QLoRA (what the Settings page shows live as fields change). Overrides: seq_len,
        batch_size, dtype, optimizer, gradient_checkpointing, liger, method, lora_rank."""
        cfg = self.home.config
        t = cfg.training
        kwargs: dict[str, Any] = {
            "seq_len": t.max_length, "batch_size": t.batch_size,
            "dtype": "float32" if t.dtype == "float32" else "bfloat16",
            "optimizer": t.optimizer, "gradient_checkpointing": t.gradient_checkpointing,
            "liger": t.liger == "on", "method": t.method, "lora_rank": t.lora_rank,
            "lora_targets": t.lora_targets}
        kwargs.update(overrides)
        return estimate_from_path(str(cfg.base_model_path(self.home.paths)), **kwargs).as_dict()

    def seconds_per_example(self) -> float | None:
        """The recent training pace (from the last 200 logged steps), for queue estimates."""
        rows = self.home.ledger.tail("metrics", "ts, step", 200, notnull="loss")
        if len(rows) < 2:
            return None
        first, last = min(rows, key=lambda r: r["step"]), max(rows, key=lambda r: r["step"])
        steps = last["step"] - first["step"]
        seconds = (last["ts"] - first["ts"]).total_seconds()
        t = self.home.safe_config().training
        per_step = t.batch_size * t.gradient_accumulation_steps
        return seconds / steps / per_step if steps > 0 and seconds > 0 else None
