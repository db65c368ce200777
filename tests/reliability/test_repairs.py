"""Unit tests, one per bug the reliability suite found: the start-up repairs, the
complete-checkpoint rule, path and input guards, fault hooks and the Tavern's exposure
rule. Fast: real files and a real ledger, no daemon."""

from __future__ import annotations

import errno
import json
import os

import pytest

from realm_kernel.oracle.pool import OracleError, check_chat_size
from realm_kernel.quests.formats import Depth, validate_quest
from realm_kernel.quests.queue import QueueConflict, QueueError, delete_quest
from realm_kernel.quests.recovery import repair_quests
from realm_kernel.services.tavern_server import ExposureError, TavernServer
from realm_kernel.store import faults
from realm_kernel.store.checkpoint_repair import ledger_consistency, repair_checkpoints
from realm_kernel.store.checkpoints import UnknownCheckpoint, latest_checkpoint, locate_checkpoint
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths, checkpoint_complete, publish_dir
from realm_kernel.store.vault import VaultKeeper

GOOD = json.dumps({"messages": [{"role": "user", "content": "a"},
                                {"role": "assistant", "content": "b"}]}) + "\n"


@pytest.fixture
def home(tmp_path) -> RealmPaths:
    return RealmPaths.at(tmp_path / "realm").ensure()


def make_checkpoint(paths: RealmPaths, step: int, *, sidecar=True, weights=True, run_id="r1"):
    d = paths.checkpoints / f"checkpoint-{step}-20261126-1200"
    d.mkdir()
    (d / "config.json").write_text("{}")
    if weights:
        (d / "model.safetensors").write_bytes(b"w" * 16)
    if sidecar:
        (d / ".ledger.json").write_text(json.dumps({"name": d.name, "step": step, "loss": 1.0,
                                                    "run_id": run_id, "training_file": "q.jsonl"}))
    return d


def test_published_checkpoint_without_its_row_is_recorded_from_its_sidecar(home):
    ledger = Ledger(home, "test")
    d = make_checkpoint(home, 10)
    assert ledger_consistency(home, ledger) == [f"directory {d.name} has a sidecar but no ledger row"]
    done = repair_checkpoints(home, ledger)
    assert done["recorded"] == [d.name]
    row = ledger.query("SELECT step, path, run_id, loss FROM checkpoints")[0]
    assert row == {"step": 10, "path": str(d), "run_id": "r1", "loss": 1.0}
    assert ledger_consistency(home, ledger) == [] and latest_checkpoint(ledger) == (10, d)
    assert repair_checkpoints(home, ledger)["recorded"] == [], "idempotent"


def test_incomplete_checkpoints_are_never_used(home, tmp_path):
    ledger = Ledger(home, "test")
    good = make_checkpoint(home, 5)
    repair_checkpoints(home, ledger)
    no_sidecar = make_checkpoint(home, 10, sidecar=False)
    no_weights = make_checkpoint(home, 15, weights=False)
    ledger.append("checkpoints", [{"step": 15, "name": no_weights.name, "path": str(no_weights)}])
    done = repair_checkpoints(home, ledger)
    assert done["recorded"] == [] and sorted(done["incomplete"]) == [no_sidecar.name]
    assert not checkpoint_complete(no_sidecar) and not checkpoint_complete(no_weights)
    assert latest_checkpoint(ledger) == (5, good), "resume skips the incomplete ones"
    with pytest.raises(UnknownCheckpoint, match="incomplete"):
        locate_checkpoint(ledger, home.dio_mini, 15)
    assert locate_checkpoint(ledger, home.dio_mini, 5) == (good.name, good)
    keeper = VaultKeeper(home, ledger)
    keeper.scan()
    found = {r["asset_id"] for r in keeper.search("checkpoint")}
    assert found == {"checkpoint_5"}, "the vault catalogs complete checkpoints only"
    assert ledger_consistency(home, ledger) == [
        f"ledger row {no_weights.name} (step 15) has no complete directory"]


