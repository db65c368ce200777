"""Change-driven pages (issue 30): a page runs no ledger query when nothing it reads
changed, one poller serves every view of a process, and a view nobody sees is not
refreshed until it is seen again. Counted, never timed: the ledger's query and tail
reads of the real Realm over a real ledger are counted."""

from __future__ import annotations

import logging

import pytest

from realm_kernel.api import Realm
from realm_widgets.pages import PAGES, TavernSession, bind
from realm_widgets.poller import Poller


class Counting:
    """Counts the reads that run SQL on the realm's ledger (query and the tail reads)."""

    def __init__(self, realm: Realm, monkeypatch) -> None:
        self.n = 0
        ledger = realm.ledger
        for name in ("query", "tail"):
            real = getattr(ledger, name)

            def counted(*a, _real=real, **kw):
                self.n += 1
                return _real(*a, **kw)
            monkeypatch.setattr(ledger, name, counted)

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


@pytest.fixture
def realm(tmp_path) -> Realm:
    return Realm(tmp_path / "realm")


def tavern_widgets() -> tuple[list, list]:
    """The Tavern page's real anywidgets, and a list that grows by one per synced field
    the page sends them (what would go over the wire)."""
    from realm_widgets.jupyter import widget_class
    from realm_widgets.traits import FIELDS
    sent: list = []
    ws = [widget_class(n)() for n in PAGES["tavern"].widgets]
    for w in ws:
        w.observe(lambda change: sent.append(change["name"]), names=list(FIELDS[w.widget_name]))
    return ws, sent


@pytest.mark.parametrize("name", [n for n in PAGES if n != "oracle"])
def test_a_page_runs_no_query_when_nothing_changed(realm, monkeypatch, name):
    session = PAGES[name].session(realm)
    reads = Counting(realm, monkeypatch)
    first = session.snapshot()
    assert reads.take() > 0  # the first snapshot reads the ledger
    for _ in range(3):
        assert session.snapshot() == first
    assert reads.take() == 0, f"{name}: queries with nothing changed"
    # A new event changes the toasts' table: that part is read again, and shows it.
    realm.ledger.event("achievement", "First Blood")
    state = session.snapshot()
    assert reads.take() > 0
    assert any(t["message"] == "First Blood" for t in state["toasts"])


def on_clock(session, start: float = 0.0) -> list[float]:
    """The session's clock, moved by hand: [now]."""
    clock = [start]
    session.clock = lambda: clock[0]
    return clock


def counted_parts(session, monkeypatch) -> list[str]:
    calls: list[str] = []
    for part in session.parts():
        real = getattr(session, part)
        monkeypatch.setattr(session, part, lambda _p=part, _r=real: (calls.append(_p), _r())[1])
    return calls


def test_only_the_parts_whose_tables_changed_are_read_again(realm, monkeypatch):
    session = TavernSession(realm)
    clock = on_clock(session)
    session.snapshot()
    calls = counted_parts(session, monkeypatch)
    clock[0] += 10
    realm.ledger.append("metrics", [{"step": 1, "loss": 2.5}])
    session.snapshot()
    assert calls == ["state"]  # the hero and the battle read metrics; events, skills, toasts do not
    calls.clear()
    realm.ledger.event("achievement", "First Blood")
    clock[0] += 10
    session.snapshot()
    assert sorted(calls) == ["feed", "state", "toasts"]  # skills and achievements read no events
    calls.clear()
    # The events DIO writes about once a second while it trains: only the feed shows them.
    realm.ledger.event("checkpoint_saved", "checkpoint-40 saved")
    clock[0] += 10
    assert session.snapshot()["events"][0]["message"] == "checkpoint-40 saved"
    assert sorted(calls) == ["feed", "state"]


def test_an_event_of_another_kind_reads_nothing_on_the_vault_page(realm, monkeypatch):
    """The Vault reads the champion's events, not the checkpoint_saved/eval_requested ones."""
    session = PAGES["vault"].session(realm)
    session.snapshot()
    reads = Counting(realm, monkeypatch)
    for kind in ("checkpoint_saved", "eval_requested", "eval_done", "retention", "task_done"):
        realm.ledger.event(kind, kind)
        session.snapshot()
    assert reads.take() == 0
    realm.ledger.event("champion", "checkpoint-9 is the champion", key="champion")
    state = session.snapshot()
    assert reads.take() > 0 and state["toasts"][0]["kind"] == "champion"


