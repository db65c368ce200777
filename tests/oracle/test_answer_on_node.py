"""What a cluster node runs for an eval's answers (oracle/cluster.py `answer_on_node`),
run here without Ray: pipelines/answer.ipynb under papermill fetches the checkpoint of
exactly that step into the node's cache and answers as this machine's batched greedy
answering does; a step no source holds fails, naming it. The Ray placement around it is
tests/services/test_cluster.py (slow)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.oracle import answering
from realm_kernel.oracle.cluster import answer_on_node
from realm_kernel.store.fetch import is_step

from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture


def test_a_node_answers_the_checkpoint_of_that_step_as_this_machine_does(oracle_home, tmp_path):
    path = Path(Realm(oracle_home.home).checkpoints.get(20).path)
    problems = skills.generate("bin", 1, 3, seed=3)
    questions, golden = [p.question for p in problems], [p.answer for p in problems]
    cache = tmp_path / "node-cache"

    out = answer_on_node(20, [str(path)], questions, golden, str(cache), 1)

    model, tok = answering.load(path, 1)
    here = answering.answer(model, tok, questions, answering.budget(tok, golden))
    assert out["answers"] == here.texts and len(out["answers"]) == 3
    assert out["step"] == 20 and out["checkpoint"] == path.name
    assert out["host"] == socket.gethostname() and out["seconds"] >= 0
    assert is_step(cache / path.name, 20)  # fetched into the node's cache by step

    with pytest.raises(PapermillExecutionError, match="checkpoint at step 10 not fetched"):
        answer_on_node(10, [str(path)], questions, golden, str(tmp_path / "other-cache"), 1)
