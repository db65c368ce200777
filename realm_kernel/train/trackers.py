"""Experiment trackers beside the ledger ([training] report_to): the HF Trainer's own
TensorBoard, MLflow and W&B callbacks, pointed into the realm home unless the user's
environment already says where (TENSORBOARD_LOGGING_DIR, MLFLOW_TRACKING_URI, WANDB_DIR)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# tracker -> (a module it needs, the pip package that provides it)
NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"),
         "wandb": ("wandb", "wandb")}


def check(report_to: list[str]) -> list[str] | str:
    """What TrainingArguments.report_to gets; a tracker that is not installed is refused by name."""
    chosen = [t for t in report_to if t != "none"]
    for t in chosen:
        module, package = NEEDS[t]
        if importlib.util.find_spec(module) is None:
            raise RuntimeError(f"report_to = {t!r} needs {package}: pip install {package} "
                               "(or pip install -e '.[trackers]')")
    return chosen or "none"


def folder(home: Path) -> Path:
    return Path(home) / "trackers"


def defaults(report_to: list[str], home: Path, run_id: str) -> dict[str, str]:
    """Environment for this run's trackers: files under <home>/trackers/, one run each."""
    out: dict[str, str] = {}
    if "tensorboard" in report_to:
        out["TENSORBOARD_LOGGING_DIR"] = str(folder(home) / "tensorboard" / run_id)
    if "mlflow" in report_to:
        out["MLFLOW_TRACKING_URI"] = (folder(home) / "mlruns").resolve().as_uri()
        out["MLFLOW_EXPERIMENT_NAME"] = "realm"
        # MLflow 3 wants a database server by default; a folder is what works offline.
        out["MLFLOW_ALLOW_FILE_STORE"] = "true"
    if "wandb" in report_to:
        out["WANDB_DIR"] = str(folder(home))
        out["WANDB_PROJECT"] = "realm-of-training"
    return out


@contextmanager
def environment(report_to: list[str], home: Path, run_id: str) -> Iterator[dict[str, str]]:
    """Sets the defaults the user has not set, for the length of one training run."""
    added = {k: v for k, v in defaults(report_to, home, run_id).items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield added
    finally:
        for k in added:
            os.environ.pop(k, None)
