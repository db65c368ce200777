"""`realm oracle chat` prints the reply itself, in seconds: on dio-mini's base model
(step 0), stdout is exactly the Oracle's greedy answer, and the model's name and path go
to stderr. test_cli.py's call (slow, on a trained realm) checks the stderr line."""

from __future__ import annotations

from typer.testing import CliRunner

from realm_kernel.api import Realm
from realm_kernel.cli import app

QUESTION = "What is ①+①?"


def test_oracle_chat_prints_the_oracles_own_greedy_reply(realm_home):
    oracle = Realm(realm_home.home).oracle
    oracle.load(0)
    expected = oracle.chat(
        0, message=QUESTION, sampling={"max_new_tokens": 6, "temperature": 0.0})
    assert expected["content"].strip(), "the base model says something within 6 tokens"
    res = CliRunner().invoke(app, ["--home", str(realm_home.home), "oracle", "chat", "--step", "0",
                                   "-m", QUESTION, "--max-new-tokens", "6"], prog_name="realm")
    assert res.exit_code == 0, (res.output, res.exception)
    assert res.stdout == expected["content"] + "\n"
    assert f"path: {expected['model_path']}" in res.stderr and expected["model"] in res.stderr
    assert expected["content"] not in res.stderr, "the reply is on stdout, not mixed into stderr"


def test_oracle_chat_refuses_a_step_with_no_checkpoint(realm_home):
    res = CliRunner().invoke(app, ["--home", str(realm_home.home), "oracle", "chat", "--step", "77",
                                   "-m", "hi"], prog_name="realm")
    assert res.exit_code == 1 and "error" in res.stderr and res.stdout == ""
