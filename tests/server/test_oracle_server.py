"""The Oracle's REST and OpenAI-compatible API in a real JupyterLab on 127.0.0.1, with
the official `openai` client, and chats fired while the daemon trains."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from realm_kernel.api import Realm

from ..helpers import TOKEN, auth, start_lab, wait_for
from ..oracle_helpers import oracle_home as oracle_home_fixture

pytestmark = pytest.mark.slow
oracle_home = oracle_home_fixture


def sse_events(response) -> list:
    out = []
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_oracle_api_openai_client_and_chats_during_training(oracle_home, procs, tmp_path):
    from openai import NotFoundError, OpenAI

    _, base = start_lab(procs, oracle_home, tmp_path)
    api = f"{base}/realm/api/oracle"
    names = {c["step"]: c["name"] for c in Realm(oracle_home.home).oracle.checkpoints()}

    def post(route, body, **kw):
        return requests.post(f"{api}/{route}", headers=auth(), json=body, timeout=300, **kw)

    for route in ("status", "v1/models"):
        assert requests.get(f"{api}/{route}", timeout=10).status_code == 403
    assert post("chat", {"message": "hi"}).status_code == 400  # no step: no guessing
    missing = post("chat", {"message": "hi", "step": 20})
    assert missing.status_code == 404 and missing.json()["loaded"] == []
    assert "Step 20 not loaded" in missing.json()["error"]
    assert post("load", {"step": 25}).status_code == 404

    for step in (10, 20, 30):  # max_models = 2: 10 goes
        assert post("load", {"step": step, "host": "local"}).json()["model"] == names[step]
    status = requests.get(f"{api}/status", headers=auth(), timeout=10).json()["hosts"]["local"]
    assert status["steps"] == [20, 30] and status["evicted"][-1]["step"] == 10
    # JupyterLab owns the realm's one pool: this process sees the same models through it.
    assert status["shared"] and status["owner"]["url"] == base
    seen = Realm(oracle_home.home).oracle.status()["hosts"]["local"]
    assert seen["client"] and seen["loaded_models"] == status["loaded_models"]
    gone = post("chat", {"message": "hi", "step": 10})
    assert gone.status_code == 404 and gone.json()["loaded"] == [20, 30]

    reply = post("chat", {"messages": [{"role": "user", "content": "What is ①+①?"}], "step": 30,
                          "max_new_tokens": 8}).json()
    assert reply["success"] and reply["model"] == names[30] and reply["model_path"].endswith(names[30])
    with post("chat", {"message": "What is ①+①?", "step": 20, "stream": True, "max_new_tokens": 8},
              stream=True) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[0]["type"] == "start" and events[0]["model"] == names[20]
    assert events[-1]["type"] == "done" and events[-1]["model"] == names[20]

    # The official OpenAI client against our own v1 endpoint (Bearer = the Jupyter token).
    client = OpenAI(base_url=f"{api}/v1", api_key=TOKEN)
    assert sorted(m.id for m in client.models.list()) == sorted([names[20], names[30]])
    out = client.chat.completions.create(model=names[30], max_tokens=8,
                                         messages=[{"role": "user", "content": "What is ①+①?"}])
    assert out.model == names[30] and out.choices[0].message.content == reply["content"]
    chunks = list(client.chat.completions.create(model=names[20], max_tokens=8, stream=True,
                                                 messages=[{"role": "user", "content": "What is ①+①?"}]))
    assert {c.model for c in chunks} == {names[20]} and chunks[-1].choices[0].finish_reason
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == events[-1]["content"]
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model=names[10], messages=[{"role": "user", "content": "hi"}])

    # `stop` ends the reply before the stop string (streamed and not); `seed` repeats a
    # sampled reply; a parameter the endpoint does not honour is a 400 naming it.
    ask = [{"role": "user", "content": "What is ①+①?"}]
    full = reply["content"]
    assert len(full) >= 2, full
    stop = full[1]
    cut = full[:full.index(stop)]
    stopped = client.chat.completions.create(model=names[30], max_tokens=8, messages=ask, stop=[stop])
    assert stopped.choices[0].message.content == cut and stopped.choices[0].finish_reason == "stop"
    streamed = list(client.chat.completions.create(model=names[30], max_tokens=8, messages=ask,
                                                   stop=stop, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == cut
    sampled = [client.chat.completions.create(model=names[30], max_tokens=8, messages=ask, temperature=1.5,
                                              seed=11).choices[0].message.content for _ in range(2)]
    assert sampled[0] == sampled[1]
    for extra in ({"tools": [{"type": "function", "function": {"name": "f"}}]}, {"n": 2},
                  {"logit_bias": {"5": 1}}):
        bad = post("v1/chat/completions", {"model": names[30], "messages": ask, **extra})
        key = next(iter(extra))
        assert bad.status_code == 400 and bad.json()["error"]["param"] == key, bad.text
        assert repr(key) in bad.json()["error"]["message"]
    assert post("v1/chat/completions", {"model": names[30], "messages": ask, "stop": [""]}).status_code == 400

    # Chats while the daemon (the Weaver's child) trains: training is not disturbed.
    realm = Realm(oracle_home.home)
    realm.quests.generate("bin", 1, 480, seed=3)  # 60 steps
    wait_for(lambda: realm.training.status()["state"] == "training", 120, "training to start")
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda s: post("chat", {"message": "What is ①+①?", "step": s,
                                                        "max_new_tokens": 16}).json(), [20, 30] * 3))
    assert [r["model"] for r in replies] == [names[20], names[30]] * 3
    assert realm.training.status()["state"] in ("training", "idle")
    wait_for(lambda: realm.sql("SELECT count(*) AS n FROM quest_status WHERE status = 'completed'")[0]["n"],
         300, "the quest to complete")
    assert not realm.sql("SELECT * FROM quest_status WHERE status = 'failed'")
    steps = [r["step"] for r in realm.sql(
        "SELECT DISTINCT step FROM metrics WHERE run_id <> 'oracle' AND loss IS NOT NULL ORDER BY step")]
    assert steps == list(range(steps[0], steps[0] + len(steps))) and len(steps) >= 50
