"""A Tavern away from the trainer: a realm whose hosts.toml names a trainer on another
host (here a real trainer realm's JupyterLab on 127.0.0.1, another home and port) shows
that trainer's hero, battle and checkpoint ledger on its pages, labelled with the host,
and refuses what would write the trainer's realm."""

import pytest

from realm_kernel.api import Realm
from realm_kernel.api.remote_trainer import remote_trainer
from widgets.pages import (
    GuildSession,
    OracleSession,
    QuestSession,
    SchedulerSession,
    SettingsSession,
    TavernSession,
    VaultSession,
)

from ..helpers import TOKEN, make_home, start_lab
from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture


@pytest.mark.slow
def test_pages_show_the_remote_trainer_read_only(oracle_home, dio_mini_dir, procs, tmp_path, monkeypatch):
    trainer = Realm(oracle_home.home)
    hero = trainer.hero()
    assert hero["xp"] > 0  # 30 steps trained: something to see
    # A quest waiting in the trainer's queue, where the daemon's admission puts it (no
    # daemon runs here: it stays there).
    waiting = oracle_home.queue("high") / "waiting.jsonl"
    trainer.quests.generate("bin", 1, 16, seed=1).rename(waiting)
    lab, base = start_lab(procs, oracle_home, tmp_path / "lab", REALM_WEAVER="0")
    port = int(base.rsplit(":", 1)[1])

    away = make_home(tmp_path / "away", dio_mini_dir)  # its own realm: no hero trained here
    (away.home / "hosts.toml").write_text(
        f'[hosts.trainer]\nhost = "127.0.0.1"\nroles = ["trainer"]\nremote = true\n'
        f'token_env = "TRAINER_REALM_TOKEN"\n'
        f'services = {{ realm = {{ port = {port}, path = "/realm/api" }} }}\n')
    monkeypatch.setenv("TRAINER_REALM_TOKEN", TOKEN)
    assert remote_trainer(oracle_home.home) is None  # no hosts.toml: the realm trains its own hero
    realm = Realm(away.home)
    assert realm.hero()["xp"] == 0 and realm.trainer is not None

    page = TavernSession(realm)
    tavern = page.snapshot()
    label = {"host": "trainer", "url": f"{base}/realm/api", "read_only": True}
    assert tavern["trainer"] == label
    assert tavern["hero"]["host"] == "trainer"
    for key in ("xp", "level", "xp_into_level", "atk", "defense", "acc", "gold"):
        assert tavern["hero"][key] == hero[key], key
    assert tavern["battle"]["state"] == trainer.training.status()["state"]
    assert tavern["battle"]["host"] == "trainer"
    assert len(tavern["losses"]) == len(trainer.reports.series("loss")) > 0
    assert len(tavern["events"]) == len(trainer.reports.events()) > 0
    assert tavern["alarms"] == trainer.reports.alarm_steps()
    assert {s["skill"] for s in tavern["skills"]} == {s["skill"] for s in trainer.skills.list()}

    vault = VaultSession(realm).snapshot()
    assert [c["step"] for c in vault["checkpoints"]] == [30, 20, 10]
    assert vault["trainer"] == label
    for other in (QuestSession, SettingsSession, OracleSession, SchedulerSession, GuildSession):
        assert other(realm).snapshot()["trainer"] == label  # every page says whose hero it is
    quests = QuestSession(realm).snapshot()["queue"]
    assert [(q["name"], q["state"]) for qs in quests.values() for q in qs] == [(waiting.name, "high")]
    scheduler = SchedulerSession(realm).snapshot()
    assert scheduler["tasks"] == trainer.tasks.list()
    assert scheduler["curriculum"] == trainer.skills.curriculum()
    guild = GuildSession(realm).snapshot()
    assert [(g["skill"], g["level"]) for g in guild["guild"]] == \
        [(s["skill"], s["level"]) for s in trainer.skills.list()]

    # What would write the trainer's realm is refused, naming the host; nothing is written
    # here either.
    session = TavernSession(realm)
    notice = session.act({"name": "pause", "nonce": 1})
    assert not notice["ok"] and "read-only" in notice["message"] and "trainer" in notice["message"]
    assert base in notice["message"]
    assert not oracle_home.control_file("pause").exists() and not away.control_file("pause").exists()
    quests = QuestSession(realm)
    assert not quests.act({"name": "generate", "nonce": 1, "skill": "bin", "level": 1, "count": 8})["ok"]
    for home in (away, oracle_home):
        assert not [p for p in home.inbox.rglob("*") if p.is_file()], home.inbox
    assert [p.name for p in oracle_home.queue("high").iterdir()] == [waiting.name]
    assert not VaultSession(realm).act({"name": "promote", "nonce": 1, "step": 10})["ok"]
    assert trainer.checkpoints.champion() is None
    settings = SettingsSession(realm)
    assert settings.act({"name": "preview", "nonce": 1, "changes": {"training.batch_size": 4}})["ok"]
    assert not settings.act({"name": "save", "nonce": 2, "changes": {"training.batch_size": 4}})["ok"]

    # The trainer gone: the page keeps its last facts and says nothing false.
    procs.stop(lab)
    assert "hero" not in TavernSession(realm).snapshot()  # a fresh page has none to show
    assert page.snapshot()["hero"]["xp"] == hero["xp"]


def test_a_trainer_at_this_machines_address_is_this_realm(tmp_path):
    """Without `remote = true`, a trainer at 127.0.0.1 is this realm: pages unchanged."""
    (tmp_path / "hosts.toml").write_text(
        '[hosts.trainer]\nhost = "127.0.0.1"\nroles = ["trainer"]\n'
        'services = { realm = { port = 8888, path = "/realm/api" } }\n')
    assert remote_trainer(tmp_path) is None
    with (tmp_path / "hosts.toml").open("a") as f:
        f.write('[hosts.far]\nhost = "far.example"\nroles = ["trainer"]\n')
    assert remote_trainer(tmp_path) is None  # one trainer is here


def test_a_broken_hosts_toml_leaves_the_pages_this_realms_own(realm_home):
    """A hosts.toml that does not parse: the pages work on this realm and say why."""
    (realm_home.home / "hosts.toml").write_text('[hosts.trainer]\nroles = "trainer"\n')
    page = TavernSession(Realm(realm_home.home))
    state = page.snapshot()
    assert state["trainer"] is None and state["hero"]["xp"] == 0
    assert not state["notice"]["ok"] and "hosts.toml" in state["notice"]["message"]
