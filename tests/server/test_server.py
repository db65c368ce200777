"""A real JupyterLab on 127.0.0.1 with the realm extension: auth, API, the Weaver."""

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from ..helpers import TOKEN, api, auth, child_env, realm_routes, start_lab, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def lab(realm_home, procs, tmp_path):
    proc, base = start_lab(procs, realm_home, tmp_path)
    return proc, base, realm_home


# A route of each table with a value that names something in test_every_route_with_the_token's
# realm; auth is checked on every route the extension mounts (realm_routes).
ROUTES = [("GET", "health"), ("GET", "stats"), ("GET", "locate/checkpoint_1"),
          ("GET", "asset/checkpoint_1"), ("GET", "checkpoints"), ("GET", "search?type=model"),
          ("POST", "fetch"), ("POST", "register"), ("POST", "scan"), ("GET", "zones"),
          ("POST", "zones"), ("GET", "zones/local"), ("DELETE", "zones/nas"), ("POST", "transfer"),
          ("POST", "retention"), ("GET", "ledger"), ("GET", "ledger/1"),
          ("GET", "ledger/best?metric=loss"), ("GET", "ledger/summary"), ("GET", "training/status"),
          ("GET", "tavern/state"),
          ("GET", "training/queue"), ("POST", "training/queue"), ("PATCH", "training/queue/q.jsonl"),
          ("DELETE", "training/queue/q.jsonl"), ("POST", "training/control"), ("GET", "champion"),
          ("POST", "champion"), ("DELETE", "checkpoints/1"), ("POST", "checkpoints/1/export"),
          ("GET", "tasks"), ("POST", "tasks/health_check/run"), ("POST", "tasks/health_check"),
          ("GET", "curriculum")]


def test_every_route_refuses_without_or_with_a_wrong_token(lab):
    _, base, _ = lab
    for method, route in realm_routes():
        url = f"{base}/realm/api/{route}"
        for headers in ({}, auth("wrong-token")):
            r = requests.request(method, url, headers=headers, json={"action": "pause"}, timeout=10)
            assert r.status_code == 403, (method, route, headers, r.status_code)
    assert not (lab[2].control / "pause").exists(), "a refused POST changes nothing"
    assert not list(lab[2].inbox.glob("*.jsonl"))


def test_api_answers_with_the_token(lab):
    _, base, paths = lab
    health = wait_for(lambda: (r := requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10)
                               ).json()["daemon"].get("alive") and r.json(), 60, "the daemon")
    assert health["ok"] and health["home"] == str(paths.home)
    assert health["services"][0]["name"] == "daemon" and health["services"][0]["alive"]

    status = requests.get(f"{base}/realm/api/training/status", headers=auth(), timeout=10).json()
    assert status["hero"]["name"] == "DIO" and status["state"] in ("idle", "training")
    queue = requests.get(f"{base}/realm/api/training/queue", headers=auth(), timeout=10).json()
    assert set(queue) >= {"high", "normal", "low", "processing", "failed", "recently_completed"}

    ctl = f"{base}/realm/api/training/control"
    r = requests.post(ctl, headers=auth(), json={"action": "pause"}, timeout=10)
    assert r.status_code == 200 and r.json()["controls"] == ["pause"]
    assert (paths.control / "pause").exists()
    assert requests.post(ctl, headers=auth(), json={"action": "resume"}, timeout=10).json()["controls"] == []
    assert not (paths.control / "pause").exists()

    bad = requests.post(ctl, headers=auth(), json={"action": "explode"}, timeout=10)
    assert bad.status_code == 400 and "unknown action" in bad.json()["error"]
    junk = requests.post(ctl, headers=auth(), data=b"\xff not json", timeout=10)
    assert junk.status_code == 400 and "not JSON" in junk.json()["error"]
    wrong_type = requests.post(ctl, headers=auth(), json={"action": 5}, timeout=10)
    assert wrong_type.status_code == 400


