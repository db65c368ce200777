"""The batch split that fitted: per (card, model, max_length), the micro-batch split and
gradient checkpointing a battle needed after running out of memory (train/rescue.py),
kept in status/batch_fit.json so that the next battle on that card starts there instead
of running out again. `realm hero profile` shows it as measured."""

from __future__ import annotations

import threading
import time

from .paths import RealmPaths, atomic_write_json, read_json

FILE = "batch_fit.json"
_lock = threading.Lock()


def fit_key(card: str, model: str, max_length: int) -> str:
    return f"{card}|{model}|{max_length}"


def remembered(paths: RealmPaths, key: str) -> dict | None:
    """{"micro_batch", "gradient_accumulation_steps", "gradient_checkpointing", "batch_size",
    "measured"} for this key, or None when no battle on it ever backed off."""
    fits = read_json(paths.status / FILE, {})
    fit = fits.get(key) if isinstance(fits, dict) else None
    return fit if isinstance(fit, dict) and isinstance(fit.get("micro_batch"), int) else None


def remember(paths: RealmPaths, key: str, **fit: object) -> None:
    with _lock:
        fits = read_json(paths.status / FILE, {})
        fits = fits if isinstance(fits, dict) else {}
        fits[key] = {**fit, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        paths.status.mkdir(parents=True, exist_ok=True)
        atomic_write_json(paths.status / FILE, fits)


def measured_for(paths: RealmPaths, model: str, max_length: int) -> list[dict]:
    """The fits remembered for this model and max_length, on any card ({"card", ...})."""
    fits = read_json(paths.status / FILE, {})
    out = []
    for key, fit in (fits.items() if isinstance(fits, dict) else []):
        card, _, rest = key.partition("|")
        if rest == f"{model}|{max_length}" and isinstance(fit, dict):
            out.append({"card": card, **fit})
    return out
