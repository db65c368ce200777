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
    """One page as its own `panel serve` script (widgets/tavern.py, widgets/oracle.py),
    refused (and the server stopped) when Panel's command line left it reachable from
    other machines without a login."""
    refuse_exposed_panel_serve()
    pn.extension()
    build_page(name).servable(title=f"Realm of Training — {PAGES[name].title}")


def panel_serve_exposure() -> list[str]:
    """Why the Bokeh server running this script is reachable from another machine: its
    listening sockets and websocket origins as the running server holds them. `panel
    serve` parsed its own options (prefixes, last value wins, BOKEH_* variables, its
    default of every address); reading what it did with them needs no second parser."""
    import gc
    import socket

    from bokeh.server.server import Server

    from realm_kernel.api import exposure
    why: list[str] = []
    for server in (o for o in gc.get_objects() if isinstance(o, Server)):
        for sock in server._http._sockets.values():
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                why += exposure(sock.getsockname()[0])
        why += exposure("127.0.0.1", sorted(server._tornado.websocket_origins))
    return sorted(set(why))


def refuse_exposed_panel_serve() -> None:
    """Bokeh runs the script at a browser's first request, after it started listening:
    an exposed server without Panel's login is stopped there, before a page is built."""
    import os
    import sys

    from realm_kernel.api import ExposureError, refuse_without_login
    try:
        refuse_without_login("the Tavern (panel serve)", panel_serve_exposure(),
                             bool(pn.config.basic_auth or pn.config.oauth_provider),
                             "pass --address 127.0.0.1, or Panel's --basic-auth / --oauth-provider")
    except ExposureError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        os._exit(2)  # inside a request handler: SystemExit would only end this session


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
