"""The Oracle in-process on real dio-mini checkpoints: exact steps, no fallback, every
reply naming its model; remote hosts through a real OpenAI-compatible server."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from realm_kernel.api import Realm
from realm_kernel.oracle.pool import (
    ModelNotLoaded,
    OracleError,
    Sampling,
    StopScanner,
    chat_messages,
    require_step,
)
from realm_kernel.oracle.remote import served_matches
from realm_kernel.store.checkpoints import UnknownCheckpoint

from ..helpers import child_env
from ..oracle_helpers import STEPS, start_stub
from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture

GREEDY = {"max_new_tokens": 12}


def test_step_is_required_and_strict():
    for bad in (None, "", True, -1, 1.5, "ten", "3x"):
        with pytest.raises(OracleError):
            require_step(bad)
    assert require_step("20") == 20 and require_step(0) == 0
    with pytest.raises(OracleError, match="message"):
        chat_messages()
    with pytest.raises(OracleError, match=r"messages\[1\]"):
        chat_messages(messages=[{"role": "user", "content": "hi"}, {"role": "wizard", "content": "x"}])
    assert chat_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(OracleError, match="out of range"):
        Sampling.from_dict({"top_p": 0})
    assert Sampling.from_dict({"temperature": 0}).generate_kwargs()["do_sample"] is False


SAMPLING_REFUSED = [
    ({"temperature": float("nan")}, "temperature must be a finite number"),
    ({"temperature": "nan"}, "temperature must be a finite number"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty must be a finite number"),
    ({"top_p": -float("inf")}, "top_p must be a finite number"),
    ({"temperature": 10 ** 400}, "temperature must be a finite number"),
    ({"max_new_tokens": 3.5}, "max_new_tokens must be a whole number"),
    ({"max_new_tokens": "3.5"}, "max_new_tokens must be a whole number"),
    ({"max_new_tokens": "\u0663"}, "max_new_tokens must be a whole number"),  # '٣'
    ({"max_new_tokens": True}, "max_new_tokens must be a whole number"),
    ({"top_k": [3]}, "top_k must be a whole number"),
    ({"top_k": 10 ** 30}, "out of range"),
    ({"repetition_penalty": 1e308}, "out of range"),
]


@pytest.mark.parametrize(("bad", "fragment"), SAMPLING_REFUSED)
def test_sampling_settings_are_finite_and_whole_where_they_count(bad, fragment):
    with pytest.raises(OracleError, match=fragment):
        Sampling.from_dict(bad)


def test_sampling_settings_from_a_form_still_parse():
    s = Sampling.from_dict({"max_new_tokens": "12", "temperature": "0.5", "top_k": 3, "top_p": 1})
    assert (s.max_new_tokens, s.temperature, s.top_k, s.top_p) == (12, 0.5, 3, 1.0)
    with pytest.raises(OracleError, match="step must be an integer"):
        require_step(float("inf"))


def test_stop_strings_cut_the_stream_and_seed_is_checked():
    assert Sampling.from_dict({"stop": "\n"}).stop == ("\n",)
    assert Sampling.from_dict({"stop": ["a", "bc"], "seed": 3}).seed == 3
    for bad in ({"stop": ""}, {"stop": ["a"] * 5}, {"stop": 7}, {"seed": -1}, {"seed": "x"}, {"seed": True}):
        with pytest.raises(OracleError, match="stop|seed"):
            Sampling.from_dict(bad)
    scan = StopScanner(("END", "##"))
    sent = [scan.feed(p) for p in ("hel", "lo E", "N", "Dafter")]
    assert "".join(sent) == "hello " and scan.stopped and scan.text == "hello "
    assert sent == ["h", "ello", " ", ""]  # the tail ("E", "EN") held back: it might start "END"
    scan = StopScanner(("END",))
    assert scan.feed("ab") + scan.feed("cE") + scan.flush() == "abcE" and not scan.stopped


def test_served_names_match_exactly():
    name = "checkpoint-20-20261126-1546"
    assert served_matches(name, name, 20) and served_matches(f"/models/{name}", name, 20)
    assert served_matches("checkpoint-20", name, 20)
    assert not served_matches("checkpoint-200", name, 20) and not served_matches("checkpoint-2", name, 20)


@pytest.mark.slow
def test_chat_by_step_evicts_lru_and_every_reply_names_its_model(oracle_home):
    realm = Realm(oracle_home.home)
    oracle = realm.oracle
    assert oracle.pool.max_models == 2
    steps = [c["step"] for c in oracle.checkpoints()]
    assert sorted(steps) == [0, *STEPS]
    names = {c["step"]: c["name"] for c in oracle.checkpoints()}

    with pytest.raises(ModelNotLoaded) as e:
        oracle.chat(step=20, message="hi")
    assert "Step 20 not loaded" in str(e.value) and e.value.loaded == []

    assert oracle.load(10)["evicted"] == [] and oracle.load(20)["evicted"] == []
    oracle.chat(step=10, message="touch", sampling={"max_new_tokens": 1})  # 10 is now the freshest
    assert oracle.load(30)["evicted"] == [20]
    assert oracle.load(0)["evicted"] == [10]
    assert oracle.pool.steps() == [0, 30]
    with pytest.raises(ModelNotLoaded) as e:
        oracle.chat(step=20, message="hi")
    assert e.value.loaded == [0, 30] and "Loaded: [0, 30]" in str(e.value)

    for step in (30, 0):
        reply = oracle.chat(step=step, messages=[{"role": "user", "content": "What is ①+①?"}],
                            sampling=GREEDY)
        assert reply["step"] == step and reply["model"] == names[step]
        assert reply["model_path"].endswith(names[step]) and reply["host"] == "local"
        assert 0 < reply["usage"]["completion_tokens"] <= 12
    assert oracle.chat(step=0, message="x", sampling=GREEDY)["model_path"] == str(oracle_home.dio_mini)

    # The stream says who answers before the first token, and the tokens add up.
    events = list(oracle.stream(30, message="What is ①+①?", sampling=GREEDY))
    assert events[0] == {"type": "start", "host": "local", "step": 30, "model": names[30],
                         "model_path": events[0]["model_path"]}
    assert "".join(e["text"] for e in events if e["type"] == "token") == events[-1]["content"]

    status = oracle.status()["hosts"]["local"]
    assert [m["model"] for m in status["loaded_models"]] == [names[0], names[30]]
    assert status["model_count"] == 2 and [e["step"] for e in status["evicted"]] == [20, 10]

    assert oracle.unload(30)["loaded"] == [0]
    with pytest.raises(ModelNotLoaded):
        oracle.unload(30)
    with pytest.raises(UnknownCheckpoint, match="no checkpoint at step 25"):
        oracle.load(25)


@pytest.mark.slow
def test_memory_bound_evicts_by_bytes(oracle_home):
    oracle_home.config_file.write_text(oracle_home.config_file.read_text()
                                       + "\n[oracle]\nmax_models = 5\nmax_bytes = 10000000\n")
    oracle = Realm(oracle_home.home).oracle  # dio-mini is ~6.4 MB of float32 weights
    oracle.load(10)
    assert oracle.load(20)["evicted"] == [10]
    assert oracle.pool.used_bytes() <= 10_000_000


@pytest.mark.slow
def test_probe_scores_dio_with_the_skills_own_scorer(oracle_home):
    import realm_skills as skills
    realm = Realm(oracle_home.home)
    realm.oracle.load(30)
    probe = realm.skills.ask("bin", 30, seed=7)
    problem = skills.generate("bin", 1, 1, 7)[0]
    assert probe["level"] == 1 and probe["question"] == problem.question
    assert probe["expected"] == problem.final and probe["model"].startswith("checkpoint-30-")
    assert probe["correct"] == skills.score(problem, probe["content"])


@pytest.mark.slow
def test_remote_host_serves_exactly_the_step_asked(oracle_home, procs):
    realm = Realm(oracle_home.home)
    ck = {c["step"]: c for c in realm.oracle.checkpoints()}
    url = start_stub(procs, Path(ck[20]["path"]), ck[20]["name"])
    port = url.rsplit(":", 1)[1]
    (oracle_home.home / "hosts.toml").write_text(
        f'[hosts.gpu1]\nhost = "127.0.0.1"\nroles = ["inference"]\n'
        f"services = {{ inference = {{ port = {port} }} }}\n"
        '[hosts.trainer]\nroles = ["trainer"]\n')
    oracle = realm.oracle
    status = oracle.status()["hosts"]
    assert set(status) == {"local", "gpu1"}
    assert status["gpu1"]["reachable"] and status["gpu1"]["steps"] == [20]
    assert status["gpu1"]["loaded_models"][0]["model"] == ck[20]["name"]

    assert oracle.load(20, "gpu1")["model"] == ck[20]["name"]
    reply = oracle.chat(step=20, message="What is ①+①?", host="gpu1", sampling=GREEDY)
    assert reply["host"] == "gpu1" and reply["model"] == ck[20]["name"] and reply["content"]
    assert reply["model_path"] == ck[20]["path"]
    # The same checkpoint locally answers the same (greedy) words: both run float32 on a
    # CPU. On a CUDA machine the local pool loads bf16 ("auto") while the stub runs
    # float32, and greedy words may part at a near-tie, so there only the model must agree.
    oracle.load(20)
    local = oracle.chat(step=20, message="What is ①+①?", sampling=GREEDY)
    assert local["model"] == reply["model"]
    if not torch.cuda.is_available():
        assert local["content"] == reply["content"]

    with pytest.raises(ModelNotLoaded) as e:
        oracle.chat(step=30, message="hi", host="gpu1")
    assert e.value.loaded == [20] and e.value.host == "gpu1"
    with pytest.raises(UnknownCheckpoint, match="no inference host 'nope'"):
        oracle.chat(step=20, message="hi", host="nope")
    with pytest.raises(OracleError):
        oracle.unload(20, "gpu1")


@pytest.mark.slow
def test_remote_host_needs_its_token_and_a_wrong_model_is_refused(oracle_home, procs, monkeypatch):
    """A server that wants a key (vllm --api-key) gets it from token_env; one that answers
    in another model's name is refused, not believed."""
    from realm_kernel.oracle.pool import RemoteError
    realm = Realm(oracle_home.home)
    ck = {c["step"]: c for c in realm.oracle.checkpoints()}
    keyed = start_stub(procs, Path(ck[20]["path"]), ck[20]["name"], "keyed", api_key="s3cret")
    liar = start_stub(procs, Path(ck[20]["path"]), ck[20]["name"], "liar", answer_as=ck[30]["name"])
    (oracle_home.home / "hosts.toml").write_text("".join(
        f'[hosts.{h}]\nhost = "127.0.0.1"\nroles = ["inference"]\n{extra}'
        f"services = {{ inference = {{ port = {url.rsplit(':', 1)[1]} }} }}\n"
        for h, url, extra in (("keyed", keyed, 'token_env = "KEYED_API_KEY"\n'), ("liar", liar, ""))))
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    status = realm.oracle.status()["hosts"]["keyed"]
    assert not status["reachable"] and "401" in status["error"], status
    monkeypatch.setenv("KEYED_API_KEY", "s3cret")
    assert realm.oracle.status()["hosts"]["keyed"]["steps"] == [20]
    reply = realm.oracle.chat(step=20, message="What is ①+①?", host="keyed", sampling=GREEDY)
    assert reply["model"] == ck[20]["name"] and reply["content"]
    # The liar lists step 20, then answers as step 30: refused with both names.
    assert realm.oracle.status()["hosts"]["liar"]["steps"] == [20]
    with pytest.raises(RemoteError, match=f"answered with model '{ck[30]['name']}'.*refused"):
        realm.oracle.chat(step=20, message="What is ①+①?", host="liar", sampling=GREEDY)


