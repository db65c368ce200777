"""The Oracle's pool and batched answers on the real dio-mini, in seconds (no training:
every step the pool is asked for is dio-mini itself, under its own name): what is loaded,
what is evicted and when, what a streamed reply says, and that batched answers equal
plain greedy decoding. The trained-checkpoint versions are the slow tests of
test_oracle.py and test_answering.py."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch

from realm_kernel.oracle import answering
from realm_kernel.oracle.pool import (
    LOCAL,
    ModelNotLoaded,
    ModelPool,
    Oracle,
    OracleError,
    Sampling,
    TokenBatches,
    disk_bytes,
    eos_ids,
    final_reply,
    model_bytes,
)
from realm_kernel.store.checkpoints import UnknownCheckpoint

ASK = [{"role": "user", "content": "What is 1+1?"}]


def named(dio_mini_dir: Path):
    """A locator that serves dio-mini as every step, named `m<step>`."""
    def locate(step: int) -> tuple[str, Path]:
        if step > 50:
            raise UnknownCheckpoint(f"no checkpoint at step {step}")
        return f"m{step}", dio_mini_dir
    return locate


def greedy(model, tok, messages, max_new_tokens: int) -> list[int]:
    """The reference: one plain greedy generate, the new token ids."""
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=eos_ids(tok, model),
                             pad_token_id=tok.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_the_pool_loads_evicts_the_least_recently_used_and_reports_it(dio_mini_dir):
    with pytest.raises(OracleError, match="at least one model"):
        ModelPool(named(dio_mini_dir), max_models=0)
    pool = ModelPool(named(dio_mini_dir), max_models=2)
    first = pool.load(0)
    m = pool.get(0)
    assert first == {**m.info(), "already_loaded": False, "evicted": [], "last_used": first["last_used"]}
    assert first["last_used"] <= m.last_used
    assert first["step"] == 0 and first["model"] == "m0" and first["model_path"] == str(dio_mini_dir)
    assert first["bytes"] == model_bytes(m.model) > 0 and first["device"] == "cpu"
    assert first["dtype"] == "float32" and first["load_seconds"] >= 0
    again = pool.load("0")
    assert again["already_loaded"] and again["evicted"] == [] and again["model"] == "m0"

    assert pool.load(1)["evicted"] == []
    pool.get(0)  # 0 is now the freshest: 1 goes first
    assert pool.load(2)["evicted"] == [1]
    assert pool.steps() == [0, 2]
    assert [m["step"] for m in pool.loaded()] == [0, 2]
    with pytest.raises(ModelNotLoaded) as gone:
        pool.get(1)
    assert gone.value.loaded == [0, 2] and gone.value.host == LOCAL
    assert "Step 1 not loaded on local. Loaded: [0, 2]" in str(gone.value)
    assert pool.by_name("m2").step == 2
    with pytest.raises(UnknownCheckpoint, match=r"'m1' is not loaded; loaded: \['m0', 'm2'\]"):
        pool.by_name("m1")

    st = pool.status()
    assert {k: st[k] for k in ("host", "reachable", "model_count", "steps", "max_models", "max_bytes")} == {
        "host": LOCAL, "reachable": True, "model_count": 2, "steps": [0, 2], "max_models": 2,
        "max_bytes": 0}
    assert st["used_bytes"] == pool.used_bytes() == 2 * first["bytes"]
    assert [m["model"] for m in st["loaded_models"]] == ["m0", "m2"]
    assert [(e["step"], e["model"]) for e in st["evicted"]] == [(1, "m1")]

    out = pool.unload(0)
    assert out == {"ok": True, "unloaded": 0, "model": "m0", "loaded": [2]}
    with pytest.raises(ModelNotLoaded, match="Step 0 not loaded"):
        pool.unload(0)
    with pytest.raises(UnknownCheckpoint, match="step 60"):
        pool.load(60)
    with pytest.raises(OracleError, match="step is required"):
        pool.load(None)


def test_the_byte_bound_refuses_what_cannot_fit_and_evicts_for_what_can(dio_mini_dir, tmp_path):
    need = disk_bytes(dio_mini_dir)
    assert need == sum(p.stat().st_size for p in dio_mini_dir.glob("*.safetensors")) > 0
    tight = ModelPool(named(dio_mini_dir), max_models=5, max_bytes=need - 1)
    with pytest.raises(OracleError, match=f"m3 needs about {need} bytes, more than the pool's "
                                          f"max_bytes {need - 1}"):
        tight.load(3)
    assert tight.steps() == []
    roomy = ModelPool(named(dio_mini_dir), max_models=5, max_bytes=need + need // 2)
    roomy.load(1)
    assert roomy.load(2)["evicted"] == [1] and roomy.steps() == [2]
    assert roomy.used_bytes() <= need + need // 2

    # Weights saved as .bin count when there are no .safetensors.
    old = tmp_path / "old"
    old.mkdir()
    (old / "pytorch_model.bin").write_bytes(b"x" * 123)
    (old / "config.json").write_text("{}")
    assert disk_bytes(old) == 123
    assert disk_bytes(tmp_path) == 0


def test_a_streamed_reply_is_greedy_decoding_named_and_counted(dio_mini_dir):
    pool = ModelPool(named(dio_mini_dir))
    pool.load(4)
    m = pool.get(4)
    # dio-mini's tokenizer ends a turn with <|im_end|>; its generation config adds the pad token.
    assert eos_ids(m.tokenizer, m.model) == sorted({m.tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                                    m.tokenizer.pad_token_id})
    ref = greedy(m.model, m.tokenizer, ASK, 12)
    prompt = pool.check_prompt(4, ASK, Sampling(max_new_tokens=12))
    assert prompt == len(m.tokenizer.apply_chat_template(ASK, add_generation_prompt=True, tokenize=True,
                                                         return_dict=True)["input_ids"])

    events = list(pool.stream(4, ASK, Sampling(max_new_tokens=12)))
    identity = {"host": LOCAL, "step": 4, "model": "m4", "model_path": str(dio_mini_dir)}
    assert events[0] == {"type": "start", **identity}
    assert [e["type"] for e in events[1:-1]] == ["token"] * (len(events) - 2) and len(events) > 2
    done = events[-1]
    assert {k: done[k] for k in identity} == identity and done["type"] == "done"
    assert done["content"] == m.tokenizer.decode(ref, skip_special_tokens=True) != ""
    assert "".join(e["text"] for e in events if e["type"] == "token") == done["content"]
    assert done["usage"] == {"prompt_tokens": prompt, "completion_tokens": len(ref),
                             "total_tokens": prompt + len(ref)}
    eos = set(eos_ids(m.tokenizer, m.model))
    assert done["finish_reason"] == ("stop" if ref[-1] in eos else "length")
    assert done["seconds"] > 0 and 0 < done["ttft_seconds"] <= done["seconds"]

    # A stop string cuts the reply before it (the streamed text, too) and says "stop".
    stop = done["content"][len(done["content"]) // 2:][:2]
    cut = done["content"][:done["content"].find(stop)]
    stopped = list(pool.stream(4, ASK, Sampling(max_new_tokens=12, stop=(stop,))))
    assert stopped[-1]["content"] == cut and stopped[-1]["finish_reason"] == "stop"
    assert "".join(e["text"] for e in stopped if e["type"] == "token") == cut

    # Sampled with a seed: the same seed, the same reply.
    hot = Sampling(max_new_tokens=10, temperature=1.5, top_k=50, seed=7)
    assert list(pool.stream(4, ASK, hot))[-1]["content"] == list(pool.stream(4, ASK, hot))[-1]["content"]

    # The model's context (1024 positions) bounds prompt + reply, before any event.
    with pytest.raises(OracleError, match=f"prompt is {prompt} tokens; with max_new_tokens 1020 "
                                          "that is over m4's context of 1024"):
        pool.check_prompt(4, ASK, Sampling(max_new_tokens=1020))
    assert pool.check_prompt(4, ASK, Sampling(max_new_tokens=1024 - prompt)) == prompt


def test_the_oracle_checks_everything_before_the_first_event(dio_mini_dir):
    pool = ModelPool(named(dio_mini_dir))
    oracle = Oracle(named(dio_mini_dir), pool, dict, lambda: [{"step": 0}])
    assert oracle.hosts() == [LOCAL] and oracle.checkpoints() == [{"step": 0}]
    loaded = oracle.load(5)
    assert loaded == {"ok": True, "host": LOCAL, **pool.get(5).info(), "already_loaded": False,
                      "evicted": [], "last_used": loaded["last_used"]}
    assert oracle.load("5")["already_loaded"] and pool.steps() == [5]
    with pytest.raises(ModelNotLoaded):
        oracle.stream(6, message="hi")
    with pytest.raises(OracleError, match="context"):
        oracle.stream(5, message="hi", sampling={"max_new_tokens": 1020})
    with pytest.raises(OracleError, match="over the Oracle's limit"):
        oracle.stream(5, message="x" * 100_001)
    with pytest.raises(UnknownCheckpoint, match=r"no inference host 'gpu'; hosts: \['local'\]"):
        oracle.stream(5, message="hi", host="gpu")
    reply = oracle.chat(5, message="What is 1+1?", sampling={"max_new_tokens": 6})
    m = pool.get(5)
    ref = greedy(m.model, m.tokenizer, ASK, 6)
    assert reply["ok"] and reply["success"] and "type" not in reply
    assert reply["content"] == m.tokenizer.decode(ref, skip_special_tokens=True)
    assert reply["usage"]["completion_tokens"] == len(ref) and reply["model"] == "m5"
    assert oracle.status() == {"hosts": {LOCAL: pool.status()}}
    assert oracle.unload(5) == {"host": LOCAL, "ok": True, "unloaded": 5, "model": "m5", "loaded": []}
    with pytest.raises(RuntimeError, match="ended without a final event"):
        final_reply(iter([{"type": "start"}]))


class CountingTokenizer:
    """What TokenBatches asks of a tokenizer: decode a list of ids (here, one letter each;
    id 0 is half of a character, shown as U+FFFD until the next id completes it)."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        text = "".join("abcdefghij"[i] for i in ids)
        return text[:-1] + "\ufffd" if text.endswith("a") else text


