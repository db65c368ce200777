"""The HoloViews plots are change-driven (issue 30): they are views of the process's one
poller, never a timer of their own; a plot's data is read again only when a table it
reads changed, and not at all while its page is hidden. Counted, never timed: calls of
the plots' data functions over a real Realm and a real ledger."""

from __future__ import annotations

import panel as pn
import pytest

from realm_kernel.api import Realm
from realm_widgets import plots
from realm_widgets.pages import PAGES, TavernSession
from realm_widgets.poller import Poller, View


@pytest.fixture
def realm(tmp_path) -> Realm:
    return Realm(tmp_path / "realm")


@pytest.fixture
def periodic(monkeypatch) -> list:
    """Every periodic callback anything asks Panel for while the test runs."""
    asked: list = []
    real = pn.state.add_periodic_callback
    monkeypatch.setattr(pn.state, "add_periodic_callback",
                        lambda *a, **kw: (asked.append(a or kw), real(*a, **kw))[1])
    return asked


def counted(monkeypatch, name: str) -> list:
    """Calls of one of plots.py's data functions (battle_data, guild_data)."""
    calls: list = []
    real = getattr(plots, name)
    monkeypatch.setattr(plots, name, lambda realm: (calls.append(1), real(realm))[1])
    return calls


def plot_names(col: pn.Column) -> list[str]:
    return [p._realm_plot for p in col.objects]


def shown_data(col: pn.Column) -> list:
    """The data each drawn plot holds (its stream's, which HoloViews draws from)."""
    return [p.object.streams[0].data for p in col.objects]


def shown_page(realm: Realm, poller: Poller, period: float = 0.5) -> View:
    page = View(TavernSession(realm), lambda state: None, period)
    poller.add(page)
    page.set_shown(True)  # as prelude.js reports at the widgets' first render
    return page


def test_a_plot_reads_its_data_only_when_its_tables_changed(realm, monkeypatch, periodic):
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    page = shown_page(realm, poller)
    calls = counted(monkeypatch, "battle_data")
    col = plots.plots_for(("battle",), realm, page, poller=poller)
    assert calls == [1] and plot_names(col) == ["battle", "battle"]  # drawn once at once
    drawn = list(col.objects)
    for _ in range(3):
        clock[0] += plots.PLOT_SECONDS
        poller.tick()
    assert calls == [1] and shown_data(col)[0]["loss"] == []  # nothing changed: not read again
    realm.ledger.event("achievement", "First Blood")  # a table the plots do not read
    clock[0] += plots.PLOT_SECONDS
    poller.tick()
    assert calls == [1]
    realm.ledger.append("metrics", [{"step": 1, "loss": 2.5, "tokens_per_s": 900.0}])
    clock[0] += plots.PLOT_SECONDS
    poller.tick()
    assert calls == [1, 1]  # a new row: read once, and drawn into the same plots
    assert col.objects == drawn and shown_data(col)[0]["loss"] == [[1, 2.5]]
    # what each plot draws from its stream's new data (the loss curve, then tokens/s)
    loss, tokens = (p.object[()] for p in col.objects)
    assert list(loss)[0].data.values.tolist() == [[1, 2.5]] and tokens.data.values.tolist() == [[1, 900.0]]
    clock[0] += plots.PLOT_SECONDS
    poller.tick()
    assert calls == [1, 1]
    assert periodic == []


def test_a_plot_keeps_its_pace_while_its_data_change(realm, monkeypatch):
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    page = shown_page(realm, poller, period=0.5)
    calls = counted(monkeypatch, "battle_data")
    plots.plots_for(("battle",), realm, page, poller=poller)
    for step in range(1, 91):  # a row every half second for 45 s, as DIO trains
        realm.ledger.append("metrics", [{"step": step, "loss": 2.5}])
        clock[0] += 0.5
        poller.tick()
    # the first draw, the poller's first look, then one per PLOT_SECONDS (not one per row: 91)
    assert len(calls) == 2 + int(45 / plots.PLOT_SECONDS)


def test_a_hidden_page_reads_no_plot_data_and_redraws_when_shown(realm, monkeypatch):
    clock = [0.0]
    poller = Poller(clock=lambda: clock[0])
    page = shown_page(realm, poller, period=1.0)
    calls = counted(monkeypatch, "guild_data")
    col = plots.plots_for(("guild",), realm, page, poller=poller)
    assert calls == [1]
    page.set_shown(False)  # the page's widgets report it hidden: the plots follow
    realm.ledger.append("evals", [{"step": 10, "skill": "bin", "level": 1, "accuracy": 0.5}])
    for _ in range(3):
        clock[0] += 5
        poller.tick()
    assert calls == [1]
    assert shown_data(col)[0]["evals"] == []
    page.set_shown(True)  # seen again: the current plots at once, without waiting for a tick
    assert calls == [1, 1] and shown_data(col)[0]["evals"] == [
        {"skill": "bin", "level": 1, "accuracy": 0.5, "step": 10}]
    page.close()
    assert poller.views() == []  # the plots leave with their page


def test_a_plot_whose_data_cannot_be_read_says_so_and_the_page_lives_on(realm, monkeypatch):
    poller = Poller()
    page = shown_page(realm, poller)

    def broken(realm):
        raise OSError("ledger unreadable")
    monkeypatch.setattr(plots, "battle_data", broken)
    col = plots.plots_for(("battle",), realm, page, poller=poller)
    assert plot_names(col) == ["battle"]
    assert col.objects[0].object.text == "plot unavailable: its data could not be read; see the log"


@pytest.mark.parametrize("name", [n for n, p in PAGES.items() if p.plots])
def test_no_page_asks_panel_for_a_periodic_callback(realm, monkeypatch, periodic, name):
    """The Panel app's page and the notebook's page, plots and all: the process's one
    poller refreshes them, no periodic callback per session or plot."""
    from realm_widgets.app import build_page
    from realm_widgets.jupyter import page
    from realm_widgets.poller import POLLER
    monkeypatch.setenv("REALM_HOME", str(realm.paths.home))
    before = set(POLLER.views())
    build_page(name)
    page(name, str(realm.paths.home))
    added = [v for v in POLLER.views() if v not in before]
    assert periodic == []
    assert len(added) == 4  # per host: the page's view and its plots' view
    for v in added:
        v.close()
