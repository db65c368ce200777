"""One Oracle pool per realm: a real Jupyter server (`realm oracle serve`) on 127.0.0.1
owns it; a `python -c` child and this test process are its clients through `Realm.oracle`
(load, stream, status, the same error types); the Oracle page's session sees the same
pool; bad or absent auth is refused; when the owner is gone, is stale or does not answer,
a process falls back to its own pool and says so."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import requests

from realm_kernel.api import Realm
from realm_kernel.oracle.client import advertise, read_advertisement
from realm_kernel.oracle.pool import ModelNotLoaded, OracleError
from realm_kernel.store.checkpoints import UnknownCheckpoint

from ..helpers import TOKEN, auth, child_env, free_port, wait_for
from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture
ASK = {"message": "What is ①+①?", "sampling": {"max_new_tokens": 8}}

CHILD = """
import json
from realm_kernel.api import Realm
oracle = Realm().oracle
loaded = oracle.load(30)
events = list(oracle.stream(30, message="What is ①+①?", sampling={"max_new_tokens": 8}))
print(json.dumps({"loaded": loaded, "events": events, "status": oracle.status()["hosts"]["local"],
                  "own_pool": oracle.pool.steps()}))
"""


def local_status(realm: Realm) -> dict:
    return realm.oracle.status()["hosts"]["local"]


def start_owner(procs, paths, tmp_path):
    """`realm oracle serve` (a bare Jupyter server with the realm API) once it has
    advertised itself; (its process, its base URL)."""
    port = free_port()
    env = {**child_env(paths.home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_TOKEN": TOKEN}
    proc = procs.start("owner", [sys.executable, "-m", "realm_kernel.cli", "oracle", "serve",
                                 f"--port={port}"], env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/realm/api/oracle/status", headers=auth(), timeout=5).ok,
             120, "the pool owner to answer")
    wait_for(lambda: (read_advertisement(paths.oracle_owner) or {}).get("pid") == proc.pid, 30,
             "the owner's advertisement")
    return proc, base


@pytest.mark.slow
def test_one_pool_served_to_every_process(oracle_home, procs, tmp_path):
    proc, base = start_owner(procs, oracle_home, tmp_path)
    ad_file = oracle_home.oracle_owner
    ad = read_advertisement(ad_file)
    assert stat.S_IMODE(ad_file.stat().st_mode) == 0o600  # it holds the token
    assert ad["url"] == base and ad["token"] == TOKEN

    # The API wants the server's own auth: none, or a wrong token, is refused.
    api = f"{base}/realm/api/oracle"
    assert requests.get(f"{api}/status", timeout=10).status_code == 403
    assert requests.get(f"{api}/status", headers=auth("wrong"), timeout=10).status_code == 403
    assert requests.post(f"{api}/load", json={"step": 30}, headers=auth("wrong"),
                         timeout=10).status_code == 403

    # A second process loads a checkpoint through the owner and streams an answer.
    out = subprocess.run([sys.executable, "-c", CHILD], env=child_env(oracle_home.home),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    child = json.loads(out.stdout.strip().splitlines()[-1])
    name = child["loaded"]["model"]
    assert child["own_pool"] == []  # nothing in the child's memory
    kinds = [ev["type"] for ev in child["events"]]
    assert kinds[0] == "start" and kinds[-1] == "done" and "token" in kinds
    done = child["events"][-1]
    assert done["model"] == name and done["content"] == "".join(
        ev["text"] for ev in child["events"] if ev["type"] == "token")
    assert child["status"]["client"] and child["status"]["owner"]["pid"] == proc.pid

    # This process is a client too: the same single model, as the owner's REST status says.
    realm = Realm(oracle_home.home)
    mine = local_status(realm)
    served = requests.get(f"{api}/status", headers=auth(), timeout=10).json()["hosts"]["local"]
    assert mine["loaded_models"] == served["loaded_models"] == child["status"]["loaded_models"]
    assert mine["steps"] == [30] and mine["model_count"] == 1
    assert mine["shared"] and mine["client"] and mine["owner"]["pid"] == proc.pid
    assert served["shared"] and not served["client"] and "owns the realm's Oracle pool" in served["note"]
    assert realm.oracle.pool.steps() == []
    assert [m["model"] for m in realm.oracle.loaded()] == [name]

    # Streams stay streams over the wire, and name their model first; greedy: same answer.
    events = list(realm.oracle.stream(30, **ASK))
    assert events[0] == {"type": "start", "host": "local", "step": 30, "model": name,
                         "model_path": done["model_path"]}
    assert events[-1]["content"] == done["content"]
    assert realm.oracle.chat(30, **ASK)["content"] == done["content"]

    # The same errors as in-process, raised before any event.
    with pytest.raises(ModelNotLoaded) as missing:
        realm.oracle.stream(20, **ASK)
    assert missing.value.loaded == [30] and missing.value.step == 20
    with pytest.raises(UnknownCheckpoint):
        realm.oracle.load(25)
    with pytest.raises(OracleError):
        realm.oracle.chat(30, message="hi", sampling={"top_p": 0})

    # The Oracle page (notebook widgets and the Panel app use this session) shows it too.
    from realm_widgets.pages import OracleSession
    assert OracleSession(realm).snapshot()["loaded"] == [{"step": 30, "model": name}]

    # A token the owner refuses: this process falls back to its own pool and says why.
    ad_file.write_text(json.dumps({**ad, "token": "not-the-token"}))
    refused = local_status(Realm(oracle_home.home))
    assert not refused["shared"] and "refused" in refused["note"] and refused["steps"] == []
    ad_file.write_text(json.dumps(ad))

    # The owner stops: it withdraws its advertisement; the clients fall back, saying so.
    procs.stop(proc, signal.SIGTERM)
    assert not ad_file.exists()
    gone = local_status(realm)
    assert not gone["shared"] and "no Oracle pool owner runs" in gone["note"]
    assert realm.oracle.load(30)["model"] == name and realm.oracle.pool.steps() == [30]


def test_a_stale_or_silent_owner_never_hangs_a_caller(oracle_home, procs):
    realm = Realm(oracle_home.home)
    # Its process is gone (killed before it could withdraw the advertisement).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ad = advertise(oracle_home.oracle_owner, f"http://127.0.0.1:{free_port()}", "t")
    oracle_home.oracle_owner.write_text(json.dumps({**ad, "pid": dead.pid}))
    st = local_status(realm)
    assert not st["shared"] and f"pid {dead.pid}) is gone" in st["note"]
    assert st["owner"]["pid"] == os.getpid() and st["loaded_models"] == []

    # Alive, but nothing answers at its address: one short connect, then this process's pool.
    silent = "import time; time.sleep(600)"  # sleep-ok: a child alive that never answers
    alive = procs.start("silent", [sys.executable, "-c", silent], child_env(oracle_home.home))
    oracle_home.oracle_owner.write_text(json.dumps({**ad, "pid": alive.pid}))
    fresh = Realm(oracle_home.home)
    assert fresh.oracle.load(0)["host"] == "local"
    st = local_status(fresh)
    assert not st["shared"] and "did not answer" in st["note"] and st["steps"] == [0]
    assert fresh.oracle.chat(0, **ASK)["model"] == "dio-mini"
