"""The Oracle's input rules at their edges, word for word: a step below zero, an empty
chat, a seed at 2**63 (one past the largest allowed), a repetition penalty of exactly 100
(allowed), and a pool whose byte bound is exactly the weights' size (they fit)."""

from __future__ import annotations

import pytest

from realm_kernel.oracle.pool import ModelPool, OracleError, Sampling, chat_messages, disk_bytes, require_step

from .test_pool_on_dio_mini import named


def test_refusals_say_what_was_wrong():
    with pytest.raises(OracleError) as below:
        require_step(-1)
    assert str(below.value) == "step must be a whole number >= 0, got -1"
    with pytest.raises(OracleError) as empty:
        chat_messages(messages=[])
    assert str(empty.value) == "`messages` must be a non-empty list of {role, content}"


def test_sampling_edges_are_the_documented_ones():
    assert Sampling.from_dict({"seed": 2**63 - 1}).seed == 2**63 - 1
    with pytest.raises(OracleError, match=r"seed must be a non-negative integer \(got 9223372036854775808\)"):
        Sampling.from_dict({"seed": 2**63})
    assert Sampling.from_dict({"repetition_penalty": 100}).repetition_penalty == 100
    with pytest.raises(OracleError, match="out of range"):
        Sampling.from_dict({"repetition_penalty": 100.5})


def test_weights_exactly_the_byte_bound_fit(dio_mini_dir):
    pool = ModelPool(named(dio_mini_dir), max_bytes=disk_bytes(dio_mini_dir))
    assert pool.load(1)["step"] == 1 and pool.steps() == [1]
