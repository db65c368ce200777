"""Route auth in seconds, on a real Jupyter server run in this process with the realm
extension loaded: every route its router holds under /realm/api, read from the app
itself (so a route table mounted later cannot be left out), refuses a request without
the token or with a wrong one, and the Oracle answers 404 for a step it does not hold.
The same server as a subprocess, with every route's effects, is test_api_security.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from realm_kernel.server import routes
from realm_kernel.store.paths import RealmPaths

from ..helpers import TEST_TOML, TOKEN, realm_routes
from .in_process import ONLY_REALM, close_event_loop, fresh_event_loop

BODY = json.dumps({"action": "pause", "step": 1, "message": "hi"})


def rules_of(router) -> Iterator[tuple[str, type]]:
    """(path regex, handler class) of every rule a tornado router holds, nested routers
    (Jupyter's host rules) walked through."""
    for rule in router.rules:
        if hasattr(rule.target, "rules"):
            yield from rules_of(rule.target)
        elif hasattr(rule.matcher, "regex"):
            yield rule.matcher.regex.pattern, rule.target


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from jupyter_server.serverapp import ServerApp
    tmp = tmp_path_factory.mktemp("route-auth")
    paths = RealmPaths.at(tmp / "realm").ensure()  # no model: nothing here loads one
    paths.config_file.write_text(TEST_TOML)
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_PATH", "config-path")):
            mp.setenv(var, str(tmp / sub))
        mp.setenv("REALM_HOME", str(paths.home))
        mp.setenv("REALM_WEAVER", "0")  # no daemon: only the routes are under test
        mp.setenv("JUPYTER_TOKEN", TOKEN)  # never an argument
        loop = fresh_event_loop()  # never a loop an earlier server left (in_process.py says why)
        app = ServerApp()
        app.initialize(argv=["--ip=127.0.0.1", "--port=0", "--no-browser", "--allow-root",
                             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={paths.home}",
                             f"--ServerApp.jpserver_extensions={ONLY_REALM!r}"])
        try:
            yield app, paths
        finally:
            app.http_server.stop()
            app.io_loop.run_sync(app.cleanup_extensions)
            close_event_loop(loop)


def request(app, method: str, route: str, token: str | None, body: str | None = BODY):
    async def go():
        headers = {"Authorization": f"token {token}"} if token is not None else {}
        return await AsyncHTTPClient().fetch(HTTPRequest(
            f"http://127.0.0.1:{app.port}{app.base_url}realm/api/{route}", method=method, headers=headers,
            body=body if method in ("POST", "PUT", "PATCH") else None, follow_redirects=False),
            raise_error=False)
    return app.io_loop.run_sync(go, timeout=60)


def mounted(app) -> list[tuple[str, type]]:
    return [(p, h) for p, h in rules_of(app.web_app.default_router) if "/realm/api/" in p]


def test_the_app_mounts_exactly_the_routes_the_extension_lists(server):
    app, _ = server
    live = {(p.removesuffix("$"), h) for p, h in mounted(app)}
    listed = {(p, h) for p, h in routes(app.base_url)}
    assert live == listed
    tables = {h.__module__ for _, h in live}
    assert tables == {"realm_kernel.server.handlers", "realm_kernel.server.oracle_handlers",
                      "realm_kernel.server.skill_handlers", "realm_kernel.server.away_handlers"}


def test_every_mounted_route_refuses_without_the_token_or_with_a_wrong_one(server):
    app, paths = server
    every = realm_routes(specs=mounted(app))
    assert len(every) >= 40 and any(r.startswith("skills") for _, r in every), every
    for method, route in every:
        for token in (None, "wrong-token", ""):
            r = request(app, method, route, token)
            assert r.code == 403, (method, route, token, r.code, r.body[:200])
    assert not paths.control_file("pause").exists(), "a refused request changes nothing"
    # The same server answers the right token: the 403s above are its auth, not a dead route.
    ok = request(app, "GET", "health", TOKEN)
    assert ok.code == 200 and json.loads(ok.body)["home"] == str(paths.home)


def test_the_oracle_answers_404_for_a_step_it_does_not_hold(server):
    app, _ = server
    missing = request(app, "POST", "oracle/chat", TOKEN, json.dumps({"message": "hi", "step": 20}))
    assert missing.code == 404, missing.body
    body = json.loads(missing.body)
    assert body["loaded"] == [] and "Step 20 not loaded" in body["error"] and body["kind"] == "ModelNotLoaded"
    unknown = request(app, "POST", "oracle/load", TOKEN, json.dumps({"step": 25}))
    assert unknown.code == 404 and json.loads(unknown.body)["kind"] == "UnknownCheckpoint", unknown.body
    assert request(app, "POST", "oracle/chat", TOKEN, json.dumps({"message": "hi"})).code == 400


def test_training_status_is_valid_json_with_a_broken_realm_toml(server):
    """Fast twin of test_server.py's slow check: a bad realm.toml never breaks the API."""
    app, paths = server
    good = paths.config_file.read_text()
    paths.config_file.write_text("[training]\nbatch_size = -1\n")
    try:
        r = request(app, "GET", "training/status", TOKEN)
        assert r.code == 200 and json.loads(r.body)["hero"]["name"] == "DIO", r.body[:300]
    finally:
        paths.config_file.write_text(good)


def test_notable_events_name_what_a_bad_kinds_query_lacks(server):
    """A Tavern away from its trainer reads the toasts' events by kind; a query without
    kinds (or with too many) is a 400 saying so, one with kinds answers them."""
    app, _ = server
    for query in ("", "?kinds=", "?kinds=" + ",".join(f"k{i}" for i in range(33))):
        r = request(app, "GET", f"events/notable{query}", TOKEN)
        assert r.code == 400 and "kinds" in json.loads(r.body)["error"], (query, r.body[:200])
    r = request(app, "GET", "events/notable?kinds=champion,achievement", TOKEN)
    assert r.code == 200 and json.loads(r.body) == {"events": []}
