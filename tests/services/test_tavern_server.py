"""`realm tavern`'s server options, parsed and checked once (services/tavern_server.py):
what each option and secret becomes, what `check` fills in, what the app is told; the
refusals of real commands are in test_exposure.py."""

from __future__ import annotations

import getpass
import importlib.util
import json
import sys

import pytest

from realm_kernel.services.tavern_server import ENV, ExposureError, TavernServer, parse

SECRETS = ("REALM_TAVERN_PASSWORD", "REALM_TAVERN_OAUTH_SECRET", "REALM_TAVERN_COOKIE_SECRET")


@pytest.fixture
def no_secrets(monkeypatch):
    for var in SECRETS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_every_option_lands_in_its_field_and_secrets_come_from_the_environment(no_secrets):
    assert parse([]) == TavernServer()
    assert TavernServer() == TavernServer("127.0.0.1", 5006, None, None, None, None, None, None, None, [])
    full = parse(["--address", "0.0.0.0", "--port", "7000", "--allow-websocket-origin", "a.example:7000",
                  "--allow-websocket-origin", "b.example:7000", "--basic-auth", "users.json", "--user", "ann",
                  "--oauth-provider", "github", "--oauth-key", "key", "--oauth-redirect-uri", "https://r"])
    assert full == TavernServer("0.0.0.0", 7000, "users.json", "ann", "github", "key", None, "https://r",
                                None, ["a.example:7000", "b.example:7000"])
    no_secrets.setenv("REALM_TAVERN_PASSWORD", "pw")
    no_secrets.setenv("REALM_TAVERN_OAUTH_SECRET", "oauth-s")
    no_secrets.setenv("REALM_TAVERN_COOKIE_SECRET", "cookie-s")
    env = parse(["--port", "7001"])
    assert (env.basic_auth, env.oauth_secret, env.cookie_secret) == ("pw", "oauth-s", "cookie-s")
    assert env.port == 7001
    assert parse(["--basic-auth", "given"]).basic_auth == "given", "an option given wins"
    for secret in (["--oauth-secret", "s"], ["--cookie-secret", "s"], ["--port", "many"]):
        with pytest.raises(SystemExit) as e:
            parse(secret)
        assert e.value.code == 2, secret


def test_check_fills_in_the_login_and_describes_the_server(tmp_path):
    local = TavernServer()
    assert local.check() is local and not local.has_login
    assert local.describe() == "http://127.0.0.1:5006/ (no login: this machine only)"
    assert local.origins() == ["127.0.0.1:5006", "localhost:5006", "127.0.0.1:5006"]
    assert TavernServer(allow_websocket_origin=["x:1"]).origins() == ["x:1"]
    pw = TavernServer(address="0.0.0.0", basic_auth="pw").check()
    assert pw.user == getpass.getuser() and len(pw.cookie_secret) == 64
    assert pw.describe() == f"http://0.0.0.0:5006/ (basic auth, user {getpass.getuser()})"
    assert TavernServer(basic_auth="pw", user="ann", cookie_secret="c").check() == TavernServer(
        basic_auth="pw", user="ann", cookie_secret="c")
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ann": "pw"}))
    from_file = TavernServer(address="0.0.0.0", basic_auth=str(users)).check()
    assert from_file.user is None and from_file.describe() == "http://0.0.0.0:5006/ (basic auth, users file)"
    oauth = TavernServer(address="0.0.0.0", oauth_provider="github").check()
    assert oauth.user is None and oauth.cookie_secret
    assert oauth.describe() == "http://0.0.0.0:5006/ (OAuth (github))"
    with pytest.raises(ExposureError) as e:
        TavernServer(address="10.0.0.7", allow_websocket_origin=["evil.example:1"]).check()
    assert str(e.value) == (
        "refusing to expose the Tavern (address 10.0.0.7, origin evil.example:1) without a login: "
        "add --basic-auth PASSWORD (or a users JSON file) or --oauth-provider NAME; see docs/reliability.md")


def test_the_app_takes_the_checked_server_out_of_its_environment():
    checked = TavernServer(address="0.0.0.0", basic_auth="pw").check()
    cmd, env = checked.launch()
    assert cmd == [sys.executable, "-m", "realm_widgets.app"] and importlib.util.find_spec(cmd[2])
    assert json.loads(env[ENV])["cookie_secret"] == checked.cookie_secret
    env["unrelated"] = "kept"
    assert TavernServer.from_env(env) == checked
    assert ENV not in env and env["unrelated"] == "kept", "popped: no child of the app inherits it"
    assert TavernServer.from_env(env) is None, "started by hand: nothing to take"
    later = {ENV: json.dumps({"address": "127.0.0.1", "port": 5007, "a_newer_field": 1})}
    assert TavernServer.from_env(later) == TavernServer(port=5007)
    with pytest.raises(ExposureError):
        TavernServer.from_env({ENV: json.dumps({"address": "0.0.0.0"})})
