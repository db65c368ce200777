"""A streamed reply always ends, on the real dio-mini: the reader of the token batches stops
when the generation thread does, whatever the model's generate() did with the streamer
(a model's own generate may never call its end()), and a failed generation is raised.
Each stream is read on a thread with a bound, so a stream that never ends fails the test
instead of hanging it."""

from __future__ import annotations

import threading

import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.oracle.pool import ModelPool, RemoteError, Sampling

from ..oracle_helpers import oracle_home as oracle_home_fixture
from .test_pool_on_dio_mini import ASK, greedy, named

oracle_home = oracle_home_fixture

READ_BOUND_S = 30  # far over the second six tokens of dio-mini take, even on a loaded machine


def read_all(events) -> list:
    """Every event of a stream, read on a thread; fails when it has not ended in the bound."""
    out: list = []
    failure: list[BaseException] = []

    def read() -> None:
        try:
            out.extend(events)
        except BaseException as e:  # raised to the test below, not lost in the thread
            failure.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(READ_BOUND_S)
    assert not reader.is_alive(), f"the stream did not end within {READ_BOUND_S} s"
    if failure:
        raise failure[0]
    return out


def test_a_stream_ends_when_generate_never_ends_the_streamer(dio_mini_dir):
    pool = ModelPool(named(dio_mini_dir))
    pool.load(3)
    m = pool.get(3)
    ref = greedy(m.model, m.tokenizer, ASK, 6)
    real_generate = m.model.generate

    def generate_ignoring_the_streamer(*args, streamer=None, **kwargs):
        return real_generate(*args, **kwargs)

    m.model.generate = generate_ignoring_the_streamer
    events = read_all(pool.stream(3, ASK, Sampling(max_new_tokens=6)))
    assert [e["type"] for e in events] == ["start", "done"]  # no token was handed over
    assert events[-1]["content"] == m.tokenizer.decode(ref, skip_special_tokens=True) != ""
    assert events[-1]["usage"]["completion_tokens"] == len(ref)

    def failing_generate(*args, **kwargs):
        raise RuntimeError("the card fell over")

    m.model.generate = failing_generate
    with pytest.raises(RemoteError, match="generation on m3 failed: the card fell over"):
        read_all(pool.stream(3, ASK, Sampling(max_new_tokens=6)))


def test_a_reply_that_ends_its_turn_says_stop(oracle_home):
    """The trained checkpoint (dio-mini after 30 steps of BIN L1) ends its answer with its
    end-of-turn token well before the budget: the reply says `stop`, not `length`."""
    oracle = Realm(oracle_home.home).oracle
    oracle.load(30)
    question = skills.generate("bin", 1, 1, seed=5)[0].question
    events = read_all(oracle.stream(30, message=question, sampling={"max_new_tokens": 48}))
    done = events[-1]
    assert done["usage"]["completion_tokens"] < 48 and done["content"]
    assert done["finish_reason"] == "stop"