@pytest.mark.slow
def test_cli_chats_by_step_and_names_the_model(oracle_home):
    def realm_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "realm_kernel.cli", "oracle", *args],
                              env=child_env(oracle_home.home), capture_output=True, text=True, timeout=300)

    name = Realm(oracle_home.home).oracle.checkpoints()[1]["name"]
    ok = realm_cli("chat", "--step", "30", "-m", "What is ①+①?", "--max-new-tokens", "6")
    assert ok.returncode == 0, ok.stderr
    assert f"[model: {name} | path: " in ok.stderr
    bad = realm_cli("chat", "--step", "25", "-m", "hi")
    assert bad.returncode == 1 and "no checkpoint at step 25" in bad.stderr
    steps = [c["step"] for c in json.loads(realm_cli("checkpoints").stdout)]
    assert steps == [0, 30, 20, 10]


@pytest.mark.slow
def test_oracle_bench_writes_its_figures(tmp_path, dio_mini_dir):
    from ..test_bench import run_bench
    figures = run_bench(tmp_path, "oracle.py", "oracle_dio_mini", "--tokens", "8", "--pairs", "1")
    assert figures["dio_mini_tokens_per_s"] > 0 and figures["dio_mini_baseline_tokens_per_s"] > 0
    assert figures["dio_mini_load_seconds"] > 0 and figures["dio_mini_ttft_seconds"] > 0
    assert figures["tokens_per_s_ratio"] == pytest.approx(
        figures["dio_mini_tokens_per_s"] / figures["dio_mini_baseline_tokens_per_s"], rel=0.01)
    built = json.loads((dio_mini_dir / "dio_mini.json").read_text())["parameters"]
    assert figures["new_tokens"] == 8 and figures["params"] == built, "it measured dio-mini"
    assert "`oracle_dio_mini`" in (tmp_path / "RESULTS.md").read_text()
