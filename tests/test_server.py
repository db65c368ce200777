"""A real JupyterLab on 127.0.0.1 with the realm extension: auth, API, the Weaver."""

import json
import os
import signal
import sys

import pytest
import requests

from realm_kernel.paths import REPO_ROOT

from .conftest import child_env, free_port, wait_for

pytestmark = pytest.mark.slow
TOKEN = "realm-test-token"


def start_lab(procs, paths, tmp_path, name="lab"):
    port = free_port()
    env = child_env(paths.home)
    env["JUPYTER_CONFIG_PATH"] = str(REPO_ROOT / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
            "--allow-root", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}"]
    proc = procs.start(name, argv, env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/api/status", headers=auth(), timeout=2).ok, 90,
             "JupyterLab to answer")
    return proc, base


def auth(token=TOKEN):
    return {"Authorization": f"token {token}"}


@pytest.fixture
def lab(realm_home, procs, tmp_path):
    proc, base = start_lab(procs, realm_home, tmp_path)
    return proc, base, realm_home


ROUTES = [("GET", "health"), ("GET", "training/status"), ("GET", "training/queue"),
          ("POST", "training/control")]


def test_every_route_refuses_without_or_with_a_wrong_token(lab):
    _, base, _ = lab
    for method, route in ROUTES:
        url = f"{base}/realm/api/{route}"
        for headers in ({}, auth("wrong-token")):
            r = requests.request(method, url, headers=headers, json={"action": "pause"}, timeout=10)
            assert r.status_code == 403, (method, route, headers, r.status_code)
    assert not (lab[2].control / "pause").exists(), "a refused POST changes nothing"


def test_api_answers_with_the_token(lab):
    _, base, paths = lab
    health = wait_for(lambda: (r := requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10)
                               ).json()["daemon"].get("alive") and r.json(), 60, "the daemon")
    assert health["ok"] and health["home"] == str(paths.home)
    assert health["threads"][0]["name"] == "daemon" and health["threads"][0]["alive"]

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
        t = requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10).json()["threads"][0]
        return t["alive"] and t["pid"]

    first = wait_for(daemon_pid, 60, "the daemon child")
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := daemon_pid()) and p != first and p, 60, "the Weaver to restart it")
    health = requests.get(f"{base}/realm/api/health", headers=auth(), timeout=10).json()
    assert health["threads"][0]["restarts"] >= 1 and "mended" in health["threads"][0]["note"]

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
