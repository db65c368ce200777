"""The training engine: TrainerEngine.run_job(job) -> TrainingResult.

Names resolve on first use (PEP 562): importing a light module of this package (the
loader) must not pull in the Trainer, peft and their seconds of
imports, which every Task Master notebook would otherwise pay before its first line.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {"Job": ".trainer", "TrainerEngine": ".trainer", "TrainingResult": ".trainer",
          "load_model_and_tokenizer": ".loading"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name], __name__), name)
