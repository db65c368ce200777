"""What the Oracle's clients put on the wire and make of what comes back, against a small
HTTP server on 127.0.0.1 that records each request and answers as the test says: the
pool owner's client and a realm inference host ask the owner for its own pool alone
(`?host=local`, never its remote hosts), a silent owner's status gives up after the
status timeout (not the 10-minute work timeout), an unreachable realm host's status
says so field by field, a realm host answering for another step is refused by name, and
an OpenAI host's refusal is quoted up to 300 characters. A stalled reply waits on an
event the test sets at its end, never on a sleep."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from realm_kernel.oracle import client, realm_host
from realm_kernel.oracle.client import OracleApiClient, OwnerUnreachable
from realm_kernel.oracle.pool import RemoteError, Sampling
from realm_kernel.oracle.realm_host import RealmOracleHost
from realm_kernel.oracle.remote import RemoteOracle

CALL_BOUND_S = 30  # a call the status timeout bounds comes back long before this
STALL = "stall"  # a route that accepts the request and answers nothing until the test ends


class Recorder:
    """A real HTTP server on 127.0.0.1: each request recorded as (method, path, query,
    headers, body); each answered from `routes` {path: (status, JSON body or text)}."""

    def __init__(self, routes: dict) -> None:
        self.routes, self.requests, self.release = routes, [], threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the test reads `requests`
                pass

            def answer(self) -> None:
                url = urlsplit(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size).decode() if size else ""
                recorder.requests.append((self.command, url.path, parse_qs(url.query),
                                          dict(self.headers), body))
                route = recorder.routes.get(url.path, (404, {"error": "no such route"}))
                if route == STALL:
                    recorder.release.wait(120)
                    return
                status, payload = route
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def recording(routes: dict) -> Iterator[Recorder]:
    rec = Recorder(routes)
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        rec.server.shutdown()
        rec.server.server_close()


def call_bounded(fn):
    """fn() on a thread: its result, or its exception raised here; fails when it has not
    come back within CALL_BOUND_S (a caller left hanging)."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(CALL_BOUND_S)
    assert not t.is_alive(), f"the call did not come back within {CALL_BOUND_S} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


POOL = {"host": "local", "steps": [3], "loaded_models": [{"step": 3, "model": "checkpoint-3"}]}


def test_the_owners_client_asks_for_its_own_pool_alone_and_gives_up_on_a_silent_one(monkeypatch):
    with recording({"/realm/api/oracle/status": (200, {"hosts": {"local": POOL, "gpu": {}}})}) as rec:
        api = OracleApiClient(f"{rec.url}/realm/api", "tok", "the owner", hop=True)
        assert api.local_status() == POOL
        method, path, query, headers, _ = rec.requests[-1]
        assert (method, path, query) == ("GET", "/realm/api/oracle/status", {"host": ["local"]})
        assert headers["Authorization"] == "token tok" and headers[client.HOP_HEADER]

    monkeypatch.setattr(client, "STATUS_TIMEOUT", 0.5)
    with recording({"/realm/api/oracle/status": STALL}) as rec:
        api = OracleApiClient(f"{rec.url}/realm/api", None, "the silent owner", hop=True)
        with pytest.raises(OwnerUnreachable, match="the silent owner did not answer"):
            call_bounded(api.local_status)


def test_a_realm_host_reports_what_it_holds_and_refuses_another_step(monkeypatch):
    def name_of(step: int) -> str:
        return f"checkpoint-{step}"

    with recording({"/realm/api/oracle/status": (200, {"hosts": {"local": POOL}}),
                    "/realm/api/oracle/load": (200, {"step": 7, "model": "checkpoint-7"})}) as rec:
        host = RealmOracleHost("lab", f"{rec.url}/realm/api", name_of)
        assert host.status() == {"host": "lab", "url": f"{rec.url}/realm/api", "kind": "realm",
                                 "reachable": True, "loaded_models": POOL["loaded_models"],
                                 "model_count": 1, "steps": [3]}
        assert rec.requests[-1][2] == {"host": ["local"]}
        with pytest.raises(RemoteError) as refused:
            host.load(5)
        assert str(refused.value) == ("host lab answered with 'checkpoint-7' (step 7), not "
                                      "'checkpoint-5' (step 5): refused")

    monkeypatch.setattr(realm_host, "STATUS_TIMEOUT", 0.5)
    with recording({"/realm/api/oracle/status": STALL}) as rec:
        url = f"{rec.url}/realm/api"
        silent = call_bounded(RealmOracleHost("lab", url, name_of).status)
    assert silent["reachable"] is False and "did not answer" in silent["error"]
    assert {k: v for k, v in silent.items() if k != "error"} == {
        "host": "lab", "url": url, "kind": "realm", "reachable": False, "loaded_models": [],
        "model_count": 0, "steps": []}


def test_an_openai_hosts_refusal_is_quoted_up_to_300_characters():
    refusal = "r" * 299 + "!" + "cut" * 50
    with recording({"/v1/models": (200, {"data": [{"id": "checkpoint-4"}]}),
                    "/v1/chat/completions": (429, refusal)}) as rec:
        host = RemoteOracle("vllm", rec.url, lambda step: f"checkpoint-{step}")
        events = host.stream(4, [{"role": "user", "content": "hi"}], Sampling(max_new_tokens=3))
        assert next(events)["type"] == "start"
        with pytest.raises(RemoteError) as refused:
            next(events)
    assert str(refused.value) == f"host vllm refused the chat (429): {refusal[:300]}"
    assert str(refused.value).endswith("r!")
