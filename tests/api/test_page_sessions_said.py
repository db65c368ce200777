"""What the page sessions (widgets/pages.py) say and do, word for word, through the real
Realm over a temp home, without a browser: a broken hosts.toml's notice, a refused
action's notice, which events the toasts show, the Settings save's messages, the Quests
page's start and upload refusals, and the Oracle page's panes over two turns and a duel
(dio-mini loaded in this process)."""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import threading

import pytest

from realm_kernel.api import Realm
from realm_widgets import pages
from realm_widgets.pages import OracleSession, QuestSession, Session, SettingsSession, VaultSession

from ..helpers import wait_for
from .test_page_sessions_worked import queue_quest


@pytest.fixture
def realm(realm_home) -> Realm:
    return Realm(realm_home.home)


def test_a_broken_hosts_toml_is_a_notice_on_the_page_and_in_the_log(realm_home, caplog):
    (realm_home.home / "hosts.toml").write_text("[hosts\n")
    with caplog.at_level(logging.WARNING, logger="realm.widgets"):
        s = Session(Realm(realm_home.home))
    assert s.trainer is None
    n = s.notice
    assert set(n) == {"ok", "action", "message", "detail", "nonce"}
    assert (n["ok"], n["action"], n["detail"], n["nonce"]) == (False, "hosts", None, None)
    assert "hosts.toml" in n["message"]
    assert any(r.getMessage() == f"hosts.toml: {n['message']}" for r in caplog.records)
    assert s.snapshot()["notice"] == n


def test_a_refused_action_names_itself_and_its_nonce(realm):
    s = Session(realm)
    assert s.act({"name": "nope", "nonce": 7}) == {"ok": False, "action": "nope",
                                                   "message": "unknown action 'nope'", "detail": None,
                                                   "nonce": 7}


def test_the_toasts_show_only_the_notable_kinds(realm):
    realm.ledger.append("events", [{"kind": "quest_started", "message": "begun"},
                                   {"kind": "achievement", "message": "first blood"}])
    kinds = {t["kind"] for t in Session(realm).snapshot()["toasts"]}
    assert "achievement" in kinds and "quest_started" not in kinds


def test_settings_save_says_what_it_saved_and_saves_a_confirmed_critical_change(realm):
    s = SettingsSession(realm)
    assert s.act({"name": "save", "nonce": 1, "changes": {"training.batch_size": 3}})["message"] == \
        "saved training.batch_size"
    n = s.act({"name": "save", "nonce": 2, "changes": {"hero.base_model": "/elsewhere"}, "confirm": True})
    assert n["ok"] and n["message"] == "saved hero.base_model", n


def test_start_puts_a_quest_first_in_the_high_queue_and_resumes(realm):
    q = QuestSession(realm)
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        queue_quest(realm, name, 1)
    q.act({"name": "priority", "nonce": 1, "quest": "a.jsonl", "priority": "high"})
    realm.training.control("pause")
    assert realm.paths.control_file("pause").exists()
    assert q.act({"name": "start", "nonce": 2, "quest": "c.jsonl"})["message"] == "c.jsonl is next"
    assert [e["name"] for e in q.snapshot()["queue"]["high"]][:2] == ["c.jsonl", "a.jsonl"]
    assert not realm.paths.control_file("pause").exists()  # resumed


def test_an_upload_refuses_bad_base64_and_names_an_oversize_file(realm, monkeypatch):
    q = QuestSession(realm)
    bad = q.act({"name": "upload", "nonce": 1, "filename": "x.jsonl", "content_b64": "e30=!!"})
    with pytest.raises(binascii.Error) as refused:  # what strict decoding says of it
        base64.b64decode("e30=!!", validate=True)
    assert not bad["ok"] and bad["message"] == str(refused.value)
    monkeypatch.setattr(pages, "MAX_UPLOAD_BYTES", 4)
    big = q.act({"name": "upload", "nonce": 2, "filename": "big.jsonl",
                 "content_b64": base64.b64encode(b"0123456789").decode()})
    assert big["message"] == ("big.jsonl: 10 bytes; uploads from the page stop at 4 "
                              "(use `realm quest add` for bigger files)")


def idle(s: OracleSession, pane: str) -> dict:
    """The pane once its answer's thread ended: no longer busy, whatever the answer."""
    for t in threading.enumerate():
        if t.name == f"oracle-{pane}":
            t.join(120)
            assert not t.is_alive(), f"the {pane} pane's answer"
    p = s.snapshot()["panes"][pane]
    assert p["busy"] is False, p
    return p


