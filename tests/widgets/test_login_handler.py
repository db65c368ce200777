"""The Tavern's login handler (widgets/login.py) in this process, on a tornado server on
127.0.0.1 with real HTTP: a fast twin of test_login.py's server tests. A wrong password is
a 401 naming the failure; after FREE_FAILURES of them the client must wait (429, with
Retry-After) even with the right password; a right one after the wait logs in (the session
cookie, a redirect) and clears the count; a POST from another site's page is refused. The
throttle's clock is the test's, so no test waits for real time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import requests

from realm_widgets.login import FREE_FAILURES, RealmLoginProvider, Throttle

PASSWORD = "a long passphrase 77e1"


@pytest.fixture
def server() -> Iterator[tuple[str, type, list[float]]]:
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application
    handler = RealmLoginProvider({"alice": PASSWORD}).login_handler
    now = [100.0]
    handler.throttle = Throttle(clock=lambda: now[0])
    box: dict = {}
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sockets = bind_sockets(0, "127.0.0.1")
        http = HTTPServer(Application([(r"/login", handler)], cookie_secret="s" * 48))
        http.add_sockets(sockets)
        box.update(loop=loop, http=http, port=sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        http.stop()
        loop.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(60), "the login server started"
    yield f"http://127.0.0.1:{box['port']}", handler, now
    box["loop"].call_soon_threadsafe(box["loop"].stop)
    thread.join(60)


def post(base: str, password: str, user: str = "alice", **headers: str) -> requests.Response:
    return requests.post(f"{base}/login", data={"username": user, "password": password}, headers=headers,
                         allow_redirects=False, timeout=30)


def test_wrong_passwords_then_a_wait_then_a_login(server):
    base, handler, now = server
    r = post(base, "wrong")
    assert r.status_code == 401 and "Invalid username or password!" in r.text and "user" not in r.cookies
    for _ in range(FREE_FAILURES - 1):
        assert post(base, "wrong").status_code == 401
    # FREE_FAILURES failures: one second to wait, the right password refused meanwhile.
    r = post(base, PASSWORD)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2", (r.status_code, r.headers)
    assert r.text == "too many failed logins from 127.0.0.1: try again in 2 s"
    assert "user" not in r.cookies
    now[0] += 1.0  # the wait is over
    r = post(base, PASSWORD)
    assert r.status_code == 302 and "user" in r.cookies, (r.status_code, r.text)
    assert handler.throttle.wait_s("127.0.0.1") == 0
    # The count started again: one more failure is a 401, not a wait.
    assert post(base, "wrong").status_code == 401 and post(base, "wrong").status_code == 401


def test_an_unknown_user_is_refused_like_a_wrong_password(server):
    base, _, _ = server
    r = post(base, PASSWORD, user="mallory")
    assert r.status_code == 401 and "Invalid username or password!" in r.text


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Referer": "http://evil.example/tavern"}])
def test_a_post_from_another_sites_page_is_refused(server, headers):
    base, _, _ = server
    r = post(base, PASSWORD, **headers)
    assert r.status_code == 403 and r.text == "login refused: the form was posted from another site"
    assert "user" not in r.cookies


@pytest.mark.parametrize("header", ["Origin", "Referer"])
def test_a_post_from_its_own_page_logs_in(server, header):
    base, _, _ = server
    r = post(base, PASSWORD, **{header: f"{base}/login".upper().replace("HTTP://", "http://")})
    assert r.status_code == 302 and "user" in r.cookies


def test_a_post_without_a_password_is_a_wrong_password(server):
    base, _, _ = server
    r = requests.post(f"{base}/login", data={"username": "alice"}, allow_redirects=False, timeout=30)
    assert r.status_code == 401 and "Invalid username or password!" in r.text
