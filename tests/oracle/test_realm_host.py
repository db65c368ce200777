"""The Oracle on another host: a second realm server (its own home and port on 127.0.0.1,
its own token) as the inference host of hosts.toml. The trainer's REST API, its OpenAI
endpoint and the Oracle page load an exact step there (fetched from the shared zone) and
chat with it there, over real HTTP."""

import shutil

import pytest
import requests

from realm_kernel.api import Realm
from realm_kernel.oracle.inference_hosts import inference_hosts
from widgets.pages import OracleSession

from ..helpers import TOKEN, auth, make_home, start_lab, wait_for
from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture
GPU2_TOKEN = "gpu2-token-for-tests"


@pytest.mark.slow
def test_load_and_chat_by_step_on_another_realm_host(oracle_home, dio_mini_dir, procs, tmp_path, monkeypatch):
    from openai import NotFoundError, OpenAI

    trainer = Realm(oracle_home.home)
    rows = {c["step"]: c for c in trainer.oracle.checkpoints()}
    names = {s: c["name"] for s, c in rows.items()}
    nas = tmp_path / "nas"  # the shared zone: steps 10 and 20 were shipped, 30 not yet
    for step in (10, 20):
        shutil.copytree(rows[step]["path"], nas / "checkpoints" / names[step])

    gpu2 = make_home(tmp_path / "gpu2", dio_mini_dir)  # another realm home: no checkpoints of its own
    (gpu2.home / "hosts.toml").write_text(
        f'[hosts.nas]\nhost = "127.0.0.1"\nroles = ["storage"]\nmodels_dir = "file://{nas}"\n')
    _, gpu2_base = start_lab(procs, gpu2, tmp_path / "gpu2-lab", token=GPU2_TOKEN, name="gpu2",
                             REALM_WEAVER="0")
    port = int(gpu2_base.rsplit(":", 1)[1])
    (oracle_home.home / "hosts.toml").write_text(
        f'[hosts.trainer]\nhost = "127.0.0.1"\nroles = ["trainer", "storage"]\n'
        f'[hosts.gpu2]\nhost = "127.0.0.1"\nroles = ["inference"]\ntoken_env = "GPU2_REALM_TOKEN"\n'
        f'services = {{ realm = {{ port = {port}, path = "/realm/api" }} }}\n')
    monkeypatch.setenv("GPU2_REALM_TOKEN", GPU2_TOKEN)  # a secret in the environment, never an argument
    _, base = start_lab(procs, oracle_home, tmp_path / "lab", REALM_WEAVER="0",
                        GPU2_REALM_TOKEN=GPU2_TOKEN)
    api = f"{base}/realm/api/oracle"

    def post(route, body):
        return requests.post(f"{api}/{route}", headers=auth(), json=body, timeout=300)

    loaded = post("load", {"step": 10, "host": "gpu2"})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["model"] == names[10] and loaded.json()["host"] == "gpu2"
    # It was loaded there, from the shared zone into gpu2's cache; not here.
    there = requests.get(f"{gpu2_base}/realm/api/oracle/status", headers=auth(GPU2_TOKEN), timeout=30)
    assert there.json()["hosts"]["local"]["steps"] == [10]
    assert (gpu2.fetched / names[10] / "model.safetensors").is_file()
    status = requests.get(f"{api}/status", headers=auth(), timeout=30).json()["hosts"]
    assert status["local"]["steps"] == [] and status["gpu2"]["steps"] == [10]
    assert status["gpu2"]["kind"] == "realm" and status["gpu2"]["reachable"]

    # Exact steps: unknown to this realm's ledger (404 before gpu2 is asked), or not in the
    # shared zone (gpu2's 404 names the zone); never a neighbour.
    unknown = post("load", {"step": 25, "host": "gpu2"})
    assert unknown.status_code == 404 and "no checkpoint at step 25" in unknown.json()["error"]
    unshipped = post("load", {"step": 30, "host": "gpu2"})
    assert unshipped.status_code == 404 and "shared zone" in unshipped.json()["error"]
    not_loaded = post("chat", {"message": "hi", "step": 20, "host": "gpu2"})
    assert not_loaded.status_code == 404
    assert not_loaded.json()["loaded"] == [10] and not_loaded.json()["host"] == "gpu2"

    # The chat runs there and names its checkpoint; greedy, it says what the same
    # checkpoint says here.
    ask = {"message": "What is ①+①?", "step": 10, "max_new_tokens": 8}
    remote = post("chat", {**ask, "host": "gpu2"}).json()
    assert remote["success"] and remote["step"] == 10 and remote["model"] == names[10]
    assert remote["host"] == "gpu2" and remote["model_path"].startswith(str(gpu2.home))
    assert post("load", {"step": 10}).status_code == 200
    local = post("chat", ask).json()
    assert local["host"] == "local" and local["content"] == remote["content"]

    # The OpenAI endpoint reaches it as name@host.
    client = OpenAI(base_url=f"{api}/v1", api_key=TOKEN)
    remote_id = f"{names[10]}@gpu2"
    assert sorted(m.id for m in client.models.list()) == sorted([names[10], remote_id])
    out = client.chat.completions.create(model=remote_id, max_tokens=8,
                                         messages=[{"role": "user", "content": "What is ①+①?"}])
    assert out.model == remote_id and out.choices[0].message.content == remote["content"]
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model=f"{names[20]}@gpu2",
                                       messages=[{"role": "user", "content": "hi"}])

    # The Oracle page's host picker: load step 20 on gpu2, chat there, "answered by ... on gpu2".
    page = OracleSession(trainer, max_new_tokens=8)
    assert page.snapshot()["hosts"] == ["local", "gpu2"]
    assert page.act({"name": "load", "nonce": 1, "host": "gpu2", "step": 20})["ok"]
    wait_for(lambda: not page.notice["message"].startswith("loading"), 300, "the page's load on gpu2")
    assert page.notice == {**page.notice, "ok": True, "message": f"loaded {names[20]} on gpu2"}
    page.act({"name": "chat", "nonce": 2, "host": "gpu2", "step": 20, "pane": "left",
              "message": "What is ①+①?"})
    wait_for(lambda: not page.snapshot()["panes"]["left"]["busy"], 120, "the answer from gpu2")
    pane = page.snapshot()["panes"]["left"]
    assert pane["error"] is None and pane["model"] == names[20] and pane["host"] == "gpu2"
    assert pane["messages"][-1]["content"]
    gone = page.act({"name": "unload", "nonce": 3, "host": "gpu2", "step": 20})
    assert gone["message"] == "unloaded step 20 on gpu2"
    assert requests.get(f"{gpu2_base}/realm/api/oracle/status", headers=auth(GPU2_TOKEN),
                        timeout=30).json()["hosts"]["local"]["steps"] == [10]


