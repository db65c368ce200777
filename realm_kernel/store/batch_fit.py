"""The batch split that fitted: per (card, model, max_length), the micro-batch split and
gradient checkpointing a battle needed after running out of memory (train/rescue.py),
kept in status/batch_fit.json so that the next battle on that card starts there instead
of running out again. `realm hero profile` shows it as measured."""

from __future__ import annotations

import threading
import time

from .paths import RealmPaths, atomic_write_json, read_json

FILE = "batch_fit.json"
PEAKS = "memory_peaks.json"
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
    _put(paths, FILE, key, fit)


def _put(paths: RealmPaths, name: str, key: str, entry: dict) -> None:
    with _lock:
        entries = read_json(paths.status / name, {})
        entries = entries if isinstance(entries, dict) else {}
        entries[key] = {**entry, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        paths.status.mkdir(parents=True, exist_ok=True)
        atomic_write_json(paths.status / name, entries)


def record_peak(paths: RealmPaths, key: str, **peak: object) -> None:
    """A battle's measured peak memory beside the VRAM calculator's estimate (train/memory.py),
    the newest per (card, model, max_length), in status/memory_peaks.json."""
    _put(paths, PEAKS, key, peak)


def _entries(paths: RealmPaths, name: str, match) -> list[dict]:
    """The file's entries whose model `match`es, each with its card and max_length (the
    key `card|model|max_length` split once)."""
    entries = read_json(paths.status / name, {})
    out = []
    for key, entry in (entries.items() if isinstance(entries, dict) else []):
        card, _, rest = key.partition("|")
        model, _, length = rest.rpartition("|")
        if match(model) and isinstance(entry, dict):
            out.append({"card": card, "max_length": int(length) if length.isdigit() else None, **entry})
    return out


def peaks_for(paths: RealmPaths, model: str) -> list[dict]:
    """The measured peaks of battles on this model (any card, any max_length). A preset
    name matches the Hub id's last part: qwen3-0.6b finds Qwen/Qwen3-0.6B's battles."""
    want = _short(model)
    return _entries(paths, PEAKS, lambda m: _short(m) == want)


def _short(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1].lower()


def describe_peak(p: dict) -> str:
    gb = lambda b: f"{b / 1e9:.2f} GB" if isinstance(b, int | float) else "n/a"  # noqa: E731
    error = f", estimate {p['error']:+.0%} off" if isinstance(p.get("error"), int | float) else ""
    return (f"measured on {p['card']} ({p.get('measured')}): peak allocated "
            f"{gb(p.get('max_memory_allocated'))}, reserved {gb(p.get('max_memory_reserved'))}, "
            f"NVML {gb(p.get('nvml_used'))}; the calculator said {gb(p.get('estimate'))} for "
            f"max_length {p.get('max_length')}, micro-batch {p.get('micro_batch')}"
            f"{', checkpointing' if p.get('gradient_checkpointing') else ''}{error}")


def measured_for(paths: RealmPaths, model: str, max_length: int) -> list[dict]:
    """The fits remembered for this model and max_length, on any card ({"card", ...})."""
    return [{k: v for k, v in f.items() if k != "max_length"}
            for f in _entries(paths, FILE, lambda m: m == model) if f["max_length"] == max_length]
