"""A Tavern away from the trainer: a realm whose hosts.toml names a trainer on another
host (here a real trainer realm's JupyterLab on 127.0.0.1, another home and port) shows
that trainer's facts on every page and every part of each page (read over the trainer's
REST API: its routes of realm_kernel.server.away_handlers among them), labelled with the
host, refuses what would write the trainer's realm, and says when the trainer does not
answer."""

import pytest

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.api.remote_trainer import remote_trainer
from realm_skills.evaluation import eval_problems
from widgets.pages import (
    PAGES,
    GuildSession,
    OracleSession,
    QuestSession,
    SchedulerSession,
    SettingsSession,
    TavernSession,
    VaultSession,
)

from ..helpers import TOKEN, make_home, start_lab, start_panel, wait_for
from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture


# What a page away from the trainer shows of this realm, not the trainer's: the Oracle's
# hosts and pool are this machine's (its chats run here); the Settings page estimates no
# VRAM there (refused: it would size this machine's profile); the Quests page's skills are
# read with their levels there; the disk's free bytes move between two reads.
HERE = {"oracle": {"hosts", "loaded", "panes", "probe"}, "settings": {"vram"}, "quests": {"skills"},
        "vault": {"disk"}}


def without_host(value):
    """A part of the trainer's state as the page away shows it, less the host it adds."""
    return {k: v for k, v in value.items() if k != "host"} if isinstance(value, dict) else value


def trainer_with_facts(oracle_home) -> tuple[Realm, str]:
    """The trained realm with something on every page: evals (levels, weak primitives,
    the heatmap), practice queued from them (sizes, ETA), a champion (its achievement)."""
    trainer = Realm(oracle_home.home)
    problems = eval_problems("bin", 1)
    for step, wrong_every in ((20, 2), (30, 0)):  # half right, then all right
        answers = [p.answer if not wrong_every or i % wrong_every else "wrong"
                   for i, p in enumerate(problems)]
        trainer.skills.record_eval(skills.run_eval("bin", 1, answers, problems=problems), step,
                                   f"checkpoint-{step}")
        if step == 20:  # practice aimed at what step 20 got wrong
            quest = trainer.skills.targeted_quest("bin", level=1, count=16, seed=1).name
    trainer.checkpoints.promote(30)
    return trainer, quest


@pytest.mark.slow
def test_every_page_shows_the_remote_trainer_read_only(oracle_home, dio_mini_dir, procs, tmp_path,
                                                       monkeypatch, chromium):
    trainer, quest = trainer_with_facts(oracle_home)
    hero = trainer.hero()
    assert hero["xp"] > 0  # 30 steps trained: something to see
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
    label = {"host": "trainer", "url": f"{base}/realm/api", "read_only": True, "error": None}

    # Every page, every part: what the trainer's own page shows, labelled with the host.
    for name, page in PAGES.items():
        there, here = page.session(trainer).snapshot(), page.session(realm).snapshot()
        assert there["trainer"] is None and here["trainer"] == label, name
        for key in there.keys() - {"trainer", "notice"} - HERE.get(name, set()):
            assert without_host(here[key]) == there[key], (name, key)
    tavern = TavernSession(realm).snapshot()
    assert tavern["hero"]["host"] == tavern["battle"]["host"] == "trainer"
    assert tavern["hero"]["xp"] == hero["xp"] and tavern["losses"] and tavern["achievements"]
    assert tavern["toasts"] and tavern["events"]
    vault = VaultSession(realm).snapshot()
    assert [c["step"] for c in vault["checkpoints"]] == [30, 20, 10]
    assert vault["champion"] == 30 and "30" in vault["protected"]
    disk = trainer.reports.disk_usage()  # both homes share one file system here: a weak check
    assert (vault["disk"]["total"], vault["disk"]["checkpoints"]) == (disk["total"], disk["checkpoints"])
    queue = QuestSession(realm).snapshot()["queue"]
    queued = next(q for q in queue["high"] if q["name"] == quest)
    assert queued["examples"] == 16 and queued["eta_seconds"] > 0 and queued["state"] == "high"
    bin_ = next(g for g in GuildSession(realm).snapshot()["guild"] if g["skill"] == "bin")
    assert bin_["heatmap"]["steps"] == [20, 30] and bin_["heatmap"]["cells"]
    assert SchedulerSession(realm).snapshot()["cluster"] == trainer.tasks.cluster()
    assert SettingsSession(realm).snapshot()["settings"]["path"] == str(oracle_home.config_file)
    oracle = OracleSession(realm).snapshot()
    assert {c["step"] for c in oracle["checkpoints"]} == {0, 10, 20, 30}  # the trainer's ledger

    # What would write the trainer's realm is refused, naming the host; nothing is written
    # here either.
    session = TavernSession(realm)
    notice = session.act({"name": "pause", "nonce": 1})
    assert not notice["ok"] and "read-only" in notice["message"] and "trainer" in notice["message"]
    assert base in notice["message"]
    assert not oracle_home.control_file("pause").exists() and not away.control_file("pause").exists()
    refused = {QuestSession: {"name": "generate", "skill": "bin", "level": 1, "count": 8},
               VaultSession: {"name": "promote", "step": 10},
               SettingsSession: {"name": "preview", "changes": {"training.batch_size": 4}},
               SchedulerSession: {"name": "run", "task_id": "eval"},
               GuildSession: {"name": "spar", "skill": "bin"}}
    for page, action in refused.items():
        notice = page(realm).act({**action, "nonce": 1})
        assert not notice["ok"] and "read-only here" in notice["message"], (page, notice)
    for home in (away, oracle_home):
        assert not [p for p in home.inbox.rglob("*") if p.is_file()], home.inbox
    assert [p.name for p in oracle_home.queue("high").iterdir()] == [quest]
    assert trainer.checkpoints.champion()["step"] == 30
    assert not SettingsSession(realm).act({"name": "save", "nonce": 2,
                                           "changes": {"training.batch_size": 4}})["ok"]

    # In a browser, the Panel app of the realm away: every page says whose hero it shows.
    _, panel = start_panel(procs, away, ready="quests", name="panel-away")  # the token: from env
    browser = chromium.new_page()
    for name in PAGES:
        browser.goto(f"{panel}/{'' if name == 'tavern' else name}")
        host = browser.locator("[data-stat=trainer-host]").first
        wait_for(lambda host=host: host.inner_text() == "📡 on trainer · read-only", 60, f"{name}'s label")

    # The trainer gone: each page keeps its last facts and says the host does not answer
    # (a fresh page has none to show); back on its port, the pages read it again.
    pages = {name: page.session(realm) for name, page in PAGES.items()}
    for s in pages.values():
        s.snapshot()
    procs.stop(lab)
    wait_for(lambda: "unreachable" in host.inner_text(), 60, "the browser's label to say so")
    for name, s in pages.items():
        state = s.snapshot()
        assert state["trainer"]["error"] and "trainer" in state["trainer"]["error"], name
        assert state["trainer"]["host"] == "trainer"
    assert pages["tavern"].snapshot()["hero"]["xp"] == hero["xp"]
    assert "hero" not in TavernSession(realm).snapshot()
    start_lab(procs, oracle_home, tmp_path / "lab", REALM_WEAVER="0", port=port)
    for name, s in pages.items():
        wait_for(lambda s=s: s.snapshot()["trainer"]["error"] is None, 30, f"the {name} page to recover")
    wait_for(lambda: host.inner_text() == "📡 on trainer · read-only", 60, "the browser's label to recover")
    assert TavernSession(realm).snapshot()["hero"]["xp"] == hero["xp"]


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