def test_weaver_mends_a_killed_daemon_and_stops_it_on_shutdown(lab, procs):
    proc, base, _ = lab

    def daemon_pid():
        t = requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10).json()["services"][0]
        return t["alive"] and t["pid"]

    first = wait_for(daemon_pid, 60, "the daemon child")
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := daemon_pid()) and p != first and p, 60, "the Weaver to restart it")
    health = requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10).json()
    assert health["services"][0]["restarts"] >= 1 and "mended" in health["services"][0]["note"]
    assert health["mended"][0]["service"] == "daemon" and health["mended"][0]["exit"] == -9
    # `realm status` shows the same tapestry, from status/weaver.json.
    out = subprocess.run([sys.executable, "-m", "realm_kernel.cli", "status"],
                         env=child_env(lab[2].home), capture_output=True, text=True, timeout=120)
    cli_health = json.loads(out.stdout)["health"]
    assert cli_health["services"][0]["name"] == "daemon" and cli_health["services"][0]["alive"]
    assert cli_health["mended"][0]["exit"] == -9 and cli_health["weaver"]["alive"]

    proc.send_signal(signal.SIGTERM)  # the server alone, not its process group
    proc.wait(30)

    def gone():
        try:
            os.kill(second, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{second}/stat") as f:  # a zombie is as good as gone
            return f.read().split()[2] == "Z"

    wait_for(gone, 30, "the daemon to stop with the server")


def test_health_json_is_valid_even_with_a_bad_realm_toml(lab):
    _, base, paths = lab
    paths.config_file.write_text("[training]\nbatch_size = -1\n")
    r = requests.get(f"{base}/realm/api/training/status", headers=auth(), timeout=10)
    assert r.status_code == 200 and json.loads(r.text)["hero"]["name"] == "DIO"


GOOD_LINE = json.dumps({"messages": [{"role": "user", "content": "hi"},
                                     {"role": "assistant", "content": "hello"}]})


def test_every_route_with_the_token(tmp_path, realm_home, procs):
    """With the daemon off (REALM_WEAVER=0), so the queue holds still: every route answers
    JSON; bad input is a 4xx, never a 500; nothing escapes the realm home."""
    from realm_kernel.api import Realm
    from realm_kernel.store.ledger import Ledger

    from ..store.test_vault import fake_checkpoint
    led = Ledger(realm_home, "seed")
    led.append("checkpoints", [fake_checkpoint(realm_home, s, loss) for s, loss in ((10, 1.0), (20, 0.5))])
    _, base = start_lab(procs, realm_home, tmp_path, REALM_WEAVER="0")
    ok = {}
    for method, route in ROUTES:
        r = api(base, method, route, json={})
        assert r.status_code < 500 and r.headers["Content-Type"].startswith("application/json"), (
            method, route, r.status_code, r.text[:300])
        ok[route] = r
    health = api(base, "GET", "health").json()
    assert health["ok"] and health["ledger"]["schema_version"] >= 2 and health["services"] == []

    # Vault
    assert api(base, "GET", "locate/checkpoint_20").json()["best_location"]["local"]
    assert api(base, "GET", "locate/checkpoint_99").status_code == 404
    assert api(base, "GET", "locate/..%2F..%2Fetc").status_code in (400, 404)
    assert api(base, "GET", "asset/checkpoint_20").json()["checkpoint"]["loss"] == 0.5
    assert api(base, "GET", "asset/model_nothing").status_code == 404
    assert [c["step"] for c in api(base, "GET", "checkpoints").json()["checkpoints"]] == [20, 10]
    assert api(base, "POST", "scan", json={}).json()["found"]["checkpoint"] == 2
    assert api(base, "GET", "search?type=checkpoint").json()["assets"][0]["asset_id"] == "checkpoint_20"
    assert api(base, "GET", "search?type=weights").status_code == 400
    assert api(base, "POST", "register", json={"path": "/etc/passwd"}).status_code == 400
    assert api(base, "POST", "register", json={"path": "../../etc/passwd"}).status_code == 400
    assert api(base, "POST", "register", json={"path": 5}).status_code == 400
    reg = api(base, "POST", "register", json={"path": "models/dio-mini"})
    assert reg.status_code == 201 and reg.json()["asset_id"] == "model_dio-mini"
    nas = tmp_path / "nas"
    nas.mkdir()
    # A token alone cannot point the vault somewhere new: a person adds a zone (confirmed).
    refused = api(base, "POST", "zones", json={"zone_id": "nas", "url": f"file://{nas}"})
    assert refused.status_code == 400 and "realm vault add-zone" in refused.json()["error"], refused.text
    Realm(realm_home.home).vault.add_zone("nas", f"file://{nas}", confirmed=True)
    assert api(base, "POST", "zones", json={"zone_id": "x", "url": "relative"}).status_code == 400
    assert [z["zone_id"] for z in api(base, "GET", "zones").json()["zones"]] == ["local", "nas"]
    assert api(base, "GET", "zones/nope").status_code == 404
    moved = api(base, "POST", "transfer", json={"asset_id": "checkpoint_10", "to_zone": "nas"})
    assert moved.status_code == 200 and (nas / moved.json()["location"]["path"] / "config.json").exists()
    assert api(base, "POST", "transfer", json={"asset_id": "checkpoint_10", "to_zone": "mars"}
               ).status_code == 404
    assert api(base, "GET", "zones/nas").json()["assets"][0]["assets"] == 1
    assert api(base, "POST", "fetch", json={"asset_id": "checkpoint_10"}).json()["path"].startswith(
        str(realm_home.home))
    assert api(base, "POST", "fetch", json={"asset_id": "checkpoint_77"}).status_code == 404
    assert api(base, "GET", "stats").json()["ledger"]["checkpoints"] == 2
    plan = api(base, "POST", "retention", json={"dry_run": True}).json()
    assert plan["dry_run"] and plan["delete"] == []
    assert api(base, "POST", "retention", json={"dry_run": "yes"}).status_code == 400

    # Checkpoint ledger, and the RemoteLedgerClient over the same routes
    assert api(base, "GET", "ledger/20").json()["loss"] == 0.5
    assert api(base, "GET", "ledger/21").status_code == 404
    assert api(base, "GET", "ledger/abc").status_code == 400
    assert api(base, "GET", "ledger/best?metric=vibes").status_code == 400
    assert api(base, "GET", "ledger?limit=x").status_code == 400
    assert api(base, "GET", "ledger/summary").json()["count"] == 2
    from realm_kernel.store.remote_ledger import RemoteLedgerClient
    remote = RemoteLedgerClient(f"{base}/realm/api/ledger", token=TOKEN)
    local = Realm(realm_home.home).checkpoints
    assert remote.is_available() and not RemoteLedgerClient(f"{base}/realm/api/ledger",
                                                             token="wrong").is_available()
    assert remote.latest() == local.latest() and remote.get(10) == local.get(10)
    assert remote.best("loss") == local.best("loss") and remote.get(11) is None
    assert remote.list(limit=1) == local.list(limit=1)
    assert remote.summary()["latest_step"] == local.summary()["latest_step"]

    # Champion
    assert api(base, "GET", "champion").status_code == 404
    assert api(base, "POST", "champion", json={"step": 999}).status_code == 404
    assert api(base, "POST", "champion", json={"step": True}).status_code == 400
    assert api(base, "POST", "champion", json={"step": 10}).json()["name"].startswith("checkpoint-10-")
    assert api(base, "GET", "champion").json()["step"] == 10

    # Delete / export a checkpoint: the champion (10) and the one in use (20) are refused
    assert api(base, "DELETE", "checkpoints/10").status_code == 409
    r = api(base, "DELETE", "checkpoints/20")
    assert r.status_code == 409 and "in use" in r.json()["error"]
    assert api(base, "DELETE", "checkpoints/-3").status_code == 400
    assert api(base, "DELETE", "checkpoints/99").status_code == 404
    ex = api(base, "POST", "checkpoints/10/export", json={"name": "dio-10"})
    assert ex.status_code == 200 and ex.json()["path"] == str(realm_home.exports / "dio-10")
    assert api(base, "POST", "checkpoints/10/export", json={"name": "dio-10"}).status_code == 409
    for bad in ("../out", "/tmp/x", 5):
        assert api(base, "POST", "checkpoints/10/export", json={"name": bad}).status_code == 400, bad

    # Queue: upload (multipart and JSON), priority, reorder, delete
    up = requests.post(f"{base}/realm/api/training/queue", headers=auth(), timeout=30,
                       files={"file": ("up.jsonl", (GOOD_LINE + "\n").encode())},
                       data={"priority": "high"})
    assert up.status_code == 201 and up.json()["priority"] == "high"
    assert (realm_home.inbox / "high" / "up.jsonl").exists()
    js = api(base, "POST", "training/queue", json={"name": "js.jsonl", "content": GOOD_LINE + "\n" * 2
                                                                                  + GOOD_LINE})
    assert js.status_code == 201 and js.json()["warnings"]
    for bad_name in ("../escape.jsonl", "a/b.jsonl", ".hidden.jsonl", "x.txt"):
        r = api(base, "POST", "training/queue", json={"name": bad_name, "content": GOOD_LINE})
        assert r.status_code == 400, bad_name
    assert not (realm_home.home.parent / "escape.jsonl").exists()
    bad = api(base, "POST", "training/queue", json={"name": "bad.jsonl", "content": "{oops"})
    assert bad.status_code == 400 and bad.json()["report"]["problems"][0]["line"] == 1
    assert api(base, "POST", "training/queue", json={"name": "js.jsonl", "content": GOOD_LINE + " "}
               ).status_code == 409
    assert api(base, "POST", "training/queue", json={"name": "p.jsonl", "content": GOOD_LINE,
                                                     "priority": "urgent"}).status_code == 400
    for i in range(3):
        (realm_home.queue("normal") / f"n{i}.jsonl").write_text(GOOD_LINE + "\n")
        os.utime(realm_home.queue("normal") / f"n{i}.jsonl", (1, 1000 + i))
    r = api(base, "PATCH", "training/queue/n2.jsonl", json={"position": 0})
    assert r.json()["order"] == ["n2.jsonl", "n0.jsonl", "n1.jsonl"]
    assert [q["name"] for q in api(base, "GET", "training/queue").json()["normal"]][0] == "n2.jsonl"
    r = api(base, "PATCH", "training/queue/n1.jsonl", json={"priority": "low"})
    assert r.status_code == 200 and (realm_home.queue("low") / "n1.jsonl").exists()
    assert api(base, "PATCH", "training/queue/n1.jsonl", json={}).status_code == 400
    assert api(base, "PATCH", "training/queue/n1.jsonl", json={"priority": "mega"}).status_code == 400
    assert api(base, "PATCH", "training/queue/ghost.jsonl", json={"priority": "low"}).status_code == 404
    (realm_home.queue("processing") / "busy.jsonl").write_text(GOOD_LINE)
    assert api(base, "DELETE", "training/queue/busy.jsonl").status_code == 409
    assert api(base, "DELETE", "training/queue/n0.jsonl").json()["was"] == "normal"
    assert api(base, "DELETE", "training/queue/n0.jsonl").status_code == 404
    assert api(base, "POST", "training/control", json={"action": "skip"}).json()["controls"] == ["skip"]