def test_the_oracle_panes_keep_the_conversation_and_name_their_model(realm):
    s = OracleSession(realm, max_new_tokens=4)
    s.act({"name": "load", "nonce": 1, "step": 0})
    wait_for(lambda: not s.snapshot()["notice"]["message"].startswith("loading"), 120, "the load to end")
    assert s.act({"name": "probe", "nonce": 2, "skill": "bin", "step": 0})["message"] == ""
    for nonce, text in ((3, "hello"), (4, "again")):
        assert s.act({"name": "chat", "nonce": nonce, "message": text, "step": 0})["message"] == ""
        p = idle(s, "left")
    assert (p["model"], p["host"], p["error"]) == ("dio-mini", "local", None)
    assert p["model_path"]
    roles = [m["role"] for m in p["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in p["messages"][::2]] == ["hello", "again"]
    assert p["messages"][-1]["model"] == "dio-mini" and p["messages"][-1]["content"]
    # A duel asks both panes the same question, each with its own step.
    assert s.act({"name": "duel", "nonce": 5, "message": "duel", "left_step": 0, "right_step": 0})["ok"]
    for pane in pages.PANES:
        d = idle(s, pane)
        assert [m["content"] for m in d["messages"] if m["role"] == "user"][-1] == "duel"
        assert d["messages"][-1]["model"] == "dio-mini"
    # "ask DIO" on a host the realm does not know: refused, naming it (never asked locally).
    s.act({"name": "probe", "nonce": 6, "skill": "bin", "step": 0, "host": "elsewhere"})
    failed = wait_for(lambda: (p := s.snapshot()["probe"]) and not p["busy"] and p, 120, "the refusal")
    assert "elsewhere" in failed["error"] and "content" not in failed


def test_generate_makes_200_examples_unless_told(realm):
    q = QuestSession(realm)
    n = q.act({"name": "generate", "nonce": 1, "skill": "bin", "level": "1"})
    assert n["ok"] and n["message"].endswith(" generated into the inbox"), n
    name = n["message"].removeprefix("Quest ").removesuffix(" generated into the inbox")
    (path,) = realm.paths.home.rglob(name)
    assert len(path.read_text().splitlines()) == 200


def test_an_export_goes_where_the_page_names_inside_exports(realm):
    d = realm.paths.checkpoints / "checkpoint-5"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"x")
    realm.ledger.append("checkpoints", [{"step": 5, "name": "checkpoint-5", "path": str(d), "loss": 1.0}])
    v = VaultSession(realm)
    exports = realm.paths.exports
    assert v.act({"name": "export", "nonce": 1, "step": 5, "dest": "named"})["message"] == \
        f"checkpoint 5 exported to {exports / 'named'}"
    assert v.act({"name": "export", "nonce": 2, "step": 5, "dest": " "})["message"] == \
        f"checkpoint 5 exported to {exports / 'checkpoint-5'}"  # empty: the checkpoint's name
    out = v.act({"name": "export", "nonce": 3, "step": 5, "dest": "/outside/x"})
    assert not out["ok"] and "'/outside/x' refused" in out["message"]


def test_a_load_says_which_step_it_evicted(realm, dio_mini_dir):
    assert realm.settings.save({"oracle.max_models": 1})["ok"]
    d = realm.paths.checkpoints / "checkpoint-5"
    shutil.copytree(dio_mini_dir, d)
    (d / ".ledger.json").write_text("{}")  # the sidecar the engine writes last: complete
    realm.ledger.append("checkpoints", [{"step": 5, "name": "checkpoint-5", "path": str(d), "loss": 1.0}])
    s = OracleSession(Realm(realm.paths.home))
    for nonce, step in ((1, 0), (2, 5)):
        s.act({"name": "load", "nonce": nonce, "step": step})
        done = wait_for(lambda: not (n := s.snapshot()["notice"])["message"].startswith("loading") and n,
                        120, f"the load of step {step}")
    assert done["ok"] and done["message"].endswith(" on local; evicted [0]"), done


def test_background_work_shows_as_busy_in_daemon_threads(realm, monkeypatch):
    """A probe and a load run in named daemon threads (a closing kernel never waits on
    them), the probe showing what it asks while it runs. Each is held at its start by an
    event, so the test sees it running, then lets it go."""
    s = OracleSession(realm)
    go = threading.Event()

    def held(real):
        def run(*a, **kw):
            go.wait(120)
            return real(*a, **kw)
        return run
    monkeypatch.setattr(realm.skills, "ask", held(realm.skills.ask))
    monkeypatch.setattr(realm.oracle, "load", held(realm.oracle.load))
    s.act({"name": "probe", "nonce": 1, "skill": "bin", "step": 0})
    s.act({"name": "load", "nonce": 2, "step": 0})
    assert s.snapshot()["probe"] == {"skill": "bin", "step": 0, "busy": True}
    running = {t.name: t for t in threading.enumerate() if t.name in ("oracle-probe", "oracle-load")}
    assert sorted(running) == ["oracle-load", "oracle-probe"] and all(t.daemon for t in running.values())
    go.set()
    for t in running.values():
        t.join(120)
    after = s.snapshot()
    assert after["probe"]["busy"] is False and after["notice"]["message"] == "loaded dio-mini on local"
