"""The Oracle's REST API and its OpenAI-compatible face on a real Jupyter server with the
realm extension, run in this process (its IOLoop on a thread) on a realm with dio-mini,
in seconds: the server advertises itself as the realm's pool owner; load, chat (whole and
streamed), status, unload and every refusal answer as the docs say; a `Realm.oracle` that
sees the owner as another machine's process is its client over the wire, with the same
errors; a token the owner refuses sends it to its own pool. The slow twins with the
server as a subprocess are test_oracle_pool.py and tests/server/test_oracle_server.py.

The server is started inside each test, not in a fixture: mutmut bounds a mutant's run by
the tests' own durations, and a server started in a fixture would not count."""

from __future__ import annotations

import json
import os
import socket

import pytest
import requests

from realm_kernel.api import Realm
from realm_kernel.oracle.client import HOP_HEADER, read_advertisement
from realm_kernel.oracle.pool import ModelNotLoaded, OracleError
from realm_kernel.store.checkpoints import UnknownCheckpoint

from ..helpers import TOKEN, auth, make_home
from ..server.in_process import serving, sse

ASK = {"message": "What is 1+1?", "step": 0, "max_new_tokens": 6}


def test_the_oracle_api_loads_chats_streams_and_refuses_by_name(realm_home, tmp_path, monkeypatch):
    with serving(realm_home, tmp_path, monkeypatch) as (app, api, log):
        ad = read_advertisement(realm_home.oracle_owner)
        assert ad["url"] == f"http://127.0.0.1:{app.port}" and ad["token"] == TOKEN
        assert ad["machine"] == socket.gethostname() and ad["kind"] == "jupyter-server"
        assert f"Realm of Training: API at /realm/api, home {realm_home.home}" in log.lines
        assert f"Realm of Training: the realm's Oracle pool is served here ({ad['url']})" in log.lines

        def post(route: str, body: dict, **kw) -> requests.Response:
            return requests.post(f"{api}/oracle/{route}", json=body, headers=auth(), timeout=60, **kw)

        loaded = post("load", {"step": 0})
        assert loaded.status_code == 200, loaded.text
        assert {k: loaded.json()[k] for k in ("ok", "host", "step", "model", "already_loaded")} == {
            "ok": True, "host": "local", "step": 0, "model": "dio-mini", "already_loaded": False}
        stray = post("load", {"step": 0, "hots": "x"})
        assert stray.status_code == 400 and "unknown field(s) ['hots']" in stray.json()["error"]
        assert any("refused POST /realm/api/oracle/load (400): unknown field(s) ['hots']" in line
                   for line in log.lines), log.lines

        whole = post("chat", ASK)
        assert whole.status_code == 200, whole.text
        reply = whole.json()
        assert reply["ok"] and reply["success"] and "type" not in reply
        assert reply["model"] == "dio-mini" and reply["step"] == 0 and reply["host"] == "local"
        assert reply["content"] and reply["usage"]["completion_tokens"] <= 6

        streamed = post("chat", {**ASK, "stream": True}, stream=True)
        assert streamed.headers["Content-Type"] == "text/event-stream"
        assert streamed.headers["Cache-Control"] == "no-cache"
        assert streamed.headers["X-Accel-Buffering"] == "no"
        events = sse(streamed)
        assert events[0]["type"] == "start" and events[0]["model"] == "dio-mini"
        assert events[-1]["type"] == "done" and events[-1]["content"] == reply["content"]
        assert "".join(e["text"] for e in events if e["type"] == "token") == reply["content"]

        missing = post("chat", {**ASK, "step": 5})
        assert missing.status_code == 404
        fields = ("ok", "success", "status", "kind", "step", "loaded", "host")
        assert {k: missing.json()[k] for k in fields} == {
            "ok": False, "success": False, "status": 404, "kind": "ModelNotLoaded", "step": 5,
            "loaded": [0], "host": "local"}
        no_step = post("chat", {"message": "hi"})
        assert no_step.status_code == 400 and no_step.json()["kind"] == "OracleError"
        assert "step is required" in no_step.json()["error"]
        # A refusal the Oracle replies itself (not raised) is logged with its route, too.
        assert ("Realm of Training: refused POST /realm/api/oracle/chat (400): step is required "
                "(0 = the base model); the Oracle never guesses") in log.lines, log.lines
        assert whole.headers["Content-Type"] == no_step.headers["Content-Type"] == "application/json"
        unknown = post("load", {"step": 25})
        assert unknown.status_code == 404 and unknown.json()["kind"] == "UnknownCheckpoint"
        assert "no checkpoint at step 25" in unknown.json()["error"]

        status = requests.get(f"{api}/oracle/status", headers=auth(), timeout=30).json()
        assert list(status["hosts"]) == ["local"]
        local = status["hosts"]["local"]
        assert local["steps"] == [0] and local["shared"] and not local["client"]
        assert local["owner"] == {"pid": os.getpid(), "url": ad["url"], "kind": "jupyter-server"}
        checkpoints = requests.get(f"{api}/oracle/checkpoints", headers=auth(), timeout=30).json()
        assert [c["step"] for c in checkpoints["checkpoints"]] == [0]

        # OpenAI-compatible: the loaded model by name, the same greedy words.
        models = requests.get(f"{api}/oracle/v1/models", headers=auth(), timeout=30).json()
        assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["dio-mini"]
        assert {k: models["data"][0][k] for k in ("object", "owned_by", "step", "host")} == {
            "object": "model", "owned_by": "realm", "step": 0, "host": "local"}
        assert models["data"][0]["created"] > 0 and models["data"][0]["root"] == str(realm_home.dio_mini)
        ask = {"model": "dio-mini", "messages": [{"role": "user", "content": "What is 1+1?"}],
               "max_tokens": 6, "n": 1, "presence_penalty": 0}
        done = post("v1/chat/completions", ask)
        assert done.status_code == 200, done.text
        c = done.json()
        assert c["object"] == "chat.completion" and c["model"] == "dio-mini"
        assert c["system_fingerprint"] == "realm-step-0" and c["id"].startswith("chatcmpl-")
        assert c["choices"][0]["message"] == {"role": "assistant", "content": reply["content"]}
        assert c["choices"][0]["finish_reason"] == reply["finish_reason"] and c["usage"] == reply["usage"]
        chunks = sse(post("v1/chat/completions", {**ask, "stream": True,
                                                  "stream_options": {"include_usage": True}}, stream=True))
        assert chunks[-1] == "[DONE]" and chunks[-2]["choices"] == []
        assert chunks[-2]["usage"] == reply["usage"]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert chunks[-3]["choices"][0]["finish_reason"] == reply["finish_reason"]
        text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks[1:-3])
        assert text == reply["content"]
        assert all(ch["object"] == "chat.completion.chunk" for ch in chunks[:-1])

        def refused(body: dict) -> tuple[int, dict]:
            r = post("v1/chat/completions", body)
            return r.status_code, r.json()["error"]

        code, err = refused({**ask, "n": 2})
        assert code == 400 and err["code"] == "unsupported_parameter" and err["param"] == "n"
        assert err["type"] == "invalid_request_error" and "unsupported parameter: 'n'" in err["message"]
        code, err = refused({**ask, "tools": [{"type": "function"}]})  # not even a neutral value
        assert code == 400 and err["code"] == "unsupported_parameter" and err["param"] == "tools"
        code, err = refused({"messages": ask["messages"]})
        assert code == 400 and err["code"] == "missing_model" and err["param"] == "model"
        code, err = refused({**ask, "stream_options": 3})
        assert code == 400 and err["param"] == "stream_options"
        code, err = refused({**ask, "temperature": -1})
        assert code == 400 and err["code"] == "invalid" and "out of range" in err["message"]
        code, err = refused({**ask, "model": "checkpoint-9"})
        assert code == 404 and err["code"] == "model_not_found"
        assert "'checkpoint-9' is not loaded; loaded: ['dio-mini']" in err["message"]
        code, err = refused({**ask, "model": "x@gpu"})
        assert code == 404 and err["code"] == "model_not_found"
        assert "no inference host 'gpu'" in err["message"]

        # The owner's own Realm.oracle chats from a whole chat (`messages`) as the API does.
        owner = app.web_app.settings["realm"].oracle
        turns = [{"role": "user", "content": "What is 1+1?"}]
        assert owner.chat(0, messages=turns, sampling={"max_new_tokens": 6})["content"] == reply["content"]

        unloaded = post("unload", {"step": 0})
        assert unloaded.status_code == 200 and unloaded.json()["unloaded"] == 0
        assert unloaded.json()["loaded"] == [] and unloaded.json()["host"] == "local"
        again = post("unload", {"step": 0})
        assert again.status_code == 404 and again.json()["kind"] == "ModelNotLoaded"
        # The owner withdraws its own advertisement (what it does on shutdown), once.
        assert owner.stop_serving() and not realm_home.oracle_owner.exists()
        assert not owner.stop_serving()


