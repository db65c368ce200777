"""The Panel app's pieces without a browser (widgets/app.py): the navigation's links, the
login options handed to pn.serve, and one page built for a session over a temp realm (its
widgets bound, its plots, the Tavern's two columns)."""

from __future__ import annotations

from types import SimpleNamespace

import panel as pn

from realm_widgets import app
from realm_widgets.login import RealmLoginProvider
from realm_widgets.pages import PAGES


def test_nav_links_every_page_and_marks_the_current_one():
    nav = app.nav("vault")
    assert isinstance(nav, pn.pane.HTML) and nav.sizing_mode == "stretch_width"
    assert nav.object.startswith('<nav class="realm-nav"><a href="/" class="" data-page="tavern">')
    assert nav.object.endswith("</a></nav>") and nav.stylesheets == [app.NAV_CSS]
    for name, page in PAGES.items():
        current = "current" if name == "vault" else ""
        assert (f'<a href="{app.ROUTES[name]}" class="{current}" data-page="{name}">{page.icon} '
                f"{page.title}</a>") in nav.object
    assert nav.object.count("<a ") == len(PAGES) and nav.object.count("</a><a ") == len(PAGES) - 1


def server(**kw) -> SimpleNamespace:
    return SimpleNamespace(**{"basic_auth": None, "user": None, "oauth_provider": None, "oauth_key": None,
                              "oauth_secret": None, "oauth_redirect_uri": None, "cookie_secret": None,
                              **kw})


def test_login_options_for_a_password_oauth_or_nothing():
    assert app.login_options(server()) == {}
    opts = app.login_options(server(basic_auth="pw", user="ann", cookie_secret="c" * 40))
    assert isinstance(opts["auth_provider"], RealmLoginProvider) and opts["cookie_secret"] == "c" * 40
    assert opts["auth_provider"].login_handler.users == {"ann": "pw"}
    oauth = app.login_options(server(oauth_provider="github", oauth_key="k", oauth_secret="s",
                                     cookie_secret="c"))
    assert oauth == {"oauth_provider": "github", "oauth_key": "k", "oauth_secret": "s", "cookie_secret": "c"}


def test_a_tavern_page_for_one_session(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    page = app.build_page("tavern")
    try:
        assert isinstance(page, pn.Column) and page.sizing_mode == "stretch_width"
        assert page.max_width == 1400
        nav, flex = page.objects
        assert 'class="current" data-page="tavern"' in nav.object
        left, right = flex.objects
        assert flex.flex_wrap == "wrap" and flex.sizing_mode == "stretch_width"
        for col in (left, right):
            assert col.styles == {"flex": "1 1 560px", "min-width": "0"}
            assert col.sizing_mode == "stretch_width"
        assert [c.widget_name for c in left.objects] == ["hero_card", "battle_view"]
        assert [c.widget_name for c in right.objects[:2]] == ["achievements", "toasts"]
        assert len(right.objects) == 3  # and the battle plots
        assert "realm-plots" in right.objects[2].css_classes
        assert right.objects[2].objects, "the plots are drawn from the realm's data"
        # The widgets carry the session's first state.
        assert left.objects[0].hero and "level" in left.objects[0].hero
    finally:
        from realm_widgets.poller import POLLER
        for view in POLLER.views():  # this session's page and plots: closed, as a session's end does
            view.close()


def test_the_tavern_script_builds_the_tavern(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    from realm_widgets import tavern
    page = tavern.build()
    try:
        assert 'class="current" data-page="tavern"' in page.objects[0].object
        assert isinstance(page.objects[1], pn.FlexBox)
    finally:
        from realm_widgets.poller import POLLER
        for view in POLLER.views():
            view.close()


def test_a_page_served_alone_is_built_when_nothing_exposes_it(tmp_path, monkeypatch):
    """`panel serve widgets/oracle.py`'s script in this process: no Bokeh server here is
    reachable from elsewhere, so the Oracle page is built (its session in the poller)."""
    from realm_widgets.pages import OracleSession
    from realm_widgets.poller import POLLER
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    before = POLLER.views()
    app.serve_alone("oracle")
    try:
        new = [v for v in POLLER.views() if v not in before]
        assert [type(v.session) for v in new] == [OracleSession]
    finally:
        for view in POLLER.views():
            view.close()
