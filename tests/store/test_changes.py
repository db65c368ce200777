"""Change stamps (store/changes.py): a ledger table's generation changes with every
append and every compaction and with nothing else; file sources by name, mtime, size."""

from __future__ import annotations

import pytest

from realm_kernel.store.changes import SOURCES, events_of, stamps
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.status import TRAINING, write_status


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(RealmPaths.at(tmp_path / "realm").ensure(), writer="t")


def test_a_table_generation_changes_with_each_append_and_compaction_only(ledger):
    before = stamps(ledger, SOURCES)
    assert stamps(ledger, SOURCES) == before  # nothing written: the same stamps
    seen = {ledger.table_generation("events")}
    for i in range(3):
        ledger.event("note", f"n{i}")
        seen.add(ledger.table_generation("events"))
    assert len(seen) == 4  # every append a new stamp
    after = stamps(ledger, SOURCES)
    assert {k for k in SOURCES if after[k] != before[k]} == {"events"}  # the others unchanged
    assert ledger.compact("events") == 3
    assert ledger.table_generation("events") not in seen  # a new generation, same rows


def test_file_sources_change_when_their_files_do(ledger):
    before = stamps(ledger, ["status", "config", "queue"])
    write_status(ledger.paths, TRAINING, state="training")
    (ledger.paths.inbox / "q.jsonl").write_text("{}\n")
    after = stamps(ledger, ["status", "config", "queue"])
    assert after["status"] != before["status"] and after["queue"] != before["queue"]
    assert after["config"] == before["config"]


def test_an_unknown_source_is_named(ledger):
    with pytest.raises(KeyError, match="unknown change source 'nope'"):
        stamps(ledger, ["nope"])


def test_a_source_of_some_event_kinds_changes_only_with_those(ledger):
    toasts, champion = events_of("achievement", "champion"), events_of("champion")
    assert toasts == "events:achievement,champion" == events_of("champion", "achievement")
    before = stamps(ledger, [toasts, champion, "events"])
    ledger.event("checkpoint_saved", "saved")
    mid = stamps(ledger, [toasts, champion, "events"])
    assert mid[toasts] == before[toasts] and mid[champion] == before[champion]
    assert mid["events"] != before["events"]
    ledger.event("achievement", "First Blood")
    after = stamps(ledger, [toasts, champion])
    assert after[toasts] != mid[toasts] and after[champion] == mid[champion]
    for bad in ((), ("a,b",), ("",)):
        with pytest.raises(ValueError, match="event kinds"):
            events_of(*bad)
    with pytest.raises(KeyError, match="unknown change source 'events:'"):
        stamps(ledger, ["events:"])