def test_a_part_that_moves_every_step_is_read_at_its_own_pace(realm, monkeypatch):
    """While DIO trains, metrics change at every poll: the hero and the battle are read
    again at most every `every` seconds, while a new event still shows at the next poll."""
    session = TavernSession(realm)
    clock = on_clock(session)
    session.snapshot()
    calls = counted_parts(session, monkeypatch)
    pace = TavernSession.every["state"]
    for step in range(1, 9):  # a step per poll, the poll every half second: 4 s
        realm.ledger.append("metrics", [{"step": step, "loss": 2.5}])
        clock[0] += 0.5
        session.snapshot()
    assert calls.count("state") == int(4 / pace)
    realm.ledger.event("achievement", "Seen at once")
    clock[0] += 0.1
    state = session.snapshot()
    assert "feed" in calls and any(e["message"] == "Seen at once" for e in state["events"])
    calls.clear()
    realm.ledger.append("metrics", [{"step": 9, "loss": 2.5}])
    session.act({"name": "pause", "nonce": "p"})  # an action reads everything again at once
    session.snapshot()
    assert "state" in calls


def test_the_vault_and_the_oracles_pool_are_read_at_their_own_pace(realm, monkeypatch):
    """Checkpoints saved every few seconds re-read the Vault's list at most every 5 s; the
    Oracle's pool list (a request to the pool's owner) at most every second, while its
    panes (in memory, the streamed answers) follow every poll."""
    from realm_widgets.pages import OracleSession, VaultSession
    vault, oracle = VaultSession(realm), OracleSession(realm)
    clocks = [on_clock(vault), on_clock(oracle)]
    vault.snapshot(), oracle.snapshot()
    vault_calls, oracle_calls = counted_parts(vault, monkeypatch), counted_parts(oracle, monkeypatch)
    for i in range(8):  # a checkpoint saved every half second, the poll every half second: 4 s
        realm.ledger.append("checkpoints", [{"step": i, "name": f"checkpoint-{i}", "path": f"/c/{i}"}])
        for clock in clocks:
            clock[0] += 0.5
        vault.snapshot(), oracle.snapshot()
    assert vault_calls.count("slow_state") == int(4 / VaultSession.every["slow_state"])
    assert oracle_calls.count("state") == 8
    assert oracle_calls.count("pool") == int(4 / OracleSession.every["pool"])
    oracle_calls.clear()
    oracle.act({"name": "nope", "nonce": "n"})  # an action (even a refused one) reads all now
    oracle.snapshot()
    assert "pool" in oracle_calls


def test_sessions_of_a_process_share_what_one_read(realm, monkeypatch, tmp_path):
    """Three tabs of the Tavern and a Vault: each part is read once for all of them (the
    toasts once for every page), again once after a change; another home shares nothing."""
    from realm_widgets.pages import Session, VaultSession
    calls: list[str] = []
    for cls, part in ((TavernSession, "state"), (TavernSession, "feed"), (TavernSession, "slow_state"),
                      (VaultSession, "slow_state"), (Session, "toasts")):
        real = getattr(cls, part)
        name = f"{cls.__name__}.{part}"
        monkeypatch.setattr(cls, part, lambda self, _r=real, _n=name: (calls.append(_n), _r(self))[1])
    tabs = [TavernSession(realm) for _ in range(3)]
    vault = VaultSession(realm)
    states = [s.snapshot() for s in tabs]
    vault.snapshot()
    assert all(st == states[0] for st in states)
    assert sorted(calls) == ["Session.toasts", "TavernSession.feed", "TavernSession.slow_state",
                             "TavernSession.state", "VaultSession.slow_state"]
    calls.clear()
    realm.ledger.event("achievement", "Shared")
    for s in [*tabs, vault]:
        assert any(t["message"] == "Shared" for t in s.snapshot()["toasts"])
    assert sorted(set(calls)) == sorted(calls)  # each part read once for the four sessions
    calls.clear()
    TavernSession(Realm(tmp_path / "other")).snapshot()
    assert "TavernSession.state" in calls


def test_an_action_reads_everything_again(realm, monkeypatch):
    session = TavernSession(realm)
    session.snapshot()
    reads = Counting(realm, monkeypatch)
    session.act({"name": "pause", "nonce": 1})
    session.snapshot()
    assert reads.take() > 0


