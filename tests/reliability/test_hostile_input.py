"""Hostile input against one real daemon: each bad quest file is refused with a reason
that names the problem, the daemon never dies or stalls, nothing outside the realm is
touched; then bad realm.toml values and bad skill YAML. The REST cases are in
test_api_security.py."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.store.status import DAEMON, read_status

from ..helpers import TEST_TOML, make_home, start_daemon, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

# The suite's usual realm, with a 1 MB file limit, slower settling and DEEP validation.
TOML = TEST_TOML.replace("settle_seconds = 0.2", "settle_seconds = 1.0\nmax_quest_bytes = 1000000") + """
[quests]
validation_depth = "deep"
max_examples = 5000
max_example_chars = 20000
"""


def chat(user: str = "2+2?", answer: str = "4", **extra) -> dict:
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": answer}], **extra}


def line(obj) -> str:
    return json.dumps(obj) + "\n"


GOOD = line(chat())
RNG = random.Random(9)
# (file name as dropped, bytes, a fragment the reason must contain)
FILE_CASES: list[tuple[str, bytes, str]] = [
    ("invalid-json.jsonl", (GOOD + "{oops\n").encode(), "line 2: invalid JSON"),
    ("trailing-garbage.jsonl", (GOOD.strip() + " xyz\n").encode(), "line 1: invalid JSON"),
    ("deep-nesting.jsonl", ("[" * 100_000 + "\n").encode(), "nested too deeply"),
    ("not-an-object.jsonl", b"[1, 2, 3]\n", "expected a JSON object, got list"),
    ("a-string.jsonl", b'"hello"\n', "expected a JSON object, got str"),
    ("wrong-schema.jsonl", line({"text": "hi"}).encode(), "expected 'messages' (OpenAI), 'prompt'"),
    ("bad-role.jsonl", line({"messages": [{"role": "wizard", "content": "x"}]}).encode(),
     "role is 'wizard'"),
    ("content-not-string.jsonl", line({"messages": [{"role": "assistant", "content": 5}]}).encode(),
     "content must be a string"),
    ("no-assistant.jsonl", line({"messages": [{"role": "user", "content": "hi"}]}).encode(),
     "no non-empty assistant message"),
    ("empty-messages.jsonl", line({"messages": []}).encode(), "'messages' must be a non-empty list"),
    ("meta-not-object.jsonl", line(chat(meta=[1])).encode(), "'meta' must be an object"),
    ("empty-completion.jsonl", line({"prompt": "p", "completion": " "}).encode(),
     "non-empty 'completion'"),
    ("empty.jsonl", b"", "empty file"),
    ("blank-lines.jsonl", b"\n  \n\n", "no examples in file"),
    ("huge.jsonl", GOOD.encode() * (1_000_000 // len(GOOD) + 10), "over the 1000000-byte limit"),
    ("too-many-examples.jsonl", "".join(line(chat(str(i))) for i in range(5001)).encode(),
     "over the 5000-example limit"),
    ("binary-junk.jsonl", bytes(RNG.getrandbits(8) for _ in range(4096)), "not UTF-8"),
    ("latin-1.jsonl", line(chat("café", "oui")).replace("\\u00e9", "é").encode("latin-1"),
     "not UTF-8 text"),
    ("utf-16.jsonl", GOOD.encode("utf-16"), "not UTF-8 text"),
    ("long-line.jsonl", line(chat("x" * 50_000)).encode(), "over the 20000-character limit"),
    ("over-max-length.jsonl", line(chat(" ".join(["seven"] * 600))).encode(),
     "tokens, over the hero's limit of 128"),
    ("nul-char.jsonl", line(chat("a\u0000b")).encode(), "NUL character"),
    ("lone-surrogate.jsonl", b'{"messages": [{"role": "user", "content": "\\ud800"}, '
                             b'{"role": "assistant", "content": "x"}]}\n', "lone surrogate"),
    ("unknown-spec.jsonl", line(chat(meta={"spec": "evil"})).encode(),
     "dataset spec 'evil' is not registered"),
    ("skill-without-level.jsonl", line(chat(meta={"spec": "skill", "skill": "bin"})).encode(),
     "needs meta.level"),
    ("not-a-list.json", b'{"messages": []}', "must be a list of examples"),
    ("junk.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
    ("notes.txt", GOOD.encode(), "unsupported file type"),
    ("a..b.jsonl", GOOD.encode(), "unsafe file name"),
    ("new\nline.jsonl", GOOD.encode(), "unsafe file name"),
    ("x;rm -rf ~.jsonl", GOOD.encode(), "unsafe file name"),
    ("$(touch pwned).jsonl", GOOD.encode(), "unsafe file name"),
    ("-rf.jsonl", GOOD.encode(), "unsafe file name"),
    ("quête.jsonl", GOOD.encode(), "unsafe file name"),
    ("n" * 200 + ".jsonl", GOOD.encode(), "unsafe file name"),
]


def drop(inbox, name: str, data: bytes) -> None:
    """Publish a file whole (temp name the daemon ignores, then one rename)."""
    tmp = inbox / f".{abs(hash(name))}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, inbox / name)


def reasons(paths) -> dict[str, dict]:
    out = {}
    for f in paths.queue("failed").glob("*.reason.json"):
        r = json.loads(f.read_text())
        out[r["file"]] = r
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, dio_mini_dir, module_procs):
    paths = make_home(tmp_path_factory.mktemp("realm"), dio_mini_dir, TOML)
    daemon = start_daemon(module_procs, paths)
    wait_for(lambda: read_status(paths, DAEMON).get("state") == "idle", 120, "the daemon")
    return paths, daemon


def test_hostile_quest_files_are_refused_by_name_and_the_daemon_lives(hostile, tmp_path, capsys):
    paths, daemon = hostile
    realm = Realm(paths.home)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target.jsonl"
    target.write_text(GOOD * 3)
    (outside / "inner.jsonl").write_text(GOOD * 4)
    cases = list(FILE_CASES)
    for name, data, _ in cases:
        drop(paths.inbox, name, data)
    (paths.inbox / "link.jsonl").symlink_to(target)
    (paths.inbox / "linked-dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(paths.inbox / "pipe.jsonl")
    cases += [("link.jsonl", b"", "symbolic links are not accepted"),
              ("linked-dir", b"", "symbolic links are not accepted"),
              ("pipe.jsonl", b"", "not a regular file")]
    # A duplicate: the same content as a quest already queued.
    drop(paths.inbox, "original.jsonl", (GOOD * 2).encode())
    wait_for(lambda: realm.ledger.scalar("SELECT status FROM quest_status WHERE quest_id = "
                                         "'original.jsonl'"), 60, "the original to be queued")
    drop(paths.inbox, "copy.jsonl", (GOOD * 2).encode())
    cases.append(("copy.jsonl", b"", "duplicate quest"))

    wanted = {name for name, _, _ in cases}
    got = wait_for(lambda: (r := reasons(paths)) and wanted <= set(r) and r, 180,
                   "every hostile file to be refused")
    for name, _, fragment in cases:
        assert fragment in got[name]["summary"], (name, got[name]["summary"])
        assert (paths.queue("failed") / got[name]["stored_as"]).exists() or name == "pipe.jsonl"
    # Refused, recorded, and nothing outside the realm touched or created. The ledger row
    # follows the move to failed/ (and its reason file) by a moment.
    stored = {got[n]["stored_as"] for n in wanted}

    def failed_rows() -> set[str]:
        return {r["quest_id"] for r in realm.sql("SELECT quest_id FROM quest_status "
                                                 "WHERE status = 'failed'")}

    wait_for(lambda: stored <= failed_rows(), 30, "a failed row for every refused file")
    assert stored <= failed_rows()
    assert target.read_text() == GOOD * 3 and (outside / "inner.jsonl").exists()
    assert not list(paths.home.rglob("pwned")) and not os.path.exists("pwned")
    assert not [p for p in paths.inbox.iterdir() if not p.name.startswith(".")]
    assert daemon.poll() is None and read_status(paths, DAEMON)["pid"] == daemon.pid
    with capsys.disabled():
        print(f"\nhostile quest files: {len(cases)} tried, {len(cases)} refused by name")


def test_files_still_being_written_are_taken_whole(hostile):
    """A file growing in the inbox is admitted only once it settles, with every line; a
    `.part` file is ignored until it is renamed."""
    paths, daemon = hostile
    realm = Realm(paths.home)
    lines = [line(chat(f"slow {i}?", str(i))) for i in range(40)]

    def write_slowly() -> None:
        with open(paths.inbox / "growing.jsonl", "w") as f:
            for chunk in lines:
                f.write(chunk[:10])
                f.flush()
                time.sleep(0.02)  # sleep-ok: a file written slowly is what this tests
                f.write(chunk[10:])
                f.flush()
                time.sleep(0.02)  # sleep-ok: as above

    writer = threading.Thread(target=write_slowly)
    writer.start()
    (paths.inbox / "upload.jsonl.part").write_text("".join(line(chat(f"p{i}")) for i in range(7)))
    writer.join()

    def examples(name):
        return realm.ledger.scalar("SELECT examples FROM quests WHERE quest_id = ? AND "
                                   "status = 'queued' ORDER BY ts LIMIT 1", [name])

    # The growing file's admission proves the daemon scanned the inbox with the .part
    # file in it (written before the growing file settled): it left the .part alone.
    assert wait_for(lambda: examples("growing.jsonl"), 60, "the growing file") == 40
    assert (paths.inbox / "upload.jsonl.part").exists(), "a .part file is left alone"
    assert examples("upload.jsonl.part") is None
    os.replace(paths.inbox / "upload.jsonl.part", paths.inbox / "upload.jsonl")
    assert wait_for(lambda: examples("upload.jsonl"), 60, "the renamed upload") == 7
    assert not (paths.queue("failed") / "growing.jsonl").exists()
    # Still training: the good quests complete.
    wait_for(lambda: (paths.queue("recently_completed") / "upload.jsonl").exists(), 180,
             "the daemon to train after the hostile files")
    assert daemon.poll() is None


# (realm.toml text, a fragment the config_error event must contain)
CONFIG_CASES = [
    ("[training]\nbatch_size = 0\n", "training.batch_size"),
    ('[training]\nlearning_rate = "fast"\n', "training.learning_rate"),
    ("[training]\nbatchsize = 3\n", "training.batchsize: Extra inputs are not permitted"),
    ("[training\nbatch_size = 3\n", "not valid TOML"),
    ("[dungeon]\ndepth = 9\n", "dungeon: Extra inputs are not permitted"),
    ('[training]\ndtype = "float8"\n', "training.dtype"),
    ("[daemon]\npoll_seconds = -1\n", "daemon.poll_seconds"),
    ("[training]\nmax_steps = -5\n", "training.max_steps"),
]


def put(path, data: bytes) -> None:
    """Replace a file whole, as editors save: a plain write_text truncates first, and a
    daemon reading in between sees an empty realm.toml, which is valid (the defaults)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_bad_realm_toml_is_refused_and_the_last_good_config_kept(hostile, capsys):
    paths, daemon = hostile
    realm = Realm(paths.home)
    good = paths.config_file.read_text()
    tried = 0
    try:
        for text, fragment in [*CONFIG_CASES, (None, "invalid start byte")]:
            if text is None:
                put(paths.config_file, b"[training]\nbatch_size = 8 \xff\xfe\n")
            else:
                put(paths.config_file, text.encode())
            event = wait_for(lambda f=fragment: realm.sql(
                f"SELECT message FROM events WHERE kind = 'config_error' AND "
                f"contains(message, '{f}') LIMIT 1"), 30, f"config_error naming {fragment}")
            assert "realm.toml" in event[0]["message"]
            assert realm.training.status()["state"] != "offline", "status still answers"
            tried += 1
        # realm.toml is still unreadable: the daemon works on with the last good values,
        # not the defaults (realm.toml's 20000-character example limit, not 200000).
        drop(paths.inbox, "kept-config.jsonl", line(chat("long?", "x" * 30_000)).encode())
        reason = wait_for(lambda: reasons(paths).get("kept-config.jsonl"), 60, "the long example refused")
        assert "over the 20000-character limit" in json.dumps(reason), reason
    finally:
        put(paths.config_file, good.encode())
    assert daemon.poll() is None
    # One event per distinct problem, not one per tick.
    n = realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'config_error'")
    assert n <= tried + 2, n
    with capsys.disabled():
        print(f"\nbad realm.toml: {tried} tried, {tried} refused with the key named")


SKILL_CASES = [
    (b"id: bin\nname: [unclosed\n", "invalid YAML"),
    (b"- just\n- a list\n", "expected a mapping"),
    (b"\xff\xfe\x00junk", "not UTF-8"),
    (b"id: bad\nname: Bad\nicon: x\ngenerator: nowhere\nlevels: {}\n", "bad.yaml"),
    (b"id: 5\n", "bad.yaml"),
]


def test_bad_skill_yaml_names_the_file_and_the_key(tmp_path):
    for data, fragment in SKILL_CASES:
        path = tmp_path / "bad.yaml"
        path.write_bytes(data)
        with pytest.raises(skills.SkillError) as err:
            skills.load_skill_file(path)
        assert str(path) in str(err.value) and fragment in str(err.value), str(err.value)