def test_half_done_saves_deletions_and_replacements_are_finished(home):
    ledger = Ledger(home, "test")
    ledger.append("runs", [{"run_id": "20261126-120000-abcdef", "status": "started"}])
    ours = home.checkpoints / ".run-20261126-120000-abcdef" / "checkpoint-20"
    ours.mkdir(parents=True)
    (ours / "model.safetensors").write_bytes(b"half")
    theirs = home.checkpoints / ".run-train-20261126"  # a `realm train` run, maybe alive
    theirs.mkdir()
    aside = make_checkpoint(home, 30)
    os.replace(aside, aside.with_name(f".replaced-{aside.name}"))
    gone = make_checkpoint(home, 40)
    ledger.append("checkpoints", [{"step": 40, "name": gone.name, "path": str(gone)}])
    os.replace(gone, gone.with_name(f".deleting-{gone.name}"))
    done = repair_checkpoints(home, ledger)
    assert done["removed_partial"] == [".run-20261126-120000-abcdef"] and theirs.exists()
    assert done["restored"] == [aside.name] and checkpoint_complete(aside)
    assert done["finished_delete"] == [gone.name] and not gone.with_name(f".deleting-{gone.name}").exists()
    assert ledger.scalar("SELECT status FROM assets WHERE asset_id = 'checkpoint_40'") == "deleted"
    assert ledger_consistency(home, ledger) == []


def test_checkpoint_repairs_in_detail(home):
    """The branches the start-up repair takes: a replaced copy whose original survived is
    dropped; a deletion already recorded is not recorded twice; the deletion row names the
    checkpoint; a row recorded from a sidecar takes the directory's own name and path,
    the sidecar's known columns only, and the step from the name when the sidecar has none."""
    ledger = Ledger(home, "test")
    kept = make_checkpoint(home, 30)
    stale = home.checkpoints / f".replaced-{kept.name}"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"old")
    gone = make_checkpoint(home, 40)
    os.replace(gone, gone.with_name(f".deleting-{gone.name}"))
    again = make_checkpoint(home, 50)
    ledger.append("assets", [{"asset_id": "checkpoint_50", "type": "checkpoint", "zone": "local",
                              "status": "deleted", "step": 50}])
    os.replace(again, again.with_name(f".deleting-{again.name}"))
    odd = make_checkpoint(home, 60)
    (odd / ".ledger.json").write_text(json.dumps({"name": "elsewhere", "path": "/nope", "loss": 0.5,
                                                  "colour": "red"}))
    done = repair_checkpoints(home, ledger)
    assert done["restored"] == [] and not stale.exists() and checkpoint_complete(kept)
    assert done["finished_delete"] == [gone.name, again.name]
    assert ledger.query("SELECT asset_id, type, name, zone, path, step, status FROM assets "
                        "WHERE asset_id = 'checkpoint_40'") == [
        {"asset_id": "checkpoint_40", "type": "checkpoint", "name": gone.name, "zone": "local",
         "path": f"checkpoints/{gone.name}", "step": 40, "status": "deleted"}]
    assert ledger.scalar("SELECT count(*) FROM assets WHERE asset_id = 'checkpoint_50'") == 1
    assert sorted(done["recorded"]) == [kept.name, odd.name]
    row = ledger.query("SELECT step, name, path, loss FROM checkpoints WHERE step = 60")
    assert row == [{"step": 60, "name": odd.name, "path": str(odd), "loss": 0.5}]


def test_publish_dir_replaces_a_directory_whole(home):
    old = make_checkpoint(home, 50)
    new = home.checkpoints / ".run-x" / "checkpoint-50"
    new.mkdir(parents=True)
    (new / "config.json").write_text('{"new": 1}')
    publish_dir(new, old)
    assert json.loads((old / "config.json").read_text()) == {"new": 1}
    assert not list(home.checkpoints.glob(".replaced-*"))