def next_within(it, bound_s: float = 30.0):
    """next(it) on a thread: fails when no batch came within the bound (a reader that waits
    for the end before handing anything over), instead of hanging the test."""
    out: list = []
    reader = threading.Thread(target=lambda: out.append(next(it)), daemon=True)
    reader.start()
    reader.join(bound_s)
    assert out, f"no batch within {bound_s} s"
    return out[0]


def test_token_batches_skip_the_prompt_and_hold_back_a_split_character():
    stream = TokenBatches(CountingTokenizer(), interval=0.01)
    assert stream.interval == 0.01 and stream.ids == [] and not stream.done
    stream.put(torch.tensor([[9, 9, 9]]))  # the prompt
    assert stream.ids == [] and not stream.ready.is_set()
    stream.put(torch.tensor([1]))
    assert stream.ids == [1] and stream.ready.is_set()
    it = iter(stream)
    assert next_within(it) == "b"
    stream.put(torch.tensor([2]))
    stream.put(torch.tensor([0]))  # half a character: held back
    assert next_within(it) == "c"
    stream.put(torch.tensor([3]))
    stream.end()
    assert stream.done and stream.ready.is_set()
    assert list(it) == ["ad"]


def test_batched_answers_equal_one_by_one_greedy_and_back_off_when_out_of_memory(
        dio_mini_dir, monkeypatch):
    model, tok = answering.load(dio_mini_dir)
    assert model.dtype == torch.float32 and not model.training
    # Two prompts of one token length and a longer one: two groups, never padded.
    questions = ["What is 1+1?", "What is 2+2?", "What is 12+30 and then 7*6?"]
    lengths = [len(tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                           tokenize=True, return_dict=True)["input_ids"]) for q in questions]
    assert lengths[0] == lengths[1] < lengths[2], lengths

    def one_by_one(n: int) -> list[str]:
        return [tok.decode(greedy(model, tok, [{"role": "user", "content": q}], n), skip_special_tokens=True)
                for q in questions]

    n = 10
    got = answering.answer(model, tok, questions, n, batch_size=4)
    assert got.texts == one_by_one(n) and all(got.texts)
    assert got.max_new_tokens == n and got.batch_size == 4 and got.backoffs == [] and got.seconds > 0

    # Every batch of more than one row runs out of memory: one at a time, the budget cut
    # to its floor, each back-off told; the answers are those of that budget.
    # (From the next generate of this process on: the fault counts this process's calls.)
    monkeypatch.setenv("REALM_FAULT", f"oom:generate@{answering._generate_calls + 1}:1")
    told: list[dict] = []
    least = answering.floor(n)
    backed = answering.answer(model, tok, questions, n, batch_size=4, on_backoff=told.append)
    assert backed.backoffs == told and len(told) == 1
    assert told[0]["from"] == {"batch": 2, "max_new_tokens": n}
    assert told[0]["to"] == {"batch": 1, "max_new_tokens": least}
    assert told[0]["error"].startswith("CUDA out of memory in the generate of step")
    assert backed.batch_size == 1 and backed.max_new_tokens == least
    assert backed.texts == one_by_one(least)
    # At batch 1 and the floor nothing smaller is left: the error goes to the caller.
    monkeypatch.setenv("REALM_FAULT", "oom:generate@1:0")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        answering.answer(model, tok, questions[:1], least, batch_size=1)


def test_the_answer_budget_is_the_longest_golden_answer_and_a_margin(dio_mini_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    golden = ["7", "1234567", "12"]
    longest = max(len(tok(g, add_special_tokens=False)["input_ids"]) for g in golden)
    assert longest > 1
    assert answering.budget(tok, golden) == longest + 1 + answering.EXTRA_TOKENS
    assert answering.budget(tok, []) == 1 + answering.EXTRA_TOKENS


def test_the_back_off_halves_the_batch_and_cuts_the_budget_to_its_floor():
    assert answering.floor(20) == 20 - answering.EXTRA_TOKENS and answering.floor(3) == 1
    assert answering.smaller(8, 20, 12) == (4, 12)
    assert answering.smaller(1, 20, 12) == (1, 12)
    assert answering.smaller(3, 12, 12) == (1, 12)
    assert answering.smaller(1, 12, 12) is None
    assert answering.smaller(1, 5, 12) is None


def test_a_copied_checkpoint_loads_under_its_own_path(dio_mini_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(dio_mini_dir, copy)
    pool = ModelPool(lambda step: ("copy", copy), max_models=1)
    assert pool.load(0)["model_path"] == str(copy)
    assert pool.load(1)["evicted"] == [0]
