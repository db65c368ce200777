"""Quest formats piece by piece: each example shape and each refusal with its exact reason,
the spec registry (deny by default), names, text checks and the report as `realm quest
validate` prints it. (Whole files through the queue are in test_quests.py and
test_formats.py; these pin what each function says, so a changed message or a flipped
check fails here.)"""

from __future__ import annotations

import types

import pytest

from realm_kernel.quests.formats import (
    MAX_PROBLEMS_REPORTED,
    SPECS,
    DatasetSpec,
    QuestError,
    QuestProblem,
    QuestReport,
    check_example,
    check_name,
    example_key,
    example_shape,
    example_spec,
    limits_of,
    register_spec,
    safe_name,
    text_problem,
)

ALL = tuple(SPECS)
ASSISTANT = {"role": "assistant", "content": "4"}
NOTHING = "no non-empty assistant message: nothing to learn from"


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


@pytest.mark.parametrize("obj, why", [
    ([1], "expected a JSON object, got list"),
    ({"messages": [ASSISTANT], "meta": 3}, "'meta' must be an object"),
    ({"messages": []}, "'messages' must be a non-empty list"),
    ({"messages": "hi"}, "'messages' must be a non-empty list"),
    ({"messages": ["hi"]}, "messages[0] must be an object with 'role' and 'content'"),
    ({"messages": [ASSISTANT, {"role": "tool", "content": "x"}]},
     "messages[1].role is 'tool'; expected one of ('system', 'user', 'assistant')"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content must be a string"),
    ({"messages": msgs(("user", "q"), ("assistant", "  "))}, NOTHING),
    ({"messages": msgs(("user", "q"))}, NOTHING),
    ({"prompt": "p"}, "'prompt' and a non-empty 'completion' must both be strings"),
    ({"prompt": 1, "completion": "c"}, "'prompt' and a non-empty 'completion' must both be strings"),
    ({"prompt": "p", "completion": " "}, "'prompt' and a non-empty 'completion' must both be strings"),
    ({"completion": "c"}, "'prompt' and a non-empty 'completion' must both be strings"),
    ({"text": "x"}, "expected 'messages' (OpenAI), 'prompt'/'completion', 'conversations' (ShareGPT) "
                    "or 'instruction'/'output' (Alpaca) keys"),
    ({"conversations": []}, "'conversations' must be a non-empty list"),
    ({"conversations": "x"}, "'conversations' must be a non-empty list"),
    ({"conversations": [{"from": "human", "value": "q"}, "gpt"]},
     "conversations[1] must be an object with 'from' and 'value'"),
    ({"conversations": [{"from": "tool", "value": "q"}]},
     "conversations[0].from is 'tool'; expected one of system, human, user, gpt, assistant, chatgpt, bing, "
     "bard (tool turns are not supported)"),
    ({"conversations": [{"from": "human", "value": None}]}, "conversations[0].value must be a string"),
    ({"conversations": [{"from": "human", "value": "q"}]}, NOTHING),
    ({"instruction": 1, "output": "o"}, "Alpaca 'instruction' must be a string"),
    ({"instruction": "i", "input": 2, "output": "o"}, "Alpaca 'input' must be a string"),
    ({"instruction": "i", "output": None}, "Alpaca 'output' must be a string"),
    ({"instruction": "i", "output": "o", "system": 3}, "Alpaca 'system' must be a string"),
    ({"instruction": " ", "output": "o"}, "Alpaca needs a non-empty 'instruction' and 'output'"),
    ({"instruction": "i", "output": " "}, "Alpaca needs a non-empty 'instruction' and 'output'"),
])
def test_each_refused_example_says_exactly_why(obj, why):
    assert check_example(obj) == (None, why)


def test_each_accepted_shape_becomes_clean_chat_with_its_meta():
    extra = {"role": "user", "content": "q", "name": "dropped"}
    assert check_example({"messages": [extra, ASSISTANT], "meta": {"skill": "bin"}}) == (
        {"messages": msgs(("user", "q"), ("assistant", "4")), "meta": {"skill": "bin"}}, None)
    assert check_example({"messages": [ASSISTANT], "meta": None}) == (
        {"messages": [ASSISTANT], "meta": {}}, None)
    assert check_example({"prompt": "", "completion": "c", "meta": {"k": 1}}) == (
        {"messages": msgs(("user", ""), ("assistant", "c")), "meta": {"k": 1}}, None)
    speakers = (("system", "s"), ("human", "h"), ("user", "u"), ("gpt", "g"), ("assistant", "a"),
                ("chatgpt", "c"), ("bing", "b"), ("bard", "d"))
    share = {"conversations": [{"from": f, "value": v} for f, v in speakers]}
    assert check_example(share)[0]["messages"] == msgs(
        ("system", "s"), ("user", "h"), ("user", "u"), ("assistant", "g"), ("assistant", "a"),
        ("assistant", "c"), ("assistant", "b"), ("assistant", "d"))
    # ShareGPT and Alpaca rows keep no meta of their own (the converted row has none).
    assert check_example({**share, "meta": {"skill": "x"}})[0]["meta"] == {"skill": "x"}
    assert check_example({"instruction": "Add.", "input": "2 3", "output": "5"})[0]["messages"] == msgs(
        ("user", "Add.\n\n2 3"), ("assistant", "5"))
    assert check_example({"instruction": "Hi.", "input": "  ", "output": "hi", "system": "Be kind."})[0][
        "messages"] == msgs(("system", "Be kind."), ("user", "Hi."), ("assistant", "hi"))
    assert check_example({"instruction": "Hi.", "output": "hi", "system": ""})[0]["messages"] == msgs(
        ("user", "Hi."), ("assistant", "hi"))


def test_example_shape_and_spec_deny_by_default():
    chat = {"messages": [ASSISTANT]}
    assert example_shape(chat) == "messages"
    assert example_shape({"prompt": "p"}) == example_shape({"completion": "c"}) == "prompt_completion"
    assert example_spec(chat, ALL) == ("chat", None)
    assert example_spec({"prompt": "p", "completion": "c"}, ALL) == ("completion", None)
    assert example_spec({**chat, "meta": {"skill": "bin", "level": 2}}, ALL) == ("skill", None)
    assert example_spec({**chat, "meta": {"skill": "bin"}}, ALL) == (None, "spec 'skill' needs meta.level")
    assert example_spec({**chat, "meta": {"spec": "skill"}}, ALL) == (
        None, "spec 'skill' needs meta.skill, meta.level")
    assert example_spec({**chat, "meta": {"skill": "bin", "level": 0}}, ALL) == ("skill", None)  # a level 0
    completion = {"prompt": "p", "completion": "c", "meta": {"skill": "bin"}}
    assert example_spec(completion, ALL) == ("completion", None)
    assert example_spec({**chat, "meta": {"spec": "sparring", "skill": "sy"}}, ALL) == ("sparring", None)
    assert example_spec({**chat, "meta": {"spec": "completion"}}, ALL) == (
        None, "spec 'completion' expects prompt/completion examples")
    assert example_spec({**chat, "meta": {"spec": "nope"}}, ALL) == (
        None, "dataset spec 'nope' is not registered (deny by default); "
              "accepted: chat, completion, skill, sparring")
    assert example_spec(chat, ("completion", "skill")) == (
        None, "dataset spec 'chat' is not enabled (deny by default); accepted: completion, skill")


def test_a_registered_spec_is_accepted_once_enabled():
    spec = DatasetSpec("graded", "messages", ("grade",), "graded answers")
    register_spec(spec)
    try:
        assert SPECS["graded"] is spec
        ex = {"messages": [ASSISTANT], "meta": {"spec": "graded", "grade": 3}}
        assert example_spec(ex, (*ALL, "graded")) == ("graded", None)
        assert example_spec(ex, ALL)[0] is None  # registered but not enabled
        assert example_spec({"messages": [ASSISTANT], "meta": {"spec": "graded"}}, (*ALL, "graded")) == (
            None, "spec 'graded' needs meta.grade")
    finally:
        del SPECS["graded"]


def test_names_checked_and_made_safe():
    for ok in ("q.jsonl", "Q-1_a.b.json", "9.parquet", "a" * 145 + ".json"):
        assert check_name(ok) is None, ok
    unsafe = ("unsafe file name {!r}: use letters, digits, '.', '_' and '-' only, "
              "starting with a letter or digit")
    for bad in (".hidden.jsonl", "-x.jsonl", "a b.jsonl", "a/b.jsonl", "a..b.jsonl", "ü.jsonl",
                "a" * 152 + ".json", ""):
        assert check_name(bad) == unsafe.format(bad), bad
    assert check_name("q.txt") == "unsupported file type 'q.txt': expected one of .jsonl, .json, .parquet"
    assert check_name("q.JSONL") == "unsupported file type 'q.JSONL': expected one of .jsonl, .json, .parquet"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("a b\tc.jsonl") == "a_b_c.jsonl"
    assert safe_name("x..y") == "x_y"
    assert safe_name("._-") == safe_name("") == "quest"
    assert safe_name("é" * 5 + "q") == "q"
    assert safe_name("a" * 300) == "a" * 120


def test_text_problems_and_example_keys():
    assert text_problem({"messages": msgs(("user", "ok"), ("assistant", "fine"))}, 6) is None
    assert text_problem({"messages": msgs(("user", "ok"), ("assistant", "fine"))}, 5) == (
        "example has 6 characters, over the 5-character limit")
    assert text_problem({"messages": msgs(("user", "ok"), ("assistant", "a\x00b"))}, 100) == (
        "messages[1].content contains a NUL character")
    assert text_problem({"messages": msgs(("user", "\ud800"))}, 100) == (
        "messages[0].content is not valid Unicode (a lone surrogate)")
    a = {"messages": msgs(("user", "q"), ("assistant", "4")), "meta": {"x": 1}}
    b = {"messages": [{"content": "q", "role": "user"}, {"content": "4", "role": "assistant"}]}
    assert example_key(a) == example_key(b)  # key order and meta do not matter
    assert len(example_key(a)) == 40
    assert example_key(a) != example_key({"messages": msgs(("user", "q"), ("assistant", "5"))})
    assert example_key({"messages": msgs(("user", "\ud800"))})  # even a lone surrogate has a key


def test_limits_come_from_the_realm_config():
    quests = types.SimpleNamespace(max_examples=20, max_example_chars=30, specs=["chat"])
    cfg = types.SimpleNamespace(daemon=types.SimpleNamespace(max_quest_bytes=10), quests=quests)
    lim = limits_of(cfg)
    assert (lim.max_bytes, lim.max_examples, lim.max_example_chars, lim.specs) == (10, 20, 30, ("chat",))
    assert lim.quick_examples == 100


def test_the_report_counts_caps_and_renders_what_validate_prints():
    assert str(QuestProblem(3, "bad")) == "line 3: bad"
    assert str(QuestProblem(None, "bad")) == "bad"
    ok = QuestReport("q.jsonl", examples=2, specs={"skill": 1, "chat": 1}, sha256="ab", max_tokens=9,
                     token_limit=64)
    ok.warn(2, "dup")
    assert ok.ok and ok.summary() == "q.jsonl: ok, 2 examples"
    assert ok.render() == "\n".join([
        "q.jsonl: OK (standard check)", "  examples: 2", "  specs: chat x1, skill x1",
        "  longest example: 9 tokens (limit 64)", "  sha256: ab", "  warning: line 2: dup"])
    bad = QuestReport("b.jsonl", depth="quick")
    for i in range(MAX_PROBLEMS_REPORTED + 5):
        bad.add(i + 1, "x")
        bad.warn(i + 1, "w")
    assert not bad.ok
    assert len(bad.problems) == len(bad.warnings) == MAX_PROBLEMS_REPORTED
    assert bad.problems[-1] == QuestProblem(MAX_PROBLEMS_REPORTED, "x")
    bad2 = QuestReport("c.json")
    bad2.add(None, "empty file")
    bad2.add(4, "no")
    assert bad2.summary() == "c.json: empty file; line 4: no"
    assert bad2.render() == "c.json: REJECTED (standard check)\n  error: empty file\n  error: line 4: no"
    assert bad2.as_dict()["problems"] == [{"line": None, "message": "empty file"},
                                          {"line": 4, "message": "no"}]
    assert bad2.as_dict()["ok"] is False and bad2.as_dict()["file"] == "c.json"
    err = QuestError(bad2)
    assert str(err) == bad2.summary() and err.report is bad2
    assert isinstance(err, ValueError)