def test_quest_rows_follow_their_folders_after_a_crash(home):
    ledger = Ledger(home, "test")
    done = home.queue("recently_completed") / "done.jsonl"
    done.write_text(GOOD)
    ledger.append("quests", [{"quest_id": "done.jsonl", "status": "processing", "run_id": "r9"}])
    waiting = home.queue("normal") / "new.jsonl"
    waiting.write_text(GOOD * 2)
    skipped = home.queue("failed") / "skip.jsonl"
    skipped.write_text(GOOD)
    (home.queue("failed") / "skip.jsonl.reason.json").write_text(json.dumps(
        {"summary": "skip.jsonl: skipped by request at step 7"}))
    ledger.append("quests", [{"quest_id": "skip.jsonl", "status": "processing"}])
    moved = home.queue("high") / "moved.jsonl"
    moved.write_text(GOOD * 3)
    ledger.append("quests", [{"quest_id": "moved.jsonl", "status": "queued", "priority": "normal"}])
    fixed = repair_quests(home, ledger)
    assert len(fixed) == 4, fixed
    status = {r["quest_id"]: r for r in ledger.query("SELECT * FROM quest_status")}
    assert status["done.jsonl"]["status"] == "completed" and status["done.jsonl"]["run_id"] == "r9"
    assert status["new.jsonl"]["status"] == "queued" and status["new.jsonl"]["sha256"]
    assert status["skip.jsonl"]["status"] == "skipped"
    assert status["moved.jsonl"]["priority"] == "high"
    assert repair_quests(home, ledger) == [], "idempotent"


def test_quest_repair_rows_say_what_changed_and_leave_the_rest(home):
    """Every transition named, the row's run and priority kept where the folder does not
    say otherwise, the content hash only for a quest the ledger never saw, and files that
    are no quests (hidden, reason files) and rows that already agree left alone."""
    from realm_kernel.quests.formats import file_sha256
    ledger = Ledger(home, "test")
    good = GOOD
    files = {"done.jsonl": "recently_completed", "ok.jsonl": "low", "failed.jsonl": "failed",
             "crashed.jsonl": "failed", "fresh.jsonl": "high", "demoted.jsonl": "low"}
    for name, folder in files.items():
        (home.queue(folder) / name).write_text(good * (len(name) % 3 + 1))
    (home.queue("high") / ".partial.jsonl").write_text(good)
    (home.queue("failed") / "crashed.jsonl.reason.json").write_text(json.dumps({"summary": "boom"}))
    ledger.append("quests", [
        {"quest_id": "done.jsonl", "status": "processing", "priority": "high", "run_id": "r1"},
        {"quest_id": "ok.jsonl", "status": "queued", "priority": "low"},
        {"quest_id": "failed.jsonl", "status": "failed", "priority": "normal"},
        {"quest_id": "crashed.jsonl", "status": "processing", "priority": "normal", "run_id": "r2"},
        {"quest_id": "demoted.jsonl", "status": "queued", "priority": "normal", "run_id": "r3"}])
    fixed = repair_quests(home, ledger)
    assert sorted(fixed) == ["crashed.jsonl: processing -> failed", "demoted.jsonl: queued -> queued",
                             "done.jsonl: processing -> completed", "fresh.jsonl: unrecorded -> queued"]
    rows = {r["quest_id"]: r for r in ledger.query("SELECT * FROM quest_status")}
    assert set(rows) == {n for n in files}, "no row for a hidden file"
    assert (rows["done.jsonl"]["status"], rows["done.jsonl"]["priority"], rows["done.jsonl"]["run_id"]) == (
        "completed", "high", "r1")
    assert (rows["crashed.jsonl"]["status"], rows["crashed.jsonl"]["run_id"]) == ("failed", "r2")
    assert (rows["demoted.jsonl"]["priority"], rows["demoted.jsonl"]["run_id"]) == ("low", "r3")
    assert rows["fresh.jsonl"]["priority"] == "high"
    assert rows["fresh.jsonl"]["sha256"] == file_sha256(home.queue("high") / "fresh.jsonl")
    assert rows["crashed.jsonl"]["sha256"] is None, "a known quest keeps its first row's hash"
    assert rows["done.jsonl"]["detail"] == "found in recently_completed/ at start-up (was processing)"
    assert rows["fresh.jsonl"]["detail"] == "found in high/ at start-up (was unrecorded)"
    assert ledger.scalar("SELECT count(*) FROM quests WHERE quest_id IN ('ok.jsonl', 'failed.jsonl')") == 2
    assert repair_quests(home, ledger) == []


