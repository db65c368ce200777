"""Change stamps: how a reader learns cheaply that something it reads has changed, without
reading it. A stamp is a small hashable value that differs whenever its source differs.

A ledger table's stamp is its generation (`Ledger.table_generation`: the live generation
folder, its segment count and its newest segment name), read from one folder listing; no
Parquet file is opened and no query runs. The realm's other sources are files on disk,
stamped by name, mtime and size. The Tavern's pages (widgets/pages.py) recompute a part of
their state only when the stamps of the sources it reads differ from last time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .ledger import Ledger
from .paths import QUEUE_STATES, RealmPaths
from .schema import TABLES

Stamp = tuple


def listing(folder: Path) -> Stamp:
    """Each entry of a folder (not recursive): its name, mtime and size; () when absent.
    Temp files (a leading dot) are left out: they are not there yet."""
    try:
        with os.scandir(folder) as it:
            out = []
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:  # renamed away during the listing
                    continue
                out.append((e.name, st.st_mtime_ns, st.st_size))
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted(out))


def file_stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return ()
    return (st.st_mtime_ns, st.st_size)


# The realm's sources that are not ledger tables: what each is, and how it is stamped.
FILE_SOURCES: dict[str, Callable[[RealmPaths], Stamp]] = {
    "status": lambda p: (listing(p.status), listing(p.control)),  # status files, battle controls
    "config": lambda p: file_stamp(p.config_file),  # realm.toml
    "hosts": lambda p: (file_stamp(p.home / "hosts.toml"), file_stamp(p.home / "hosts.json")),
    "queue": lambda p: (listing(p.inbox), *(listing(p.queue(s)) for s in QUEUE_STATES)),
    "task_files": lambda p: (listing(p.tasks), listing(p.tasks / "requests")),
    "checkpoint_files": lambda p: listing(p.checkpoints),
}
SOURCES = (*TABLES, *FILE_SOURCES)
KINDS_OF = "events:"  # a source of only some kinds of events: "events:champion,loss_alarm"


def events_of(*kinds: str) -> str:
    """The source of only these kinds of events: its stamp (Ledger.kinds_generation) stays
    while DIO writes events of other kinds, about one a second while it trains."""
    if not kinds or any(not k or "," in k for k in kinds):
        raise ValueError(f"event kinds must be non-empty names without commas: {kinds!r}")
    return KINDS_OF + ",".join(sorted(set(kinds)))


def stamps(ledger: Ledger, names: Iterable[str]) -> dict[str, Stamp]:
    """The current stamp of each named source (a ledger table, a FILE_SOURCES name or
    some kinds of events: events_of)."""
    out = {}
    for name in names:
        if name in TABLES:
            out[name] = ledger.table_generation(name)
        elif name in FILE_SOURCES:
            out[name] = FILE_SOURCES[name](ledger.paths)
        elif name.startswith(KINDS_OF) and len(name) > len(KINDS_OF):
            out[name] = ledger.kinds_generation("events", name[len(KINDS_OF):].split(","))
        else:
            raise KeyError(f"unknown change source {name!r}; known: {sorted(SOURCES)} "
                           f"and {KINDS_OF}<kind>[,<kind>...]")
    return out
