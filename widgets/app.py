"""The whole Tavern as one Panel server, every page at its route:

    python -m realm_widgets.app --port 5006          # or: realm tavern --port 5006

routes `/` (the Tavern), `/quests`, `/oracle`, `/vault`, `/settings`, `/scheduler`,
`/guild`. The realm home is REALM_HOME (default: the checkout). Binds 127.0.0.1 unless
told otherwise; every asset is served by this server (no CDN)."""

from __future__ import annotations

import html

import panel as pn

from realm_kernel.api import Realm
from realm_widgets.pages import PAGES, bind, shared_realm
from realm_widgets.panel_components import component
from realm_widgets.poller import POLLER

ROUTES = {name: "/" if name == "tavern" else f"/{name}" for name in PAGES}

NAV_CSS = """
.realm-nav { display: flex; flex-wrap: wrap; gap: 6px; padding: 6px 0; }
.realm-nav a { text-decoration: none; padding: 4px 12px; border-radius: 999px; color: inherit;
  border: 1px solid #ddd8ee; font-family: system-ui, sans-serif; font-size: 0.95em; }
.realm-nav a.current { background: #7a3fb0; color: #fff; border-color: #7a3fb0; }
"""


def nav(current: str) -> pn.pane.HTML:
    links = "".join(
        f'<a href="{ROUTES[n]}" class="{"current" if n == current else ""}" data-page="{n}">'
        f"{p.icon} {html.escape(p.title)}</a>" for n, p in PAGES.items())
    return pn.pane.HTML(f'<nav class="realm-nav">{links}</nav>', stylesheets=[NAV_CSS],
                        sizing_mode="stretch_width")


def realm() -> Realm:
    """The server process's one Realm (its ledger connection and Oracle pool are shared by
    every browser session, and with any other page of this process: `shared_realm`)."""
    return shared_realm()


def build_page(name: str) -> pn.viewable.Viewable:
    """One page for one browser session: its own session (state, actions, notices) over
    the process's Realm, its widgets bound to it, refreshed by the process's one poller
    while the browser shows it, and forgotten when the session ends."""
    spec = PAGES[name]
    session = spec.session(realm())
    comps = [component(w)(sizing_mode="stretch_width") for w in spec.widgets]
    view, on_action = bind(session, comps, spec.poll_seconds)
    for c in comps:
        c.param.watch(lambda event: on_action(event.new), "action")
        c.param.watch(lambda event: view.set_shown(any(x.in_view for x in comps)), "in_view")
    view.refresh()
    POLLER.add(view)
    POLLER.start_thread()
    pn.state.on_session_destroyed(lambda _ctx: view.close())
    body = list(comps)
    if spec.plots:
        from realm_widgets.plots import plots_for
        body.append(plots_for(spec.plots, session.realm, view))
    if name == "tavern":  # two columns on a wide window, one on a narrow one
        col = {"flex": "1 1 560px", "min-width": "0"}
        body = [pn.FlexBox(pn.Column(*body[:2], sizing_mode="stretch_width", styles=col),
                           pn.Column(*body[2:], sizing_mode="stretch_width", styles=col),
                           flex_wrap="wrap", sizing_mode="stretch_width")]
    return pn.Column(nav(name), *body, sizing_mode="stretch_width", max_width=1400)


def app(name: str):
    return lambda: build_page(name)


def serve_alone(name: str) -> None:
    """One page as its own `panel serve` script (widgets/tavern.py, widgets/oracle.py)."""
    pn.extension()
    build_page(name).servable(title=f"Realm of Training — {PAGES[name].title}")


def main(argv: list[str] | None = None) -> None:
    """Serve every page: the server `realm tavern` checked (REALM_TAVERN), or, started by
    hand, these options parsed and checked the same way (never beyond 127.0.0.1 without
    a login)."""
    import os
    import sys

    from realm_kernel.api import ExposureError, TavernServer, parse_tavern_options
    try:
        server = TavernServer.from_env(os.environ) or parse_tavern_options(argv).check()
    except ExposureError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    pn.extension()
    routes = {route: app(name) for name, route in ROUTES.items()}
    routes["/tavern"] = app("tavern")  # the address of the first Tavern app keeps working
    pn.serve(routes, address=server.address, port=server.port,
             websocket_origin=server.origins(), show=False,
             title="Realm of Training — Tavern", **login_options(server))


def login_options(server) -> dict:
    """What pn.serve needs for the server's login (none on loopback without one): a
    password login is the realm's own (realm_widgets.login), OAuth is Panel's."""
    if server.basic_auth:
        from realm_widgets.login import RealmLoginProvider, credentials
        return {"auth_provider": RealmLoginProvider(credentials(server.basic_auth, server.user)),
                "cookie_secret": server.cookie_secret}
    return {k: v for k in ("oauth_provider", "oauth_key", "oauth_secret", "oauth_redirect_uri",
                           "cookie_secret") if (v := getattr(server, k))}


if __name__ == "__main__":
    main()