def test_one_poller_stamps_once_per_tick_for_every_view(realm, monkeypatch):
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    sent_by_view = []
    for _ in range(3):  # three browser sessions of the Tavern
        ws, sent = tavern_widgets()
        session = TavernSession(realm)
        session.every = {}  # the hero and battle's own pace is not what this tests
        view, _ = bind(session, ws, period=0.5)
        poller.add(view)
        view.set_shown(True)  # the widgets' first render reports them seen
        sent_by_view.append(sent)
    stamped = []
    real = realm.stamps
    monkeypatch.setattr(realm, "stamps", lambda sources: (stamped.append(1), real(sources))[1])
    reads = Counting(realm, monkeypatch)
    for sent in sent_by_view:
        sent.clear()
    realm.ledger.append("metrics", [{"step": 1, "loss": 2.5}])  # DIO fights a step
    assert poller.tick() == 3 and len(stamped) == 1 and reads.take() > 0
    assert all("hero" in sent for sent in sent_by_view)
    for sent in sent_by_view:
        sent.clear()
    clock[0] += 1
    assert poller.tick() == 3 and reads.take() == 0  # nothing changed: nothing computed
    assert sent_by_view == [[], [], []]  # and nothing sent
    clock[0] += 0.1
    assert poller.tick() == 0  # not due yet (each view keeps its page's pace)


def test_a_view_nobody_has_seen_yet_is_not_refreshed(realm, monkeypatch):
    """A page built for a request whose browser never opens its websocket (a health check,
    a crawler), or a notebook page never displayed: no query, nothing sent, ever."""
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    ws, sent = tavern_widgets()
    view, _ = bind(TavernSession(realm), ws)
    view.refresh()  # the state the page is built with
    poller.add(view)
    sent.clear()
    reads = Counting(realm, monkeypatch)
    realm.ledger.append("metrics", [{"step": 1, "loss": 2.5}])
    for _ in range(3):
        clock[0] += 5
        assert poller.tick() == 0
    assert reads.take() == 0 and sent == []


def test_a_hidden_view_is_not_refreshed_and_gets_the_state_when_shown(realm, monkeypatch):
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    ws, sent = tavern_widgets()
    view, _ = bind(TavernSession(realm), ws)
    poller.add(view)
    view.set_shown(True)
    poller.tick()
    view.set_shown(False)  # the tab went to the background / scrolled away
    sent.clear()
    reads = Counting(realm, monkeypatch)
    realm.ledger.event("achievement", "Unseen")
    for _ in range(3):
        clock[0] += 5
        assert poller.tick() == 0
    assert reads.take() == 0 and sent == []
    view.set_shown(True)  # seen again: the current state at once, without waiting for a tick
    toasts = next(w for w in ws if w.widget_name == "toasts")
    assert "toasts" in sent and any(t["message"] == "Unseen" for t in toasts.toasts)
    view.close()
    assert poller.views() == []


def test_the_notebook_page_follows_what_its_widgets_report(realm):
    """jupyter.page wires each widget's synced `in_view` (set by prelude.js) to its view:
    the page is seen while any of its widgets is."""
    from realm_widgets.jupyter import page
    from realm_widgets.poller import POLLER
    box = page("tavern", realm.paths.home, plots=False)
    view, ws = box.view, list(box.children)
    try:
        assert view in POLLER.views() and view.shown is False  # not displayed yet
        ws[1].in_view = True  # its first render reports it seen
        assert view.shown
        for w in ws:
            w.in_view = False
        assert not view.shown
        realm.ledger.event("achievement", "Back in view")
        ws[0].in_view = True  # one widget scrolled back in: the state at once
        assert view.shown
        toasts = next(w for w in ws if w.widget_name == "toasts")
        assert any(t["message"] == "Back in view" for t in toasts.toasts)
    finally:
        view.close()


def test_views_of_one_pace_fall_due_together(realm):
    """Two tabs opened 0.3 s apart: after their first refresh they are due in the same
    tick, so they see the same stamps and share what one read."""
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    views = []
    for opened in (0.0, 0.3):
        clock[0] = opened
        ws, _ = tavern_widgets()
        view, _ = bind(TavernSession(realm), ws, period=0.5)
        poller.add(view)
        view.set_shown(True)
        assert poller.tick() == 1  # the new one, at once
        views.append(view)
    clock[0] = 0.5
    assert poller.tick() == 2
    clock[0] = 0.8
    assert poller.tick() == 0


def test_a_tick_logs_what_failed_and_goes_on(realm, monkeypatch, caplog):
    """A ledger that cannot be stamped, or a page that fails to refresh, is a warning
    naming why; the poller keeps ticking."""
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    ws, _ = tavern_widgets()
    view, _ = bind(TavernSession(realm), ws, period=0.5)
    poller.add(view)
    view.set_shown(True)

    def fail(*_a, **_kw):
        raise OSError("half restored")
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="realm.widgets"):
        m.setattr(realm, "stamps", fail)
        assert poller.tick() == 1
    assert [r.getMessage() for r in caplog.records] == ["change stamps: half restored"]
    caplog.clear()
    clock[0] += 1
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="realm.widgets"):
        m.setattr(view, "refresh", fail)
        assert poller.tick() == 1
    assert [r.getMessage() for r in caplog.records] == ["page refresh: half restored"]
