"""oracle/client.py's plain parts: the owner's JSON error rebuilt as the exception it
raised, the sampling a client forwards, and the advertisement file (who may withdraw it,
what a damaged one reads as, when it is known dead without asking)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

from realm_kernel.oracle.client import (
    _error_from,
    _sampling_body,
    advertise,
    read_advertisement,
    stale_reason,
    withdraw,
)
from realm_kernel.oracle.pool import ModelNotLoaded, OracleError, RemoteError, Sampling
from realm_kernel.store.checkpoints import UnknownCheckpoint
from realm_kernel.store.config import ConfigError


def test_the_owners_error_comes_back_as_the_same_exception():
    e = _error_from(404, {"kind": "ModelNotLoaded", "step": 3, "loaded": [1], "host": "gpu",
                          "error": "Step 3 not loaded"})
    assert isinstance(e, ModelNotLoaded) and (e.step, e.loaded, e.host) == (3, [1], "gpu")
    e = _error_from(404, {"loaded": None})  # an older owner without `kind`
    assert isinstance(e, ModelNotLoaded) and (e.step, e.loaded, e.host) == (-1, [], "local")
    e = _error_from(404, {"error": "no checkpoint at step 25"})
    assert type(e) is UnknownCheckpoint and str(e) == "no checkpoint at step 25"
    e = _error_from(500, {"kind": "UnknownCheckpoint", "error": "gone"})
    assert type(e) is UnknownCheckpoint
    e = _error_from(500, {"kind": "ConfigError", "error": "bad [oracle]"})
    assert type(e) is ConfigError and str(e) == "bad [oracle]"
    for code, body in ((500, {"kind": "ValueError", "error": "bad"}),
                       (500, {"kind": "OracleError", "error": "bad"}), (400, {"error": "bad"})):
        e = _error_from(code, body)
        assert type(e) is OracleError and str(e) == "bad", (code, body)
    e = _error_from(502, {"error": "host down", "kind": "RemoteError"})
    assert type(e) is RemoteError and str(e) == "host down"
    e = _error_from(503, "<html>not json</html>")
    assert type(e) is RemoteError and str(e) == "HTTP 503"


def test_a_client_forwards_only_the_sampling_it_set():
    assert _sampling_body(Sampling()) == {"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0,
                                          "top_k": 0, "repetition_penalty": 1.0}
    body = _sampling_body(Sampling(stop=("END",), seed=4))
    assert body["stop"] == ["END"] and body["seed"] == 4
    assert json.loads(json.dumps(body)) == body


def test_the_advertisement_is_owner_only_and_withdrawn_only_by_its_owner(tmp_path):
    path = tmp_path / "status" / "oracle_owner.json"
    path.parent.mkdir()
    ad = advertise(path, "http://127.0.0.1:8888/", "tok")
    assert ad["url"] == "http://127.0.0.1:8888" and ad["pid"] == os.getpid() and ad["token"] == "tok"
    assert ad["machine"] == socket.gethostname() and ad["kind"] == "jupyter-server"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_advertisement(path) == ad and stale_reason(ad) is None
    assert advertise(path, "http://h:1", None, "oracle-serve")["token"] == ""

    # Another process's (or another machine's) advertisement stays.
    for other in ({**ad, "pid": ad["pid"] + 1}, {**ad, "machine": "elsewhere"}):
        path.write_text(json.dumps(other))
        assert not withdraw(path) and path.exists()
    path.write_text(json.dumps(ad))
    assert withdraw(path) and not path.exists()
    assert not withdraw(path)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert stale_reason({**ad, "pid": dead.pid}) == f"its process (pid {dead.pid}) is gone"
    assert stale_reason({**ad, "pid": dead.pid, "machine": "elsewhere"}) is None  # not ours to judge

    # A damaged or partial file reads as no advertisement; missing fields get defaults.
    for junk in ("{", "[]", json.dumps({"pid": 5}), json.dumps({"url": "u", "pid": "5"})):
        path.write_text(junk)
        assert read_advertisement(path) is None, junk
    path.write_text(json.dumps({"url": "http://x", "pid": 7}))
    assert read_advertisement(path) == {"machine": None, "token": "", "kind": "jupyter-server",
                                        "url": "http://x", "pid": 7}



def test_a_server_takes_over_from_an_owner_whose_process_is_gone_and_says_so(tmp_path):
    from realm_kernel.api import Realm
    from realm_kernel.store.paths import RealmPaths

    from ..helpers import TEST_TOML
    paths = RealmPaths.at(tmp_path / "realm").ensure()
    paths.config_file.write_text(TEST_TOML)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ad = advertise(paths.oracle_owner, "http://127.0.0.1:9", "old")
    paths.oracle_owner.write_text(json.dumps({**ad, "pid": dead.pid}))

    oracle = Realm(paths.home).oracle
    out = oracle.serve("http://127.0.0.1:8888", "new")
    assert out == {"owner": True, "pid": os.getpid(), "url": "http://127.0.0.1:8888",
                   "kind": "jupyter-server"}
    assert oracle.note == (f"this process (pid {os.getpid()}) took over the realm's Oracle pool "
                           f"(the advertised owner (pid {dead.pid}) is gone)")
    assert read_advertisement(paths.oracle_owner)["token"] == "new"
