"""Jupyter server extension: the realm REST API and the Weaver.

Enabled by jupyter-config/jupyter_server_config.d/realm_kernel.json (`realm play` puts
it on JUPYTER_CONFIG_PATH), or by hand:
    jupyter lab --ServerApp.jpserver_extensions="{'realm_kernel.server': True}"
"""

from __future__ import annotations

import atexit
import sys

from ..api import Realm
from ..services.exposure import ExposureError, exposure, refuse_without_login
from ..services.weaver import Weaver, enabled
from ..store.paths import RealmPaths
from .away_handlers import handlers as away_handlers
from .handlers import handlers
from .interrupt import stop_in_order_on_ctrl_c
from .oracle_handlers import handlers as oracle_handlers
from .skill_handlers import handlers as skill_handlers


def routes(base_url: str) -> list[tuple[str, type]]:
    """Every route the extension mounts, as tornado handler specs: the one list the server
    registers and the route-auth tests walk (tests/server/test_route_auth.py)."""
    return [*handlers(base_url), *oracle_handlers(base_url), *skill_handlers(base_url),
            *away_handlers(base_url)]


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "realm_kernel.server"}]


def check_exposure(serverapp) -> None:
    """The server's final options (command line, config files, environment: whatever
    set them) decide: beyond loopback, or open to other hosts' origins, only with a
    login (a token or a password). Extensions load before the port is bound."""
    why = [] if serverapp.sock else exposure(serverapp.ip, [serverapp.allow_origin] if
                                             serverapp.allow_origin else [],
                                             serverapp.allow_origin_pat)
    refuse_without_login("the realm's Jupyter server", why,
                         serverapp.identity_provider.auth_enabled,
                         "set a token (JUPYTER_TOKEN) or a password")


def _load_jupyter_server_extension(serverapp) -> None:
    try:
        check_exposure(serverapp)
    except ExposureError as e:
        # SystemExit, not an exception: Jupyter logs an extension's exception and serves on.
        serverapp.log.critical("%s", e)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    paths = RealmPaths.at().ensure()
    realm = Realm(paths.home, writer="server")
    realm.ledger.ensure_views()
    web_app = serverapp.web_app
    web_app.settings["realm"] = realm
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    weaver = None
    if enabled():
        weaver = Weaver(paths, serverapp.log, ledger=realm.ledger)
        web_app.settings["realm_weaver"] = weaver
        weaver.start()
        atexit.register(weaver.stop)
    stop_in_order_on_ctrl_c(serverapp, weaver)
    if not serverapp.sock:  # a unix socket is no URL for the other processes: they keep their own pools
        # Callbacks run in order: this one queues the advertisement behind the port's bind.
        serverapp.io_loop.add_callback(serverapp.io_loop.add_callback, _serve_oracle, serverapp, realm)
        atexit.register(realm.oracle.stop_serving)
    serverapp.log.info("Realm of Training: API at /realm/api, home %s", paths.home)


def oracle_url(serverapp) -> str:
    """Where the other processes of this machine reach this server: loopback when it
    listens on every address or on localhost, else the address it listens on."""
    ip = serverapp.ip
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "*", "localhost", "127.0.0.1") else (
        "[::1]" if ip == "::" else f"[{ip}]" if ":" in ip else ip)
    scheme = "https" if serverapp.certfile else "http"
    return f"{scheme}://{host}:{serverapp.port}{serverapp.base_url.rstrip('/')}"


def _serve_oracle(serverapp, realm: Realm) -> None:
    """The realm's one Oracle pool lives here (see realm_kernel/oracle/client.py), unless
    another live server already owns it."""
    try:
        out = realm.oracle.serve(oracle_url(serverapp), serverapp.identity_provider.token or None)
    except OSError as e:
        serverapp.log.warning("Realm of Training: could not advertise the Oracle pool: %s", e)
        return
    if out["owner"]:
        serverapp.log.info("Realm of Training: the realm's Oracle pool is served here (%s)", out["url"])
    else:
        serverapp.log.info("Realm of Training: the Oracle pool of pid %s (%s) serves this realm",
                           out["pid"], out["url"])


def _unload_jupyter_server_extension(serverapp) -> None:
    realm = serverapp.web_app.settings.get("realm")
    if realm is not None:
        realm.oracle.stop_serving()
    weaver = serverapp.web_app.settings.get("realm_weaver")
    if weaver:
        weaver.stop()
