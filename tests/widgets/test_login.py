"""The Tavern's password login on a real `realm tavern` (127.0.0.1, real HTTP): it names a
user, refuses a cross-origin POST, throttles a guessing client, and the password and
cookie secret never appear in the server's process arguments (issue 27, items 6 and 7)."""

from __future__ import annotations

import hmac
import sys
from pathlib import Path

import pytest
import requests

from realm_widgets.login import FREE_FAILURES, MAX_WAIT_S, Throttle, credentials, valid

from ..helpers import Procs, child_env, free_port, wait_for

SLOW = pytest.mark.slow  # the tests with a real `realm tavern`; the rest take no server
PASSWORD = "a long passphrase 4d1c"
COOKIE_SECRET = "cookie-secret-93be" * 3
USER = "alice"


@pytest.fixture(scope="module")
def tavern(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tavern-login")
    procs = Procs(tmp)
    port = free_port()
    env = {**child_env(tmp / "home"), "REALM_TAVERN_PASSWORD": PASSWORD,
           "REALM_TAVERN_COOKIE_SECRET": COOKIE_SECRET}
    proc = procs.start("tavern", [sys.executable, "-m", "realm_kernel.cli", "tavern",
                                  "--port", str(port), "--user", USER], env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/login", timeout=5).ok, 120, "the Tavern's login page")
    yield proc, base
    procs.stop_all()


def login(base: str, user: str = USER, password: str = PASSWORD, **headers: str):
    s = requests.Session()
    r = s.post(f"{base}/login", data={"username": user, "password": password},
               headers=headers, allow_redirects=False, timeout=30)
    return s, r


def logged_in(s: requests.Session, base: str) -> bool:
    r = s.get(f"{base}/tavern", allow_redirects=False, timeout=60)
    return r.status_code == 200


@SLOW
def test_no_secret_in_the_servers_arguments(tavern):
    proc, _ = tavern
    argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"realm_widgets.app" in b" ".join(argv), argv  # the Panel app itself (exec'd)
    joined = b"\0".join(argv)
    assert PASSWORD.encode() not in joined and COOKIE_SECRET.encode() not in joined, argv
    # The secret reached it all the same: the password logs in.
    s, r = login(tavern[1])
    assert r.status_code == 302 and logged_in(s, tavern[1])


@SLOW
def test_the_login_names_its_user(tavern):
    _, base = tavern
    assert not logged_in(requests.Session(), base)
    for user in ("", "x", "admin", USER.upper()):
        s, r = login(base, user=user)
        assert r.status_code == 401 and "user" not in s.cookies, user
        assert not logged_in(s, base)
    s, r = login(base)
    assert r.status_code == 302 and "user" in s.cookies and logged_in(s, base)


@SLOW
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"},
                                     {"Origin": "null"},
                                     {"Referer": "http://evil.example/page"},
                                     {"Origin": "http://127.0.0.1:1"}])
def test_a_cross_origin_login_post_is_refused(tavern, headers):
    _, base = tavern
    s, r = login(base, **headers)
    assert r.status_code == 403 and "another site" in r.text
    assert "user" not in s.cookies and "Set-Cookie" not in r.headers
    # The same form from the Tavern's own page logs in.
    s, r = login(base, Origin=base, Referer=f"{base}/login")
    assert r.status_code == 302 and logged_in(s, base)


@SLOW
def test_a_guessing_client_must_wait_even_with_the_right_password(tavern):
    _, base = tavern
    login(base)  # a success clears this client's failures
    for _ in range(FREE_FAILURES):
        assert login(base, password="wrong")[1].status_code == 401
    s, r = login(base)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.status_code
    assert "try again" in r.text and "user" not in s.cookies


def test_the_throttle_doubles_the_wait_up_to_a_cap_and_a_success_clears_it():
    now = [0.0]
    t = Throttle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES - 1):
        t.failed("a")
    assert t.wait_s("a") == 0
    t.failed("a")
    assert t.wait_s("a") == 1.0 and t.wait_s("b") == 0  # per client
    now[0] += 1.0
    t.failed("a")
    assert t.wait_s("a") == 2.0
    for _ in range(20):
        t.failed("a")
    assert t.wait_s("a") == MAX_WAIT_S
    t.succeeded("a")
    assert t.wait_s("a") == 0


def test_passwords_are_compared_in_constant_time(monkeypatch, tmp_path):
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    users = credentials("pw", "alice")
    assert users == {"alice": "pw"}
    assert valid(users, "alice", "pw") and not valid(users, "alice", "pX")
    assert not valid(users, "bob", "pw")  # an unknown user is compared too
    assert len(seen) == 3 and seen[0] == (b"pw", b"pw")
    users_file = tmp_path / "users.json"
    users_file.write_text('{"ann": "one", "ben": "two"}')
    assert credentials(str(users_file), None) == {"ann": "one", "ben": "two"}
    with pytest.raises(ValueError, match="needs a user name"):
        credentials("pw", None)
