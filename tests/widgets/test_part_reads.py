"""Every page part declares what it reads (issue 30): a part is read again only when the
stamps of its declared sources change, so a table (or kind of event) it reads but does not
declare would leave the page stale. Each part of every page runs here over a realm with
rows in every table it could read, and every ledger read it makes is checked against its
declaration: the tables its SQL reads (through the derived views), the table of each tail
read, and for a part that declares only some kinds of events (`events_of`), that each of
its event reads is restricted to those kinds."""

from __future__ import annotations

import json
import re

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.changes import KINDS_OF
from realm_kernel.store.ledger import tables_read
from realm_widgets.pages import PAGES, TOAST_KINDS

from ..helpers import make_home

STEP = 40


@pytest.fixture
def realm(tmp_path, dio_mini_dir) -> Realm:
    """A realm with a checkpoint (on disk and in the ledger), its evals per primitive, a
    probe, an achievement, a champion, a zone and events of the kinds the daemon writes."""
    paths = make_home(tmp_path / "realm", dio_mini_dir)
    r = Realm(paths.home)
    led = r.ledger
    ckpt = paths.checkpoints / f"checkpoint-{STEP}"
    ckpt.mkdir(parents=True)
    led.append("metrics", [{"step": s, "loss": 2.0 / s, "tokens_per_s": 100.0} for s in range(1, STEP + 1)])
    led.append("checkpoints", [{"step": STEP, "name": ckpt.name, "path": str(ckpt), "loss": 0.5,
                                "skill": "bin", "skill_level": 1}])
    led.append("evals", [{"step": STEP, "checkpoint": ckpt.name, "skill": "bin", "level": 1,
                          "accuracy": 0.5, "n": 4, "correct": 2, "run_id": "r1"}])
    led.append("primitive_accuracy", [{"run_id": "r1", "step": STEP, "checkpoint": ckpt.name,
                                       "skill": "bin", "level": 1, "primitive_id": "bin_add",
                                       "n": 4, "correct": 2, "accuracy": 0.5}])
    led.append("passive_probes", [{"run_id": "p1", "step": STEP, "checkpoint": ckpt.name,
                                   "passive": "arithmetic", "primitive_id": "add", "n": 2,
                                   "correct": 1, "accuracy": 0.5}])
    led.append("achievements", [{"achievement_id": "first_checkpoint", "name": "First", "step": STEP}])
    led.append("assets", [{"asset_id": f"checkpoint_{STEP}", "type": "checkpoint", "zone": "local",
                           "path": str(ckpt), "bytes": 1, "step": STEP, "status": "present"}])
    led.append("quests", [{"quest_id": "q1", "status": "completed", "examples": 4}])
    led.event("champion", f"{ckpt.name} is the champion",
              json.dumps({"step": STEP, "name": ckpt.name, "path": str(ckpt)}), key="champion")
    for kind in ("checkpoint_saved", "eval_requested", "quest_generated", "loss_alarm", "eval_done"):
        led.event(kind, kind, json.dumps({"step": STEP, "checkpoint": ckpt.name, "skill": "bin"}))
    return r


def event_kinds_of(sql: str) -> set[str] | None:
    """The kinds of events a query can read: those its `kind = '...'` names (the champion
    view: `champion` events), or None when it reads events of any kind."""
    flat = " ".join(sql.split())
    if re.fullmatch(r"SELECT [\w, ]+ FROM champion", flat):
        return {"champion"}
    kinds = re.findall(r"FROM events WHERE kind = '(\w+)'", flat)
    if kinds and flat.count("FROM events") == len(kinds):
        return set(kinds)
    return None


class Reads:
    """The ledger reads a part makes: (tables, kinds of events or None for any)."""

    def __init__(self, realm: Realm, monkeypatch) -> None:
        self.seen: list[tuple[set[str], set[str] | None]] = []
        led = realm.ledger
        real_query, real_tail, real_max = led.query, led.tail, led.max_value

        def query(sql, params=None):
            tables = set(tables_read(sql))
            self.seen.append((tables, event_kinds_of(sql) if "events" in tables else None))
            return real_query(sql, params)

        def tail(table, columns, limit, key="step", notnull=None, kinds=None):
            self.seen.append(({table}, set(kinds) if kinds is not None else None))
            return real_tail(table, columns, limit, key, notnull, kinds)

        def max_value(table, column):  # from the table's segment statistics
            self.seen.append(({table}, None))
            return real_max(table, column)
        monkeypatch.setattr(led, "query", query)
        monkeypatch.setattr(led, "tail", tail)
        monkeypatch.setattr(led, "max_value", max_value)


def undeclared(reads: list[tuple[set[str], set[str] | None]], declared: tuple[str, ...]) -> list[str]:
    tables = {s for s in declared if not s.startswith(KINDS_OF)}
    kinds = {k for s in declared if s.startswith(KINDS_OF) for k in s[len(KINDS_OF):].split(",")}
    out = []
    for read_tables, read_kinds in reads:
        for t in sorted(read_tables - tables):
            if t == "events" and kinds and read_kinds is not None and read_kinds <= kinds:
                continue  # only events of the declared kinds
            out.append(t if t != "events" else f"events of kinds {read_kinds or 'any'}")
    return out


@pytest.mark.parametrize("name", list(PAGES))
def test_every_part_reads_only_what_it_declares(realm, monkeypatch, name):
    session = PAGES[name].session(realm)
    for part, declared in session.parts().items():
        if declared is None:  # in-memory state, taken on every snapshot
            continue
        reads = Reads(realm, monkeypatch)
        getattr(session, part)()
        assert reads.seen or part == "toasts" or name == "settings", f"{name}.{part} read nothing"
        assert not undeclared(reads.seen, declared), (
            f"{name}.{part} reads {undeclared(reads.seen, declared)} but declares {declared}")
        monkeypatch.undo()


def test_the_check_sees_an_undeclared_read(realm, monkeypatch):
    """The check above can fail: the Vault's part, declared without its champion events or
    with the feed's every kind narrowed to the toasts', is caught."""
    session = PAGES["vault"].session(realm)
    reads = Reads(realm, monkeypatch)
    session.slow_state()
    declared = session.parts()["slow_state"]
    assert not undeclared(reads.seen, declared)
    assert undeclared(reads.seen, tuple(s for s in declared if not s.startswith(KINDS_OF))) == [
        "events of kinds {'champion'}"] * 2
    feed = PAGES["tavern"].session(realm)
    reads = Reads(realm, monkeypatch)
    feed.feed()
    assert "events of kinds any" in undeclared(reads.seen, (f"{KINDS_OF}{','.join(TOAST_KINDS)}",))