def test_another_process_is_the_owners_client_with_the_same_errors(realm_home, tmp_path, monkeypatch):
    with serving(realm_home, tmp_path, monkeypatch) as (app, api, _):
        ad = read_advertisement(realm_home.oracle_owner)
        # As a process on another machine sees it (this process would otherwise own it).
        elsewhere = {**ad, "machine": "elsewhere", "pid": 1}
        realm_home.oracle_owner.write_text(json.dumps(elsewhere))
        realm = Realm(realm_home.home)
        oracle = realm.oracle
        loaded = oracle.load(0)
        assert loaded["model"] == "dio-mini" and loaded["host"] == "local" and not loaded["already_loaded"]
        assert oracle.pool.steps() == [], "loaded in the owner, not here"
        st = oracle.local_status()
        assert st["steps"] == [0] and st["shared"] and st["client"]
        assert f"served by the realm's Oracle pool owner (pid 1, {ad['url']})" in st["note"]
        assert [m["model"] for m in oracle.loaded()] == ["dio-mini"]
        assert oracle.served() == [{**oracle.loaded()[0], "host": "local", "id": "dio-mini"}]
        assert oracle.status()["hosts"]["local"]["steps"] == [0]

        events = list(oracle.stream(0, "What is 1+1?", sampling={"max_new_tokens": 6}))
        assert events[0] == {"type": "start", "host": "local", "step": 0, "model": "dio-mini",
                             "model_path": str(realm_home.dio_mini)}
        reply = oracle.chat(0, "What is 1+1?", sampling={"max_new_tokens": 6})
        assert reply["content"] == events[-1]["content"] == "".join(
            e["text"] for e in events if e["type"] == "token")
        assert reply["ok"] and reply["success"]

        with pytest.raises(ModelNotLoaded) as missing:
            oracle.stream(3, "hi")
        assert missing.value.step == 3 and missing.value.loaded == [0] and missing.value.host == "local"
        with pytest.raises(UnknownCheckpoint, match="no checkpoint at step 25"):
            oracle.load(25)
        with pytest.raises(OracleError, match="out of range"):
            oracle.chat(0, "hi", sampling={"top_p": 0})
        assert oracle.unload(0)["unloaded"] == 0
        with pytest.raises(ModelNotLoaded):
            oracle.unload(0)

        # A forwarded request is answered from the owner's own pool, never forwarded again.
        hop = requests.get(f"{api}/oracle/status", headers={**auth(), HOP_HEADER: "1"}, timeout=30).json()
        assert "answered from this process" in hop["hosts"]["local"]["note"]

        # A token the owner refuses: this process's own pool, and the note says why.
        realm_home.oracle_owner.write_text(json.dumps({**elsewhere, "token": "nope"}))
        other = Realm(realm_home.home).oracle
        st = other.local_status()
        assert not st["shared"] and not st["client"] and st["owner"]["kind"] == "this process"
        assert "refused this process's credentials (HTTP 403)" in st["note"]
        assert other.load(0)["host"] == "local" and other.pool.steps() == [0]
        # Not asked again at once: the refusal is remembered.
        assert "is not usable" in other.local_status()["note"]
        # A client never withdraws the owner's advertisement.
        assert not other.stop_serving() and read_advertisement(realm_home.oracle_owner)["token"] == "nope"


