"""What the ledger's writers put in an event (store/ledger.py): the training thread's
buffered events keep their data and name their writer, and `json_data` writes keys in
one order, so the same data is always the same text (the catalogue's `detail`, events'
`data`)."""

from __future__ import annotations

import json

import pytest

from realm_kernel.store.ledger import Ledger, MetricBuffer, json_data
from realm_kernel.store.paths import RealmPaths


@pytest.mark.timeout(20)  # close() flushes at once, never after the 1-hour interval
def test_a_buffered_event_keeps_its_data_and_writer(tmp_path):
    led = Ledger(RealmPaths.at(tmp_path).ensure(), "trainer@1")
    assert led.writer == "trainer1", "a writer name keeps letters, digits, '-' and '_'"
    buf = MetricBuffer(led, interval=3600)
    buf.event("battle_paused", "paused at 19", json_data({"step": 19}))
    buf.close()
    [row] = led.query("SELECT kind, message, data, source FROM events")
    assert row == {"kind": "battle_paused", "message": "paused at 19", "data": '{"step": 19}',
                   "source": "trainer1"}
    assert Ledger(RealmPaths.at(tmp_path), "@@").writer == "w"


def test_json_data_is_one_text_per_value():
    assert json_data({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a": {"c": 3, "d": 2}, "b": 1}'
    assert json.loads(json_data({"p": RealmPaths.at("/x").home})) == {"p": "/x"}
