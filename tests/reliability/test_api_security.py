"""Auth and exposure, hostile REST bodies, and protected assets, on one real JupyterLab
(realm extension) beside one real daemon that has trained a few checkpoints."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from realm_kernel.api import Realm
from realm_kernel.store.status import DAEMON, read_status
from realm_kernel.store.vault import ProtectedAssetError

from ..helpers import (
    TOKEN,
    auth,
    child_env,
    free_port,
    listening_addresses,
    make_home,
    realm_routes,
    start_daemon,
    start_lab,
    wait_for,
)
from .harness import FAULT_TOML, digest

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
# Every route the extension mounts (realm_kernel.server.routes, the list the server
# registers; tests/server/test_route_auth.py checks a live app mounts exactly those).
every_route = realm_routes


@pytest.fixture(scope="module")
def realm_lab(tmp_path_factory, dio_mini_dir, module_procs):
    paths = make_home(tmp_path_factory.mktemp("realm"), dio_mini_dir, FAULT_TOML)
    realm = Realm(paths.home)
    quest = realm.quests.generate("bin", 1, 120, seed=77)
    daemon = start_daemon(module_procs, paths)
    wait_for((paths.queue("recently_completed") / quest.name).exists, 180, "the training quest")
    assert realm.sql("SELECT count(*) AS n FROM checkpoint_ledger")[0]["n"] >= 3
    _, base = start_lab(module_procs, paths, tmp_path_factory.mktemp("runtime"), root_dir=paths.home,
                        REALM_WEAVER="0")
    return paths, base, daemon


def test_every_route_refuses_without_the_token_or_with_a_wrong_one(realm_lab):
    paths, base, _ = realm_lab
    routes = every_route()
    assert len(routes) >= 30, routes
    for method, route in routes:
        for headers in ({}, auth("wrong-token"), {"Authorization": "token "},
                        {"Cookie": "username-127-0-0-1=forged"}):
            r = requests.request(method, f"{base}/realm/api/{route}", headers=headers,
                                 json={"action": "pause", "step": 1, "message": "hi"}, timeout=30)
            assert r.status_code == 403, (method, route, headers, r.status_code, r.text[:200])
    assert not paths.control_file("pause").exists(), "a refused request changes nothing"
    print(f"\nauth: {len(routes)} routes x 4 bad credentials refused")


def test_cookie_sessions_need_xsrf_on_every_mutating_route(realm_lab):
    """A browser session (Jupyter's login cookie) may read, but every POST/PATCH/DELETE
    without the XSRF token is refused, as Jupyter applies it; with it, it works."""
    paths, base, _ = realm_lab
    s = requests.Session()
    assert s.get(f"{base}/lab?token={TOKEN}", timeout=30).ok
    assert "_xsrf" in s.cookies
    assert s.get(f"{base}/realm/api/training/status", timeout=30).status_code == 200
    mutating = [(m, r) for m, r in every_route() if m != "GET"]
    for method, route in mutating:
        r = s.request(method, f"{base}/realm/api/{route}", json={"action": "pause"}, timeout=30)
        assert r.status_code == 403, (method, route, r.status_code, r.text[:200])
        assert "xsrf" in r.text.lower(), (method, route, r.text[:200])
    assert not paths.control_file("pause").exists()
    ok = s.post(f"{base}/realm/api/training/control", json={"action": "pause"},
                headers={"X-XSRFToken": s.cookies["_xsrf"]}, timeout=30)
    assert ok.status_code == 200 and paths.control_file("pause").exists()
    s.post(f"{base}/realm/api/training/control", json={"action": "resume"},
           headers={"X-XSRFToken": s.cookies["_xsrf"]}, timeout=30)
    print(f"\nxsrf: {len(mutating)} mutating routes refused without the XSRF token")


GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hello"}]}) + "\n"
BIG = 10 ** 30
# (method, route, request kwargs, expected status, fragment of the error)
API_CASES = [
    ("POST", "training/control", {"data": b"[1, 2]"}, 400, "must be a JSON object"),
    ("POST", "training/control", {"data": b"\xff\xfe not json"}, 400, "not JSON"),
    ("POST", "training/control", {"json": {"action": ["pause"]}}, 400, "action"),
    ("POST", "training/control", {"json": {"action": "explode"}}, 400, "unknown action"),
    ("POST", "training/queue", {"json": {"name": "../../escape.jsonl", "content": GOOD}}, 400,
     "unsafe file name"),
    ("POST", "training/queue", {"json": {"name": "/tmp/abs.jsonl", "content": GOOD}}, 400,
     "unsafe file name"),
    ("POST", "training/queue", {"json": {"name": "a;b.jsonl", "content": GOOD}}, 400, "unsafe"),
    ("POST", "training/queue", {"json": {"name": "ok.jsonl", "content": 5}}, 400, "'content' as str"),
    ("POST", "training/queue", {"json": {"name": "ok.jsonl", "content": GOOD, "priority": "urgent"}},
     400, "unknown priority 'urgent'"),
    ("POST", "training/queue", {"json": {"name": "bad.jsonl", "content": "{oops\n"}}, 400,
     "invalid JSON"),
    ("POST", "training/queue", {"files": {"file": ("../evil.jsonl", GOOD.encode())}}, 400, "unsafe"),
    ("POST", "training/queue", {"files": {"file": ("bin.jsonl", b"\x00\xff" * 50)}}, 400,
     "not UTF-8"),
    ("PATCH", "training/queue/nothing.jsonl", {"json": {"position": "first"}}, 400, "'position'"),
    ("PATCH", "training/queue/nothing.jsonl", {"json": {"priority": 3}}, 400, "'priority'"),
    ("PATCH", "training/queue/nothing.jsonl", {"json": {}}, 400, "needs 'priority'"),
    ("DELETE", "training/queue/..%2F..%2Frealm.toml", {}, 404, "no quest named"),
    ("GET", "ledger/-1", {}, 400, "step must be a non-negative integer"),
    ("GET", f"ledger/{BIG}", {}, 400, "step must be a non-negative integer"),
    ("GET", "ledger/%D9%A3", {}, 400, "step must be a non-negative integer"),  # '٣'
    ("GET", "ledger?limit=-3", {}, 400, "limit"),
    ("GET", "ledger?limit=%C2%B2", {}, 400, "limit must be"),  # '²'
    ("GET", f"ledger?limit={BIG}", {}, 400, "limit must be"),
    ("GET", "ledger/best?metric=vibes", {}, 400, "metric must be one of"),
    ("DELETE", "checkpoints/-5", {}, 400, "non-negative integer"),
    ("DELETE", "checkpoints/abc", {}, 400, "non-negative integer"),
    ("DELETE", f"checkpoints/{BIG}", {}, 400, "non-negative integer"),
    ("DELETE", "checkpoints/7", {}, 404, "no checkpoint at step 7"),
    ("POST", "checkpoints/10/export", {"json": {"name": "../../escape"}}, 400, "bad export name"),
    ("POST", "champion", {"json": {"step": True}}, 400, "step"),
    ("POST", "champion", {"json": {"step": -3}}, 404, "no checkpoint at step -3"),
    ("POST", "champion", {"json": {"step": BIG}}, 400, "out of range"),
    ("POST", "champion", {"json": {"step": "\u0663"}}, 404, "no checkpoint at step"),
    ("POST", "retention", {"json": {"dry_run": "no"}}, 400, "dry_run must be true or false"),
    ("POST", "register", {"json": {"path": "../../etc/passwd"}}, 400, "stay inside"),
    ("POST", "register", {"json": {"path": "/etc/passwd"}}, 400, "refused: it is outside"),
    ("POST", "register", {"json": {"path": "%2e%2e/%2e%2e/etc/passwd"}}, 400, "URL-encoded"),
    ("POST", "register", {"json": {"path": "~/.ssh/id_rsa"}}, 400, "'~'"),
    ("POST", "register", {"json": {"path": "models/x\u0000y"}}, 400, "NUL byte"),
    ("POST", "register", {"json": {"path": "link-out/passwd"}}, 400, "outside through a symlink"),
    ("POST", "checkpoints/10/export", {"json": {"name": "%2e%2e"}}, 400, "bad export name"),
    ("POST", "register", {"json": {"path": 5}}, 400, "'path' as str"),
    ("POST", "fetch", {"json": {"asset_id": "../x"}}, 400, "bad asset id"),
    ("POST", "zones", {"json": {"zone_id": "a/b", "url": "/tmp"}}, 400, "bad zone id"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "relative/dir"}}, 400, "absolute folder"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "/"}}, 400, "file system's root"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "file:///"}}, 400, "file system's root"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "webhdfs://127.0.0.1:9/x"}}, 400,
     "scheme 'webhdfs' is not allowed"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "http://127.0.0.1:9/x"}}, 400,
     "scheme 'http' is not allowed"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "/tmp/%2e%2e/x"}}, 400, "URL-encoded"),
    ("POST", "zones", {"json": {"zone_id": "nas", "url": "/tmp/realm-zone"}}, 400,
     "added by a person"),
    ("GET", "search?type=weapon", {}, 400, "type must be one of"),
    ("POST", "oracle/chat", {"json": {"step": -1, "message": "hi"}}, 400, "step must be"),
    ("POST", "oracle/chat", {"json": {"step": "abc", "message": "hi"}}, 400, "step must be an integer"),
    ("POST", "oracle/chat", {"json": {"step": 0, "messages": "not a list"}}, 400, "`messages`"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "x" * 300_000}}, 400,
     "over the Oracle's limit"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "max_new_tokens": -1}}, 400,
     "out of range"),
    ("POST", "oracle/chat", {"json": {"step": 10 ** 18, "message": "hi"}}, 404, "not loaded"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "temperature": "nan"}}, 400,
     "temperature must be a finite number"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "repetition_penalty": 1e308}},
     400, "out of range"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "max_new_tokens": 3.5}}, 400,
     "max_new_tokens must be a whole number"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "max_new_tokens": "\u0663"}},
     400, "max_new_tokens must be a whole number"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "top_k": True}}, 400,
     "top_k must be a whole number"),
    ("POST", "oracle/chat", {"json": {"step": 0, "message": "hi", "temprature": 0.5}}, 400,
     "unknown field(s) ['temprature']"),
    ("POST", "oracle/load", {"json": {"step": 0, "hots": "local"}}, 400, "unknown field(s) ['hots']"),
    ("POST", "oracle/v1/chat/completions", {"json": {"model": "x", "messages": [], "max_tokens": 2.5}},
     400, "max_new_tokens must be a whole number"),
    ("POST", "oracle/v1/chat/completions", {"json": {"model": "x", "messages": [],
                                                      "temperature": "inf"}}, 400, "temperature"),
    ("POST", "oracle/v1/chat/completions", {"json": {"model": "x", "messages": [],
                                                      "stream_options": [1]}}, 400, "stream_options"),
    ("POST", "oracle/load", {"json": {"step": -1}}, 400, "step must be"),
    ("POST", "oracle/v1/chat/completions", {"json": {"model": 5, "messages": []}}, 400, "model"),
]


def test_hostile_api_bodies_get_a_4xx_naming_the_problem(realm_lab, capsys):
    paths, base, daemon = realm_lab
    (paths.home / "link-out").symlink_to("/etc")  # a link inside the home that leads out
    home_before = sorted(p.name for p in paths.home.parent.iterdir())
    for method, route, kwargs, status, fragment in API_CASES:
        r = requests.request(method, f"{base}/realm/api/{route}", headers=auth(), timeout=60, **kwargs)
        assert r.status_code == status, (method, route, r.status_code, r.text[:300])
        body = r.json()
        text = json.dumps(body)
        # Our routes answer {"ok": false, "error"}; the OpenAI-compatible one {"error": {...}}.
        assert (body.get("ok") is False or "error" in body) and fragment in text, (route, text[:300])
    # The server and the daemon are still there and nothing escaped the realm home.
    assert requests.get(f"{base}/realm/api/health", headers=auth(), timeout=30).ok
    assert daemon.poll() is None and read_status(paths, DAEMON)["pid"] == daemon.pid
    assert sorted(p.name for p in paths.home.parent.iterdir()) == home_before
    assert not (paths.home.parent / "escape.jsonl").exists() and not list(paths.inbox.glob("*.jsonl"))
    with capsys.disabled():
        print(f"\nhostile API bodies: {len(API_CASES)} tried, {len(API_CASES)} refused with a 4xx")


DEEP = 10_000
# Every malformed class of JSON body: (what, raw body, a fragment of the error; "" = any).
BODY_CLASSES = [
    ("10,000 nested lists", b"[" * DEEP + b"]" * DEEP, "nested too deeply"),
    ("10,000 nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nested too deeply"),
    ("200 nested objects", b'{"a":' * 200 + b"1" + b"}" * 200, "nested too deeply"),
    ("not UTF-8", b"\xff\xfe{}", "not JSON"),
    ("truncated", b'{"step": ', "not JSON"),
    ("a list", b"[1, 2]", "must be a JSON object"),
    ("a string", b'"pause"', "must be a JSON object"),
    ("null", b"null", "must be a JSON object"),
    ("NaN", b'{"step": NaN, "temperature": NaN, "action": "pause"}', "NaN"),
    ("Infinity", b'{"repetition_penalty": Infinity, "dry_run": true}', "Infinity"),
    ("-Infinity", b'{"step": -Infinity}', "-Infinity"),
    ("a float over the double range", b'{"step": 1e400}', "out of range"),
    ("5,000 digits", b'{"step": ' + b"9" * 5000 + b"}", "out of range"),
    ("over 64 bits", b'{"step": 18446744073709551616, "position": -18446744073709551616}',
     "out of range"),
    ("every field a wrong type", json.dumps({
        "step": [1], "name": {"a": 1}, "action": 1.5, "asset_id": [], "path": {}, "zone": 7,
        "zone_id": [], "url": 1, "to_zone": [], "dry_run": "no", "priority": [], "position": "x",
        "content": 5, "message": {}, "messages": 5, "model": [], "merge": "yes", "enabled": "yes",
        "max_tokens": 1.5, "temperature": "hot", "stream_options": [1]}).encode(), ""),
]
# Every malformed class of path parameter, URL-encoded: (what, segment).
PATH_CLASSES = [
    ("an Arabic-Indic digit", "%D9%A3"),  # '٣': str.isdigit says yes, int() gives 3
    ("a superscript digit", "%C2%B2"),  # '²': str.isdigit says yes, int() fails
    ("over 64 bits", "9" * 40),
    ("negative", "-1"),
    ("a traversal", "..%2F..%2Frealm.toml"),
    ("a NUL byte", "a%00b"),
    ("not UTF-8", "%FF"),
    ("5,000 characters", "a" * 5000),
]
BODY_METHODS = ("POST", "PATCH", "PUT")


def refusal(r: requests.Response) -> str | None:
    """The error message of a 4xx JSON answer, or None when it is anything else."""
    if not 400 <= r.status_code < 500:
        return None
    try:
        body = r.json()
    except ValueError:
        return None
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) and message else None


def test_every_route_refuses_every_class_of_malformed_input_with_a_4xx(realm_lab, module_procs,
                                                                       capsys):
    """Each class of malformed body to every route that takes one, each class of malformed
    path parameter to every route that has one (both read from the route tables): a 4xx
    with a message, never a 500; the refusal is in the server log; the server answers on."""
    paths, base, daemon = realm_lab
    tried, wrong = 0, []
    body_routes = [(m, r) for m, r in every_route() if m in BODY_METHODS]
    for method, route in body_routes:
        for what, raw, fragment in BODY_CLASSES:
            r = requests.request(method, f"{base}/realm/api/{route}", data=raw, timeout=60,
                                 headers={**auth(), "Content-Type": "application/json"})
            tried += 1
            message = refusal(r)
            if message is None or fragment not in message:
                wrong.append((method, route, what, r.status_code, r.text[:160]))
    path_routes = sorted({(m, r) for m, r in every_route("{}") if "{}" in r})
    for method, route in path_routes:
        for what, segment in PATH_CLASSES:
            r = requests.request(method, f"{base}/realm/api/{route.format(segment)}", timeout=60,
                                 headers=auth(), json={} if method in BODY_METHODS else None)
            tried += 1
            if refusal(r) is None:
                wrong.append((method, route, what, r.status_code, r.text[:160]))
    with capsys.disabled():
        print(f"\nmalformed input: {tried} requests to {len(body_routes)} body routes and "
              f"{len(path_routes)} path routes; {sum(w[3] >= 500 for w in wrong)} answered 5xx, "
              f"{len(wrong)} not a 4xx with a message")
    assert not wrong, "\n".join(map(str, wrong))
    assert len(body_routes) >= 15 and len(path_routes) >= 10, (body_routes, path_routes)
    # Recorded: the server log names the route and the reason of a refusal.
    log = (module_procs.logdir / "lab.log").read_text(errors="replace")
    assert re.search(r"refused POST /realm/api/training/control \(400\): request body is nested "
                     r"too deeply", log), log[-2000:]
    # The server answers on, and a good request still works; the daemon lives.
    assert requests.get(f"{base}/realm/api/health", headers=auth(), timeout=30).json()["ok"]
    ok = requests.post(f"{base}/realm/api/retention", headers=auth(), json={"dry_run": True},
                       timeout=60)
    assert ok.status_code == 200 and ok.json()["dry_run"] is True, ok.text
    assert daemon.poll() is None


def test_champion_in_use_and_base_model_are_protected(realm_lab, tmp_path):
    paths, base, _ = realm_lab
    realm = Realm(paths.home)
    steps = [r["step"] for r in realm.sql("SELECT step FROM checkpoint_ledger ORDER BY step")]
    champion, latest = steps[0], steps[-1]
    requests.post(f"{base}/realm/api/champion", headers=auth(), json={"step": champion},
                  timeout=30).raise_for_status()
    for step, why in ((champion, "champion"), (latest, "in use")):
        r = requests.delete(f"{base}/realm/api/checkpoints/{step}", headers=auth(), timeout=30)
        assert r.status_code == 409 and why in r.json()["error"], r.text
        with pytest.raises(ProtectedAssetError, match=why):
            realm.checkpoints.delete(step)
    out = subprocess.run([sys.executable, "-m", "realm_kernel.cli", "vault", "delete", str(champion)],
                         env=child_env(paths.home), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "champion" in out.stderr
    # Retention with the tightest policy keeps both.
    from realm_kernel.store.config import RetentionConfig
    plan = realm.vault.retention(dry_run=False, policy=RetentionConfig(keep_best=0, keep_latest=1,
                                                                       keep_every=0))
    kept = {k["step"] for k in plan["keep"]}
    assert {champion, latest} <= kept and all(d["step"] not in (champion, latest)
                                              for d in plan["delete"])
    for step in (champion, latest):
        assert (paths.checkpoints / realm.checkpoints.get(step).name / ".ledger.json").exists()
    # Base models are never overwritten: not by a fetch or transfer from a zone that holds
    # another model of the same name, not by an export, not by a rebuild without --force.
    before = digest(paths.dio_mini)
    other = tmp_path / "zone"
    (other / "models" / "dio-mini").mkdir(parents=True)
    (other / "models" / "dio-mini" / "config.json").write_text('{"evil": true}')
    realm.vault.add_zone("other", str(other), confirmed=True)
    realm.vault.register("models/dio-mini", "model", zone="other")
    # The home already holds a different models/dio-mini: refused, never overwritten.
    with pytest.raises(FileExistsError, match="already holds a different 'models/dio-mini'"):
        realm.vault.fetch("model_dio-mini")
    with pytest.raises(FileExistsError, match="already holds a different 'models/dio-mini'"):
        realm.vault.transfer("model_dio-mini", "local", "other")
    r = requests.post(f"{base}/realm/api/transfer", headers=auth(), timeout=60,
                      json={"asset_id": "model_dio-mini", "to_zone": "local", "from_zone": "other"})
    assert r.status_code == 409 and "already holds a different" in r.json()["error"], r.text
    with pytest.raises(ValueError, match="refused: it is outside"):
        realm.checkpoints.export(latest, paths.models / "dio-mini")
    with pytest.raises(ValueError, match="refused: it is outside"):
        realm.checkpoints.export(latest, paths.models / "dio-mini-copy")
    r = requests.post(f"{base}/realm/api/checkpoints/{latest}/export", headers=auth(),
                      json={"name": "../models/dio-mini"}, timeout=30)
    assert r.status_code == 400
    from realm_kernel.train.dio_mini import build_dio_mini
    build_dio_mini(paths.dio_mini, seed=5)
    assert digest(paths.dio_mini) == before, "the base model is untouched"
    assert json.loads((paths.dio_mini / "config.json").read_text()).get("evil") is None


def test_panel_app_binds_loopback_and_refuses_to_expose_without_a_login(module_procs, realm_lab):
    paths, _, _ = realm_lab
    env = child_env(paths.home)
    cli = [sys.executable, "-m", "realm_kernel.cli"]
    for args in (["--address", "0.0.0.0"], ["--address", "192.168.1.5"],
                 ["--allow-websocket-origin", "evil.example:5006"]):
        out = subprocess.run([*cli, "tavern", *args], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and "without a login" in out.stderr, (args, out.stderr)
    # Default: 127.0.0.1 only.
    port = free_port()
    module_procs.start("tavern-local", [*cli, "tavern", "--port", str(port)], env)
    wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/tavern", timeout=5).ok, 120, "the Tavern")
    assert listening_addresses(port) == {"0100007F"}, listening_addresses(port)
    # Exposed with basic auth: nothing but the login page without logging in.
    port2 = free_port()
    module_procs.start("tavern-exposed", [*cli, "tavern", "--address", "0.0.0.0", "--port", str(port2),
                                          "--user", "x"], {**env, "REALM_TAVERN_PASSWORD": "s3cret-pass"})
    url = f"http://127.0.0.1:{port2}"
    wait_for(lambda: requests.get(f"{url}/login", timeout=5).ok, 120, "the exposed Tavern")
    assert listening_addresses(port2) == {"00000000"}
    r = requests.get(f"{url}/tavern", timeout=30, allow_redirects=False)
    if r.status_code == 302:  # a redirect must lead to the login page, not anywhere
        assert "login" in r.headers["Location"], r.headers.get("Location")
    else:
        assert r.status_code in (401, 403) and "Tavern" not in r.text, r.status_code
    s = requests.Session()
    bad = s.post(f"{url}/login", data={"username": "x", "password": "wrong"}, timeout=30)
    assert "Tavern" not in bad.text
    assert s.get(f"{url}/tavern", timeout=30, allow_redirects=False).status_code != 200
    good = s.post(f"{url}/login", data={"username": "x", "password": "s3cret-pass"}, timeout=30)
    page = s.get(f"{url}/tavern", timeout=60)
    assert good.ok and page.status_code == 200 and re.search(r"Tavern", page.text)