def test_inference_hosts_of_both_kinds_answer_by_step_over_the_wire(realm_home, dio_mini_dir, tmp_path,
                                                                    monkeypatch):
    """Another realm's hosts.toml names this server twice: its OpenAI face stands in for a
    vLLM host (`inference`: the same wire) and the server itself is a realm host (`realm`);
    each serves exactly the step asked."""
    client = make_home(tmp_path / "client", dio_mini_dir)
    with serving(realm_home, tmp_path, monkeypatch) as (app, api, _):
        port = app.port
        (client.home / "hosts.toml").write_text(
            f'[hosts.vllm]\nhost = "127.0.0.1"\nroles = ["inference"]\ntoken_env = "VLLM_KEY"\n'
            f'services = {{ inference = {{ port = {port}, path = "/realm/api/oracle" }} }}\n'
            f'[hosts.peer]\nhost = "127.0.0.1"\nroles = ["inference"]\ntoken_env = "PEER_TOKEN"\n'
            f'services = {{ realm = {{ port = {port}, path = "/realm/api" }} }}\n'
            '[hosts.gone]\nhost = "127.0.0.1"\nroles = ["inference"]\n'
            'services = { inference = { port = 9 } }\n')
        monkeypatch.delenv("PEER_TOKEN", raising=False)
        monkeypatch.setenv("VLLM_KEY", TOKEN)  # sent as a Bearer token, as vllm --api-key wants
        oracle = Realm(client.home).oracle
        assert oracle.hosts() == ["local", "gone", "peer", "vllm"]
        status = oracle.status()["hosts"]
        assert not status["gone"]["reachable"] and "did not answer /v1/models" in status["gone"]["error"]
        assert status["gone"]["steps"] == [] and status["gone"]["model_count"] == 0
        assert not status["peer"]["reachable"] and "refused" in status["peer"]["error"]
        assert status["peer"]["kind"] == "realm" and status["peer"]["loaded_models"] == []
        assert status["vllm"] == {"host": "vllm", "url": f"http://127.0.0.1:{port}/realm/api/oracle",
                                  "reachable": True, "loaded_models": [], "model_count": 0, "steps": []}
        monkeypatch.setenv("PEER_TOKEN", TOKEN)

        # The realm host loads the step asked (in the server's pool) and names this
        # realm's checkpoint; a step this realm never saved is refused before asking.
        loaded = oracle.load(0, "peer")
        assert loaded["host"] == "peer" and loaded["model"] == "dio-mini" and loaded["step"] == 0
        with pytest.raises(UnknownCheckpoint, match="no checkpoint at step 25"):
            oracle.load(25, "peer")
        peer = oracle.status("peer")["hosts"]
        assert sorted(peer) == ["local", "peer"]
        assert peer["peer"]["reachable"] and peer["peer"]["steps"] == [0]
        assert peer["peer"]["model_count"] == 1
        events = list(oracle.stream(0, "What is 1+1?", host="peer", sampling={"max_new_tokens": 6}))
        assert events[0]["host"] == events[-1]["host"] == "peer" and events[-1]["model"] == "dio-mini"
        assert "".join(e["text"] for e in events if e["type"] == "token") == events[-1]["content"]
        with pytest.raises(UnknownCheckpoint, match="no checkpoint at step 3"):
            oracle.stream(3, "hi", host="peer")

        # The OpenAI host serves what it was started with (here: what the server holds).
        vllm = oracle.status("vllm")["hosts"]["vllm"]
        assert vllm["steps"] == [0] and vllm["loaded_models"] == [
            {"step": 0, "model": "dio-mini", "model_path": str(realm_home.dio_mini)}]
        assert oracle.load(0, "vllm") == {"host": "vllm", "step": 0, "model": "dio-mini",
                                          "served_id": "dio-mini", "model_path": str(realm_home.dio_mini),
                                          "already_loaded": True, "evicted": [], "ok": True}
        reply = oracle.chat(0, "What is 1+1?", host="vllm", sampling={"max_new_tokens": 6, "top_k": 5,
                                                                      "stop": ["zzz"], "seed": 1})
        assert reply["host"] == "vllm" and reply["model"] == "dio-mini" and reply["step"] == 0
        assert reply["content"] == events[-1]["content"]
        assert reply["finish_reason"] == events[-1]["finish_reason"]
        assert reply["usage"] == events[-1]["usage"] and reply["ttft_seconds"] <= reply["seconds"]
        assert [m["id"] for m in oracle.served()] == ["dio-mini@peer", "dio-mini@vllm"]
        with pytest.raises(OracleError, match="stop or restart it there"):
            oracle.unload(0, "vllm")
        bad = oracle.chat(0, "hi", host="vllm", sampling={"repetition_penalty": 1.5, "max_new_tokens": 2})
        assert bad["usage"]["completion_tokens"] <= 2

        gone = oracle.unload(0, "peer")
        assert gone["host"] == "peer" and gone["unloaded"] == 0
        with pytest.raises(ModelNotLoaded) as missing:
            oracle.unload(0, "peer")
        assert missing.value.host == "peer" and missing.value.loaded == []
        with pytest.raises(ModelNotLoaded) as missing:
            oracle.stream(0, "hi", host="peer")
        assert missing.value.host == "peer" and missing.value.loaded == []
        with pytest.raises(ModelNotLoaded) as missing:
            oracle.chat(0, "hi", host="vllm")
        assert missing.value.host == "vllm" and missing.value.loaded == []
