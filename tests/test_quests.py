import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from realm_kernel.paths import RealmPaths
from realm_kernel.quests import check_name, fail, load_quest, move, next_quest

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