def test_delete_quest_never_joins_an_unsafe_name_to_a_folder(home):
    (home.home / "realm.toml").write_text("")
    with pytest.raises(QueueError) as err:
        delete_quest(home, "../../realm.toml")
    assert not isinstance(err.value, QueueConflict)
    (home.queue("processing") / "q.jsonl").write_text(GOOD)
    with pytest.raises(QueueConflict):
        delete_quest(home, "q.jsonl")


def test_quest_files_that_would_hang_or_crash_a_parser_are_refused(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 50_000 + "\n")
    assert "nested too deeply" in validate_quest(deep)[1].summary()
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * 50_000)
    assert "nested too deeply" in validate_quest(deep_json)[1].summary()
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert "not a regular file" in validate_quest(fifo, Depth.QUICK)[1].summary()
    outside = tmp_path / "outside.jsonl"
    outside.write_text(GOOD)
    link = tmp_path / "bad name;.jsonl"
    link.symlink_to(outside)
    assert "symbolic links" in validate_quest(link)[1].summary(), "a link is refused first"


def test_huge_chats_are_refused_before_any_tokenizer():
    check_chat_size([{"role": "user", "content": "x" * 1000}])
    with pytest.raises(OracleError, match="over the Oracle's limit"):
        check_chat_size([{"role": "user", "content": "x" * 60_000},
                         {"role": "assistant", "content": "y" * 60_000}])


def test_fault_hooks_are_inert_unless_asked(monkeypatch, home):
    monkeypatch.delenv(faults.PAUSE_ENV, raising=False)
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    for p in faults.POINTS:
        faults.point(p, home.home)
    monkeypatch.setenv(faults.FAULT_ENV, faults.ENOSPC_ON_SAVE)
    with pytest.raises(OSError) as err:
        faults.point("checkpoint_write", home.home)
    assert err.value.errno == errno.ENOSPC and faults.is_disk_full(err.value)
    try:
        raise RuntimeError("wrapped") from RuntimeError(
            "Error while serializing: I/O error: No space left on device (os error 28)")
    except RuntimeError as e:
        assert faults.is_disk_full(e)
    assert not faults.is_disk_full(ValueError("bad quest"))


def test_the_tavern_is_never_exposed_without_a_login():
    argv, env = TavernServer().launch()
    assert argv[-2:] == ["-m", "realm_widgets.app"]  # every option travels in REALM_TAVERN
    assert TavernServer.from_env(dict(env)).address == "127.0.0.1"
    for server in (TavernServer(address="0.0.0.0"), TavernServer(address="10.0.0.7"),
                   TavernServer(allow_websocket_origin=["tavern.example.org"])):
        with pytest.raises(ExposureError, match="without a login"):
            server.launch()
    exposed = TavernServer(address="0.0.0.0", basic_auth="pw").check()
    assert exposed.basic_auth == "pw" and exposed.cookie_secret and exposed.user
    assert TavernServer(address="0.0.0.0", oauth_provider="github").check().oauth_provider == "github"
    assert TavernServer(allow_websocket_origin=["localhost:5006"]).exposed() == []