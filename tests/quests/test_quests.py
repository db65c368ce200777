import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from realm_kernel.quests.formats import check_name, load_quest
from realm_kernel.quests.queue import fail, move, next_quest
from realm_kernel.store.paths import RealmPaths

GOOD = {"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}


@pytest.fixture
def paths(tmp_path):
    return RealmPaths.at(tmp_path).ensure()


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_valid_jsonl_json_parquet_and_prompt_completion(tmp_path):
    a = write(tmp_path / "a.jsonl", [json.dumps(GOOD), "", json.dumps({"prompt": "p", "completion": "c"})])
    ex, rep = load_quest(a)
    assert rep.ok and rep.examples == 2 and ex[1]["messages"][1] == {"role": "assistant", "content": "c"}
    b = tmp_path / "b.json"
    b.write_text(json.dumps([GOOD, GOOD]))
    assert load_quest(b)[1].examples == 2
    c = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "x", "completion": "y"}]), c)
    assert load_quest(c)[1].examples == 1


@pytest.mark.parametrize("lines, line, fragment", [
    ([json.dumps(GOOD), "{not json"], 2, "invalid JSON"),
    ([json.dumps({"messages": [{"role": "wizard", "content": "x"}]})], 1, "role is 'wizard'"),
    ([json.dumps({"messages": [{"role": "user", "content": "only a question"}]})], 1,
     "no non-empty assistant"),
    ([json.dumps({"text": "hello"})], 1, "expected 'messages'"),
    ([json.dumps([1, 2])], 1, "expected a JSON object"),
    ([json.dumps({"messages": [{"role": "user", "content": 5}]})], 1, "content must be a string"),
])
def test_bad_lines_are_named(tmp_path, lines, line, fragment):
    _, rep = load_quest(write(tmp_path / "q.jsonl", lines))
    assert not rep.ok
    assert rep.problems[0].line == line and fragment in rep.problems[0].message
    assert f"line {line}" in rep.summary()


