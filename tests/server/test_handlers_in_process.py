"""The REST handlers' shared rules on a real Jupyter server run in this process, in seconds
(tests/server/in_process.py), on a realm with no model: a body field of the wrong type, a
malformed path or query integer, a malformed JSON body on a route that never reads it,
each is a 400 whose JSON names what and where, logged with its route; errors of the realm
keep their status (404, 409) and a quest's validation report; an unknown skill is a 404
naming the known ones. The same routes with their effects, on a subprocess JupyterLab,
are test_server.py's slow tests."""

from __future__ import annotations

from types import SimpleNamespace

import requests

from realm_kernel.server import oracle_url
from realm_kernel.store.paths import RealmPaths

from ..helpers import auth
from .in_process import serving


def test_bad_input_is_a_400_naming_it_and_realm_errors_keep_their_status(tmp_path, monkeypatch):
    paths = RealmPaths.at(tmp_path / "realm").ensure()
    with serving(paths, tmp_path, monkeypatch) as (_, api, log):
        def call(method: str, route: str, **kw) -> requests.Response:
            r = requests.request(method, f"{api}/{route}", headers={**auth(), **kw.pop("headers", {})},
                                 timeout=60, **kw)
            assert r.headers["Content-Type"].startswith("application/json"), (route, r.headers)
            return r

        def refused(method: str, route: str, status: int, **kw) -> str:
            r = call(method, route, **kw)
            body = r.json()
            assert r.status_code == status and body["status"] == status and body["ok"] is False, (
                route, r.status_code, r.text)
            return body["error"]

        assert refused("POST", "register", 400, json={"path": 5}) == "body needs 'path' as str"
        assert refused("POST", "fetch", 400, json={"asset_id": True}) == "body needs 'asset_id' as str"
        assert refused("POST", "fetch", 400, json={}) == "body needs 'asset_id' as str"
        assert refused("PATCH", "training/queue/q.jsonl", 400,
                       json={"position": True}) == "body needs 'position' as int"
        assert refused("POST", "checkpoints/1/export", 400,
                       json={"merge": "yes"}) == "body needs 'merge' as bool"
        # An optional field left out is no error: the asset is looked up (and not found).
        assert "checkpoint_9" in refused("POST", "transfer", 404, json={"asset_id": "checkpoint_9",
                                                                        "to_zone": "local"})
        assert refused("GET", "ledger?limit=abc", 400) == (
            "limit must be a non-negative integer (ASCII digits, at most 1000000), got 'abc'")
        assert "at most 1000000" in refused("GET", "ledger?limit=1000001", 400)
        assert call("GET", "ledger?limit=1000000").json() == {"checkpoints": []}
        assert refused("GET", "ledger/12x", 400).startswith("checkpoint step must be a non-negative integer")
        assert "at most 999999999999999999" in refused("GET", "ledger/1000000000000000000", 400)
        assert refused("GET", "ledger/7", 404) == "no checkpoint at step 7"
        assert any(line == "Realm of Training: refused GET /realm/api/ledger/7 (404): no checkpoint at step 7"
                   for line in log.lines), log.lines

        # Every JSON body is checked before the handler runs, read or not; a form is not JSON.
        junk = refused("POST", "tasks/health_check/run", 400, data=b"{oops",
                       headers={"Content-Type": "application/json"})
        assert junk.startswith("request body is not JSON")
        form = call("POST", "tasks/health_check/run", data=b"{oops",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 200 and form.json()["task_id"] == "health_check", form.text

        # The realm's own errors keep their status and message; a quest's report comes along.
        assert "unknown task" in refused("POST", "tasks/nope/run", 404).lower()
        assert refused("POST", "champion", 404, json={"step": 999}).startswith("no checkpoint at step 999")
        assert "ghost.jsonl" in refused("DELETE", "training/queue/ghost.jsonl", 404)
        bad = call("POST", "training/queue", json={"name": "bad.jsonl", "content": "{oops"})
        assert bad.status_code == 400 and bad.json()["report"]["problems"][0]["line"] == 1, bad.text
        (paths.queue("processing") / "busy.jsonl").write_text("{}\n")
        assert "busy.jsonl" in refused("DELETE", "training/queue/busy.jsonl", 409)

        # Skills: an unknown one is a 404 naming the known ones; a known one answers.
        err = refused("GET", "skills/nope/primitives", 404)
        assert err.startswith("unknown skill 'nope'; known: [") and "'bin'" in err
        assert call("GET", "skills/bin/primitives").status_code == 200


def test_other_processes_reach_the_server_at_a_loopback_url():
    def url(ip: str, base: str = "/", certfile: str = "") -> str:
        return oracle_url(SimpleNamespace(ip=ip, port=8888, base_url=base, certfile=certfile))

    for ip in ("", "0.0.0.0", "*", "localhost", "127.0.0.1"):
        assert url(ip) == "http://127.0.0.1:8888", ip
    assert url("::") == "http://[::1]:8888"
    assert url("fe80::1") == "http://[fe80::1]:8888"
    assert url("10.0.0.7", "/lab/", "cert.pem") == "https://10.0.0.7:8888/lab"
