"""The realm home layout: the only module that knows directory names."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PRIORITIES = ("high", "normal", "low")
QUEUE_STATES = (*PRIORITIES, "processing", "failed", "recently_completed")
CONTROL_ACTIONS = ("pause", "stop", "skip")

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Folders the realm reads that are not Python: in a checkout they sit at the top level; an
# installed wheel carries them as package data inside realm_kernel/ (see pyproject.toml).
RESOURCES = {"pipelines": "pipelines", "notebooks": "notebooks", "jupyter-config": "jupyter_config"}


def resource_dir(name: str) -> Path:
    """The pipelines, notebooks or jupyter-config folder: the wheel's copy, else the checkout's."""
    inside = PACKAGE_DIR / RESOURCES[name]
    return inside if inside.is_dir() else REPO_ROOT / name


def default_home() -> Path:
    """REALM_HOME, else the checkout root when run from one, else ~/.realm."""
    env = os.environ.get("REALM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists() and (REPO_ROOT / "realm_kernel").is_dir():
        return REPO_ROOT
    return Path("~/.realm").expanduser().resolve()


@dataclass(frozen=True)
class RealmPaths:
    home: Path

    @classmethod
    def at(cls, home: str | os.PathLike | None = None) -> RealmPaths:
        return cls(Path(home).expanduser().resolve() if home else default_home())

    @property
    def ledger_db(self) -> Path:
        return self.home / "ledger.duckdb"

    @property
    def segments(self) -> Path:
        """Append-only Parquet segments, one folder per ledger table."""
        return self.home / "ledger"

    @property
    def config_file(self) -> Path:
        return self.home / "realm.toml"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    def queue(self, state: str) -> Path:
        if state not in QUEUE_STATES:
            raise ValueError(f"unknown queue state {state!r}; expected one of {QUEUE_STATES}")
        return self.home / "queue" / state

    @property
    def control(self) -> Path:
        return self.home / "control"

    def control_file(self, action: str) -> Path:
        if action not in CONTROL_ACTIONS:
            raise ValueError(f"unknown control {action!r}; expected one of {CONTROL_ACTIONS}")
        return self.control / action

    @property
    def status(self) -> Path:
        return self.home / "status"

    @property
    def oracle_owner(self) -> Path:
        """The realm's Oracle pool owner: its pid, URL and token (0600; see oracle.client)."""
        return self.status / "oracle_owner.json"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def fetched(self) -> Path:
        """Checkpoints fetched by step from the shared zone (store/shared_zone.py): a cache, not
        this realm's own checkpoints (retention and repair never look here)."""
        return self.home / "cache" / "checkpoints"

    @property
    def heldout(self) -> Path:
        """The fixed held-out sets DEF is scored on, one per skill level (store/heldout.py)."""
        return self.home / "heldout"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def dio_mini(self) -> Path:
        return self.models / "dio-mini"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def exports(self) -> Path:
        """Clean HF copies of checkpoints made by `Realm.checkpoints.export`."""
        return self.home / "exports"

    @property
    def tasks(self) -> Path:
        """Task Master: tasks/<task_id>/<timestamp>.ipynb output notebooks, run-now
        requests (tasks/requests/) and settings (tasks/settings.json)."""
        return self.home / "tasks"

    @property
    def lock_file(self) -> Path:
        return self.home / "daemon.lock"

    def ensure(self) -> RealmPaths:
        for d in (self.inbox, self.control, self.status, self.checkpoints, self.models,
                  self.logs, self.segments, self.tasks):
            d.mkdir(parents=True, exist_ok=True)
        for state in QUEUE_STATES:
            self.queue(state).mkdir(parents=True, exist_ok=True)
        return self


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and os.replace, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def read_json(path: Path, default: object = None) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default


SIDECAR = ".ledger.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "adapter_model.safetensors", "adapter_model.bin")
REPLACED_PREFIX = ".replaced-"


def is_model_dir(path: Path) -> bool:
    """An HF model directory, or a LoRA adapter directory (its base named elsewhere)."""
    path = Path(path)
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def checkpoint_complete(path: Path) -> bool:
    """A checkpoint directory is complete when its sidecar, config (a model's or a LoRA
    adapter's) and weights are there. The engine writes the sidecar last, inside a
    temporary directory, and publishes the whole with one rename, so a half-written
    checkpoint never has all three."""
    path = Path(path)
    return ((path / SIDECAR).is_file() and is_model_dir(path)
            and any((path / w).is_file() for w in WEIGHT_FILES))


def publish_dir(src: Path, dest: Path) -> None:
    """Rename a finished directory into place. A directory already there is moved aside
    first and removed after; a crash in between leaves `.replaced-<name>`, which the
    daemon's start-up check puts back when `dest` is missing."""
    if dest.exists():
        aside = dest.with_name(f"{REPLACED_PREFIX}{dest.name}")
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(dest, aside)
        os.replace(src, dest)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(src, dest)