def test_a_host_that_answers_for_another_checkpoint_is_refused():
    """The trainer's ledger is the judge: a reply naming another checkpoint is refused."""
    from realm_kernel.api import RemoteError
    from realm_kernel.oracle.realm_host import RealmOracleHost

    host = RealmOracleHost("gpu2", "http://127.0.0.1:9/realm/api", lambda step: f"checkpoint-{step}")
    with pytest.raises(RemoteError, match="not 'checkpoint-10'"):
        host._checked(10, {"step": 10, "model": "checkpoint-10-20990101-0000"})
    assert host.status()["reachable"] is False  # port 9 on loopback: nothing listens


def test_inference_hosts_of_both_kinds(tmp_path, monkeypatch):
    """No hosts.toml: no inference host (this realm's own pool is "local", never a remote
    one); a host with an `inference` service is an OpenAI server, one with `realm` a realm."""
    assert inference_hosts(tmp_path) == {}
    (tmp_path / "hosts.toml").write_text(
        '[hosts.vllm]\nroles = ["inference"]\nservices = { inference = { port = 8000 } }\n'
        '[hosts.gpu2]\nroles = ["inference"]\ntoken_env = "GPU2_T"\n'
        'services = { realm = { port = 8890, path = "/realm/api" } }\n'
        '[hosts.local]\nroles = ["inference"]\nservices = { realm = { port = 8888, path = "/realm/api" } }\n')
    monkeypatch.setenv("GPU2_T", "secret")
    hosts = inference_hosts(tmp_path)
    assert sorted(hosts) == ["gpu2", "vllm"]
    assert hosts["gpu2"].kind == "realm" and hosts["gpu2"].url == "http://127.0.0.1:8890/realm/api"
    assert hosts["gpu2"].token == "secret" and hosts["vllm"].kind == "openai"
