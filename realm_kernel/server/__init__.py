"""Jupyter server extension: the realm REST API and the Weaver.

Enabled by jupyter-config/jupyter_server_config.d/realm_kernel.json (`realm play` puts
it on JUPYTER_CONFIG_PATH), or by hand:
    jupyter lab --ServerApp.jpserver_extensions="{'realm_kernel.server': True}"
"""

from __future__ import annotations

import atexit

from ..api import Realm
from ..services.weaver import Weaver, enabled
from ..store.paths import RealmPaths
from .handlers import handlers
from .oracle_handlers import handlers as oracle_handlers
from .skill_handlers import handlers as skill_handlers


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "realm_kernel.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    paths = RealmPaths.at().ensure()
    realm = Realm(paths.home, writer="server")
    realm.ledger.ensure_views()
    web_app = serverapp.web_app
    web_app.settings["realm"] = realm
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    web_app.add_handlers(".*$", oracle_handlers(web_app.settings["base_url"]))
    web_app.add_handlers(".*$", skill_handlers(web_app.settings["base_url"]))
    if enabled():
        weaver = Weaver(paths, serverapp.log, ledger=realm.ledger)
        web_app.settings["realm_weaver"] = weaver
        weaver.start()
        atexit.register(weaver.stop)
    serverapp.log.info("Realm of Training: API at /realm/api, home %s", paths.home)


def _unload_jupyter_server_extension(serverapp) -> None:
    weaver = serverapp.web_app.settings.get("realm_weaver")
    if weaver:
        weaver.stop()