def test_whole_file_problems(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty file" in load_quest(empty)[1].summary()
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\xff\xfe\x00binary")
    assert "not UTF-8" in load_quest(junk)[1].summary()
    big = write(tmp_path / "big.jsonl", [json.dumps(GOOD)] * 10)
    assert "limit" in load_quest(big, max_bytes=100)[1].summary()
    notlist = tmp_path / "n.json"
    notlist.write_text("{}")
    assert "must be a list" in load_quest(notlist)[1].summary()


@pytest.mark.parametrize("name", ["../x.jsonl", "a b.jsonl", "x;rm -rf.jsonl", ".hidden.jsonl",
                                  "a\nb.jsonl", "q.txt", "/etc/passwd", "$(id).jsonl"])
def test_unsafe_names(name):
    assert check_name(name)


def test_symlink_rejected(tmp_path):
    target = write(tmp_path / "real.jsonl", [json.dumps(GOOD)])
    link = tmp_path / "link.jsonl"
    os.symlink(target, link)
    assert "symbolic link" in load_quest(link)[1].summary()


def test_fail_keeps_the_file_and_writes_a_reason(paths):
    bad = write(paths.inbox / "bad.jsonl", ["nope"])
    _, rep = load_quest(bad)
    dest = fail(paths, bad, rep)
    assert dest.read_text() == "nope\n" and not bad.exists()
    reason = json.loads(dest.with_name(dest.name + ".reason.json").read_text())
    assert reason["problems"][0]["line"] == 1 and "invalid JSON" in reason["summary"]


def test_move_never_overwrites(paths):
    a = write(paths.inbox / "q.jsonl", ["1"])
    first = move(a, paths.queue("normal"))
    b = write(paths.inbox / "q.jsonl", ["2"])
    second = move(b, paths.queue("normal"))
    assert first != second and first.read_text() == "1\n" and second.read_text() == "2\n"


def test_next_quest_takes_priority_then_age(paths):
    assert next_quest(paths) is None
    low = write(paths.queue("low") / "l.jsonl", ["x"])
    n1 = write(paths.queue("normal") / "n1.jsonl", ["x"])
    n2 = write(paths.queue("normal") / "n2.jsonl", ["x"])
    os.utime(n1, (1, 1000))
    os.utime(n2, (1, 2000))
    assert next_quest(paths) == (n1, "normal")
    high = write(paths.queue("high") / "h.jsonl", ["x"])
    assert next_quest(paths) == (high, "high")
    assert low.exists()


def test_next_quest_is_oldest_first_within_a_priority_and_names_break_ties(paths):
    ages = {"c.jsonl": 3000, "a.jsonl": 1000, "b.jsonl": 2000, "z.jsonl": 1000, "y.jsonl": 500}
    for name, age in ages.items():
        os.utime(write(paths.queue("normal") / name, ["x"]), (age, age))
    taken = []
    while (found := next_quest(paths)) is not None:
        taken.append(found[0].name)
        found[0].unlink()
    assert taken == ["y.jsonl", "a.jsonl", "z.jsonl", "b.jsonl", "c.jsonl"]


# -- validation depths, specs, duplicates, priorities, queue edits ----------------------

from pathlib import Path  # noqa: E402

from realm_kernel.quests.formats import Depth, Limits, priority_of, validate_quest  # noqa: E402
from realm_kernel.quests.queue import (  # noqa: E402
    QueueConflict,
    QueueError,
    delete_quest,
    queued,
    reorder,
    set_priority,
)


def test_spec_registry_is_deny_by_default(tmp_path):
    skill = {**GOOD, "meta": {"skill": "bin", "level": 1}}
    ok = write(tmp_path / "ok.jsonl", [json.dumps(GOOD), json.dumps(skill),
                                      json.dumps({"prompt": "p", "completion": "c"})])
    _, rep = validate_quest(ok)
    assert rep.ok and rep.specs == {"chat": 1, "skill": 1, "completion": 1}
    unknown = write(tmp_path / "u.jsonl", [json.dumps({**GOOD, "meta": {"spec": "mystery"}})])
    _, rep = validate_quest(unknown)
    assert not rep.ok and "not registered (deny by default)" in rep.summary()
    _, rep = validate_quest(ok, limits=Limits(specs=("chat", "completion")))
    assert not rep.ok and "'skill' is not enabled" in rep.summary() and rep.problems[0].line == 2
    sparring = write(tmp_path / "s.jsonl", [json.dumps({**GOOD, "meta": {"spec": "sparring"}})])
    assert "needs meta.skill" in validate_quest(sparring)[1].summary()


def test_encoding_size_and_duplicate_checks(tmp_path):
    nul = {"messages": [{"role": "user", "content": "a\x00b"}, {"role": "assistant", "content": "c"}]}
    lone = '{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "c"}]}'
    f = write(tmp_path / "enc.jsonl", [json.dumps(nul), lone])
    rep = validate_quest(f)[1]
    assert [p.line for p in rep.problems] == [1, 2]
    assert "NUL" in rep.problems[0].message and "surrogate" in rep.problems[1].message
    big = write(tmp_path / "big.jsonl", [json.dumps(GOOD)])
    assert "character limit" in validate_quest(big, limits=Limits(max_example_chars=2))[1].summary()
    many = write(tmp_path / "many.jsonl", [json.dumps(GOOD)] * 3)
    assert "example limit" in validate_quest(many, limits=Limits(max_examples=2))[1].summary()
    ex, rep = validate_quest(many)
    assert rep.ok and len(ex) == 3 and rep.duplicates == 2  # duplicates warn, never reject
    assert "duplicate of the example on line 1" in rep.render()
    _, again = validate_quest(many, known={rep.sha256: "many.jsonl"})
    assert not again.ok and "duplicate quest" in again.summary()


def test_quick_checks_the_head_and_deep_checks_tokens(tmp_path):
    lines = [json.dumps(GOOD)] * 150 + [json.dumps({"text": "no schema"})]
    f = write(tmp_path / "long.jsonl", lines)
    assert validate_quest(f, Depth.QUICK)[1].ok  # only the first 100 examples are looked at
    assert not validate_quest(f, Depth.STANDARD)[1].ok
    short = write(tmp_path / "short.jsonl", [json.dumps(GOOD), json.dumps(
        {"messages": [{"role": "user", "content": "x" * 50}, {"role": "assistant", "content": "y"}]})])

    def count(batch):  # one token per character, as a stand-in tokenizer
        return [sum(len(m["content"]) for m in msgs) for msgs in batch]

    _, rep = validate_quest(short, Depth.DEEP, count_tokens=count, token_limit=10)
    assert not rep.ok and rep.problems[0].line == 2 and "51 tokens" in rep.problems[0].message
    assert rep.max_tokens == 51 and "longest example: 51 tokens (limit 10)" in rep.render()
    assert "needs the hero's tokenizer" in validate_quest(short, Depth.DEEP)[1].summary()


@pytest.mark.parametrize("rel, prio", [
    ("q.jsonl", "normal"), ("high/q.jsonl", "high"), ("low/x/q.jsonl", "low"),
    ("q.high.jsonl", "high"), ("q.low.parquet", "low"), ("team/q.jsonl", "normal"),
    ("sparring-bin-1.jsonl", "high"), ("low/sparring-x.low.jsonl", "high"), ("high.jsonl", "normal"),
])
def test_priority_of(rel, prio):
    assert priority_of(Path(rel)) == prio


def test_queue_edits(paths):
    names = []
    for i in range(3):
        p = write(paths.queue("normal") / f"q{i}.jsonl", ["x"])
        os.utime(p, (1, 1000 + i))
        names.append(p.name)
    assert reorder(paths, "q2.jsonl", 0) == ["q2.jsonl", "q0.jsonl", "q1.jsonl"]
    assert [p.name for p in queued(paths, "normal")] == ["q2.jsonl", "q0.jsonl", "q1.jsonl"]
    assert next_quest(paths)[0].name == "q2.jsonl"
    moved = set_priority(paths, "q1.jsonl", "high")
    assert moved.parent == paths.queue("high") and next_quest(paths) == (moved, "high")
    with pytest.raises(ValueError):
        set_priority(paths, "q0.jsonl", "urgent")
    with pytest.raises(QueueError):
        set_priority(paths, "../q0.jsonl", "high")
    write(paths.queue("processing") / "busy.jsonl", ["x"])
    with pytest.raises(QueueConflict):
        delete_quest(paths, "busy.jsonl")
    with pytest.raises(QueueError):  # in training: not waiting at any priority
        set_priority(paths, "busy.jsonl", "low")
    path, state = delete_quest(paths, "q0.jsonl")
    assert state == "normal" and not path.exists()
    with pytest.raises(QueueError):
        delete_quest(paths, "q0.jsonl")


def test_validate_queue_does_not_call_an_admitted_quest_its_own_duplicate(tmp_path):
    """A quest admitted with its ledger row is checked again by the validate_queue task:
    its own row is no duplicate, a second copy of its content in another file is."""
    from realm_kernel.api import Realm
    from realm_kernel.quests.publish import publish
    realm = Realm(tmp_path / "realm")
    lines = [json.dumps(GOOD), json.dumps({"prompt": "2+2?", "completion": "4"})]
    publish(realm.paths, realm.ledger, realm.config, "first.jsonl",
            lambda dest: write(dest, lines), queue="normal")
    assert realm.quests.validate_queue() == [{"quest": "first.jsonl", "priority": "normal", "ok": True,
                                       "examples": 2, "summary": realm.quests.validate_queue()[0]["summary"]}]
    write(realm.paths.queue("low") / "copy.jsonl", lines)
    reports = {r["quest"]: r for r in realm.quests.validate_queue()}
    assert reports["first.jsonl"]["ok"]
    assert not reports["copy.jsonl"]["ok"] and "duplicate quest" in reports["copy.jsonl"]["summary"]
    assert "'first.jsonl'" in reports["copy.jsonl"]["summary"]


def test_known_quests_are_the_live_ones(tmp_path):
    from realm_kernel.api import Realm
    from realm_kernel.quests.admission import known_quests
    realm = Realm(tmp_path / "realm")
    realm.ledger.append("quests", [
        {"quest_id": f"{s}.jsonl", "status": s, "sha256": f"sha-{s}"}
        for s in ("queued", "processing", "completed", "failed", "skipped")])
    realm.ledger.append("quests", [{"quest_id": "later.jsonl", "status": "queued", "sha256": "sha-later"},
                                   {"quest_id": "later.jsonl", "status": "failed"}])
    assert known_quests(realm.ledger) == {"sha-queued": "queued.jsonl",
                                          "sha-processing": "processing.jsonl",
                                          "sha-completed": "completed.jsonl"}


def test_list_queue_and_waiting(paths):
    from realm_kernel.quests.queue import list_queue, waiting
    old = write(paths.queue("low") / "old.jsonl", ["x"])
    new = write(paths.queue("low") / "new.jsonl", ["xy"])
    os.utime(old, (1, 1000))
    os.utime(new, (1, 2000))
    write(paths.queue("low") / ".hidden.jsonl", ["x"])
    bad = write(paths.queue("failed") / "bad.jsonl", ["x"])
    (paths.queue("failed") / "bad.jsonl.reason.json").write_text(json.dumps({"summary": "line 1: oops"}))
    write(paths.queue("failed") / "odd.jsonl", ["x"])
    (paths.queue("failed") / "odd.jsonl.reason.json").write_text("{not json")
    write(paths.queue("processing") / "busy.jsonl", ["x"])
    q = list_queue(paths)
    assert [e["name"] for e in q["low"]] == ["old.jsonl", "new.jsonl"]
    assert q["low"][1] == {"name": "new.jsonl", "bytes": 3, "mtime": 2000}
    assert {e["name"]: e.get("reason") for e in q["failed"]} == {
        "bad.jsonl": "line 1: oops", "odd.jsonl": "unreadable reason file"}
    assert bad.exists() and [e["name"] for e in q["processing"]] == ["busy.jsonl"]
    for folder in (paths.inbox / "sub", paths.inbox / ".staging" / "x"):
        folder.mkdir(parents=True)
    write(paths.inbox / "sub" / "in.jsonl", ["x"])
    write(paths.inbox / ".staging" / "x" / "staged.jsonl", ["x"])
    assert waiting(paths) == 4  # old, new, busy, in; not failed, hidden or staged files
