"""Quest files: format, validation, and queue moves (atomic renames only).

A quest is a training file of chat examples, one JSON object per line (.jsonl), a JSON
list (.json) or a table (.parquet). Each example is either
  {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
with at least one non-empty assistant message (the only tokens that carry loss), or
  {"prompt": "...", "completion": "..."}
An optional "meta" object (skill, level, primitive_id) is carried through.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .paths import PRIORITIES, RealmPaths, atomic_write_json

ALLOWED_SUFFIXES = (".jsonl", ".json", ".parquet")
ROLES = ("system", "user", "assistant")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
MAX_PROBLEMS_REPORTED = 20


@dataclass
class QuestProblem:
    line: int | None  # 1-based line (jsonl) or row/item number; None for the whole file
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class QuestReport:
    file: str
    ok: bool = True
    examples: int = 0
    problems: list[QuestProblem] = field(default_factory=list)

    def add(self, line: int | None, message: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS_REPORTED:
            self.problems.append(QuestProblem(line, message))

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            return f"{self.file}: ok, {self.examples} examples"
        return f"{self.file}: " + "; ".join(str(p) for p in self.problems)


class QuestError(ValueError):
    def __init__(self, report: QuestReport) -> None:
        super().__init__(report.summary())
        self.report = report


def check_name(name: str) -> str | None:
    """Why a quest file name is unsafe, or None. Names never become shell or path syntax."""
    if not SAFE_NAME.match(name) or ".." in name:
        return (f"unsafe file name {name!r}: use letters, digits, '.', '_' and '-' only, "
                "starting with a letter or digit")
    if not name.endswith(ALLOWED_SUFFIXES):
        return f"unsupported file type {name!r}: expected one of {', '.join(ALLOWED_SUFFIXES)}"
    return None


def safe_name(name: str) -> str:
    """A harmless name derived from any string, for files we must keep (failed/)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-").replace("..", "_")
    return (cleaned or "quest")[:120]


def check_example(obj: Any) -> tuple[dict | None, str | None]:
    """Normalise one example to {"messages": [...], "meta": {...}} or say what is wrong."""
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        return None, "'meta' must be an object"
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            return None, "'messages' must be a non-empty list"
        clean = []
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                return None, f"messages[{i}] must be an object with 'role' and 'content'"
            role, content = m.get("role"), m.get("content")
            if role not in ROLES:
                return None, f"messages[{i}].role is {role!r}; expected one of {ROLES}"
            if not isinstance(content, str):
                return None, f"messages[{i}].content must be a string"
            clean.append({"role": role, "content": content})
        if not any(m["role"] == "assistant" and m["content"].strip() for m in clean):
            return None, "no non-empty assistant message: nothing to learn from"
        return {"messages": clean, "meta": meta}, None
    if "prompt" in obj or "completion" in obj:
        p, c = obj.get("prompt"), obj.get("completion")
        if not isinstance(p, str) or not isinstance(c, str) or not c.strip():
            return None, "'prompt' and a non-empty 'completion' must both be strings"
        return {"messages": [{"role": "user", "content": p},
                             {"role": "assistant", "content": c}], "meta": meta}, None
    return None, "expected 'messages' or 'prompt'/'completion' keys"


def _raw_items(path: Path, report: QuestReport) -> list[tuple[int, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises many types for junk
            report.add(None, f"not a readable Parquet file: {e}")
            return []
        return list(enumerate(rows, start=1))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        report.add(None, f"not UTF-8 text (byte {e.start}): {e.reason}")
        return []
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            report.add(e.lineno, f"invalid JSON: {e.msg} (column {e.colno})")
            return []
        if not isinstance(data, list):
            report.add(None, "a .json quest must be a list of examples")
            return []
        return list(enumerate(data, start=1))
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            report.add(lineno, f"invalid JSON: {e.msg} (column {e.colno})")
    return items


def load_quest(path: Path, max_bytes: int = 512 * 1024 * 1024) -> tuple[list[dict], QuestReport]:
    """Read and validate a quest file. Returns the normalised examples and the report."""
    report = QuestReport(file=path.name)
    why = check_name(path.name)
    if why:
        report.add(None, why)
        return [], report
    if path.is_symlink():
        report.add(None, "symbolic links are not accepted as quests")
        return [], report
    size = path.stat().st_size
    if size == 0:
        report.add(None, "empty file")
        return [], report
    if size > max_bytes:
        report.add(None, f"file is {size} bytes, over the {max_bytes}-byte limit")
        return [], report
    examples = []
    for lineno, obj in _raw_items(path, report):
        ex, why = check_example(obj)
        if why:
            report.add(lineno, why)
        else:
            examples.append(ex)
    if report.ok and not examples:
        report.add(None, "no examples in file")
    report.examples = len(examples) if report.ok else 0
    return (examples if report.ok else []), report


# -- queue moves --------------------------------------------------------------------

def _unique_dest(folder: Path, name: str) -> Path:
    dest = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while dest.exists():
        dest = folder / f"{stem}-{n}{suffix}"
        n += 1
    return dest


def move(path: Path, folder: Path, name: str | None = None) -> Path:
    """Atomic rename into folder, never overwriting an existing quest."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = _unique_dest(folder, name or path.name)
    os.replace(path, dest)
    return dest


def fail(paths: RealmPaths, path: Path, report: QuestReport) -> Path:
    """Move a rejected quest to failed/ under a safe name, with a .reason.json beside it."""
    dest = move(path, paths.queue("failed"), safe_name(path.name))
    atomic_write_json(dest.with_name(dest.name + ".reason.json"), {
        "file": path.name, "stored_as": dest.name, "failed_at": time.time(),
        "problems": [asdict(p) for p in report.problems],
        "summary": report.summary(),
    })
    return dest


def next_quest(paths: RealmPaths) -> tuple[Path, str] | None:
    """The oldest quest of the highest non-empty priority."""
    for prio in PRIORITIES:
        files = [p for p in paths.queue(prio).iterdir()
                 if p.is_file() and not p.name.startswith(".")]
        if files:
            return min(files, key=lambda p: (p.stat().st_mtime, p.name)), prio
    return None


def describe(path: Path) -> dict:
    st = path.stat()
    return {"name": path.name, "bytes": st.st_size, "mtime": st.st_mtime}


def list_queue(paths: RealmPaths) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for state in ("processing", *PRIORITIES, "failed", "recently_completed"):
        folder = paths.queue(state)
        files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                        and not p.name.endswith(".reason.json")),
                       key=lambda p: p.stat().st_mtime) if folder.exists() else []
        entries = [describe(p) for p in files]
        if state == "failed":
            for e in entries:
                reason = folder / (e["name"] + ".reason.json")
                if reason.exists():
                    try:
                        e["reason"] = json.loads(reason.read_text())["summary"]
                    except (OSError, ValueError, KeyError):
                        e["reason"] = "unreadable reason file"
        out[state] = entries
    return out


def write_quest(path: Path, examples: list[dict]) -> Path:
    """Write a .jsonl quest atomically (tmp name is hidden from the daemon)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
